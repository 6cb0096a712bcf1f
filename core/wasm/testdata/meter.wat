;; Test plugin: publishes a constant MetricBatch (source wasm:meter, counter meter.calls = 7) through its output.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"publish\":[{\"topic\":\"metrics\",\"data\":{\"source\":\"wasm:meter\",\"time\":1795520000000,\"metrics\":[{\"name\":\"meter.calls\",\"type\":\"counter\",\"unit\":\"{call}\",\"description\":\"Calls seen by meter.\",\"points\":[{\"attributes\":{\"kind\":\"test\"},\"value\":7,\"startTime\":1795520000000}]}]}}]}")
  (func (export "process") (result i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.const 268)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const 268)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $output_set (local.get $off) (i64.const 268))
    (i32.const 0)))
