;; Test plugin: imports a host function the agent does not offer.
(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (func (export "process") (result i32) (i32.const 0)))
