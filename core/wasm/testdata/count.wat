;; Benchmark plugin: copies the batch into its memory and counts the messages in it (every
;; occurrence of {"topic"), then publishes {"n":<count>} on event.count through its output.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"publish\":[{\"topic\":\"event.count\",\"data\":{\"n\":")
  (func (export "process") (result i32)
    (local $n i64) (local $i i64) (local $need i32) (local $p i32) (local $end i32) (local $count i64)
    (local $w i32) (local $d i32) (local $len i32) (local $off i64) (local $k i32)
    (local.set $n (call $input_length))
    ;; room for the input at 4096
    (local.set $need (i32.wrap_i64 (i64.div_u (i64.add (local.get $n) (i64.const 69631)) (i64.const 65536))))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1)) (then unreachable))))
    (block $d8 (loop $l8
      (br_if $d8 (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (i64.store (i32.add (i32.const 4096) (i32.wrap_i64 (local.get $i))) (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $l8)))
    (block $d1 (loop $l1
      (br_if $d1 (i64.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const 4096) (i32.wrap_i64 (local.get $i))) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $l1)))
    ;; count {"topic"
    (local.set $p (i32.const 4096))
    (local.set $end (i32.add (i32.const 4096) (i32.wrap_i64 (local.get $n))))
    (block $dc (loop $lc
      (br_if $dc (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
      (if (i64.eq (i64.load (local.get $p)) (i64.const 0x226369706F74227B))
        (then (local.set $count (i64.add (local.get $count) (i64.const 1)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $lc)))
    ;; output: prefix, decimal count, "}}]}" built at 1024
    (memory.copy (i32.const 1024) (i32.const 0) (i32.const 47))
    (local.set $w (i32.const 1024))
    (local.set $w (i32.add (local.get $w) (i32.const 47)))
    ;; digits into 2048.. backwards
    (local.set $d (i32.const 2100))
    (loop $ld
      (local.set $d (i32.sub (local.get $d) (i32.const 1)))
      (i32.store8 (local.get $d) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $count) (i64.const 10)))))
      (local.set $count (i64.div_u (local.get $count) (i64.const 10)))
      (br_if $ld (i64.ne (local.get $count) (i64.const 0))))
    (memory.copy (local.get $w) (local.get $d) (i32.sub (i32.const 2100) (local.get $d)))
    (local.set $w (i32.add (local.get $w) (i32.sub (i32.const 2100) (local.get $d))))
    (i32.store (local.get $w) (i32.const 0x7D5D7D7D))
    (local.set $w (i32.add (local.get $w) (i32.const 4)))
    (local.set $len (i32.sub (local.get $w) (i32.const 1024)))
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $do (loop $lo
      (br_if $do (i32.ge_u (local.get $k) (local.get $len)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $k))) (i32.load8_u (i32.add (i32.const 1024) (local.get $k))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $lo)))
    (call $output_set (local.get $off) (i64.extend_i32_u (local.get $len)))
    (i32.const 0))
)
