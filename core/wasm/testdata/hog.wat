;; Test plugin: allocates 4 MiB Extism memory blocks (host-side, outside its linear memory) forever.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (loop $l
      (drop (call $alloc (i64.const 4194304)))
      (br $l))
    (i32.const 0)))
