;; nginx-down-alert: ABI v1 written by hand in WebAssembly text, with no PDK, to show that the
;; contract is plain Extism and any language can meet it.
;;
;; process: for every message of the batch whose data has "health":"UNHEALTHY" (an
;; nginx.instance.health event that entered UNHEALTHY), publish through the host function
;;   {"topic":"alert.nginx.down","data":{"instance_id":"<id>","health":"UNHEALTHY",
;;    "reason":"<healthReason>","message":"..."}}
;; The host sends compact JSON (no spaces) and JSON strings cannot hold an unescaped quote, so
;; matching the exact bytes "health":"UNHEALTHY" cannot hit text inside a value; the recovery
;; event (health HEALTHY, previousHealth UNHEALTHY) does not match either.
;; describe: returns the plugin's version and description.
(module
  ;; Extism kernel: input, memory blocks, output.
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  ;; ABI v1: the agent's publish; 0 = accepted.
  (import "extism:host/user" "publish" (func $publish (param i64) (result i64)))

  (memory (export "memory") 1)

  ;; Constants: [offset, length]
  (data (i32.const 0) "{\"topic\":")                                            ;; 0, 9: start of a message
  (data (i32.const 32) "\"health\":\"UNHEALTHY\"")                              ;; 32, 20
  (data (i32.const 64) "\"id\":\"")                                             ;; 64, 6
  (data (i32.const 96) "\"healthReason\":\"")                                   ;; 96, 16
  (data (i32.const 128) "{\"topic\":\"alert.nginx.down\",\"data\":{\"instance_id\":\"") ;; 128, 51
  (data (i32.const 256) "\",\"health\":\"UNHEALTHY\",\"reason\":\"")            ;; 256, 33
  (data (i32.const 320) "\",\"message\":\"an nginx instance the agent watches is UNHEALTHY\"}}") ;; 320, 64
  (data (i32.const 512) "{\"version\":\"1.0.0\",\"description\":\"Publishes alert.nginx.down when an nginx instance turns UNHEALTHY. Hand-written WebAssembly text: the Extism ABI without a PDK.\"}") ;; 512, 163

  (global $OUT i32 (i32.const 2048))   ;; the alert being built (at most 51+256+33+1024+64 bytes)
  (global $IN i32 (i32.const 8192))    ;; the copied input; memory grows to fit it

  ;; First position in [from, to) where the `len` bytes at `needle` start, or -1.
  (func $find (param $from i32) (param $to i32) (param $needle i32) (param $len i32) (result i32)
    (local $i i32) (local $j i32)
    (local.set $i (local.get $from))
    (block $none
      (loop $scan
        (br_if $none (i32.gt_s (i32.add (local.get $i) (local.get $len)) (local.get $to)))
        (local.set $j (i32.const 0))
        (block $differs
          (loop $cmp
            (br_if $differs (i32.ne
              (i32.load8_u (i32.add (local.get $i) (local.get $j)))
              (i32.load8_u (i32.add (local.get $needle) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (if (i32.eq (local.get $j) (local.get $len)) (then (return (local.get $i))))
            (br $cmp)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  ;; memory.copy without the bulk-memory feature: `len` bytes from `src` to `dst`; returns dst+len.
  (func $copy (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i)) (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.add (local.get $dst) (local.get $len)))

  ;; Copies the body of the JSON string starting at `src` (just after its opening quote) to `dst`,
  ;; escapes kept as they are, stopping at its closing quote, at `end`, or when `max` bytes are
  ;; written (never inside an escape). Returns the new end of `dst`.
  (func $copy_string (param $dst i32) (param $src i32) (param $end i32) (param $max i32) (result i32)
    (local $c i32) (local $limit i32)
    (local.set $limit (i32.add (local.get $dst) (local.get $max)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $src)))
        (br_if $done (i32.eq (local.get $c) (i32.const 34)))              ;; closing quote
        (if (i32.eq (local.get $c) (i32.const 92))                        ;; backslash: copy the escape whole
          (then
            ;; \uXXXX is the longest escape: stop rather than cut one in half.
            (br_if $done (i32.gt_u (i32.add (local.get $dst) (i32.const 6)) (local.get $limit)))
            (br_if $done (i32.ge_u (i32.add (local.get $src) (i32.const 1)) (local.get $end)))
            (i32.store8 (local.get $dst) (local.get $c))
            (i32.store8 (i32.add (local.get $dst) (i32.const 1)) (i32.load8_u (i32.add (local.get $src) (i32.const 1))))
            (local.set $dst (i32.add (local.get $dst) (i32.const 2)))
            (local.set $src (i32.add (local.get $src) (i32.const 2)))
            (br $next)))
        (br_if $done (i32.ge_u (local.get $dst) (local.get $limit)))
        (i32.store8 (local.get $dst) (local.get $c))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (br $next)))
    (local.get $dst))

  ;; Moves `len` bytes at `ptr` into a new Extism memory block; returns its offset.
  (func $to_block (param $ptr i32) (param $len i32) (result i64)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
                         (i64.load (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $block))

  ;; Copies the call's input into linear memory at $IN (growing it); returns the input's end, or -1.
  (func $load_input (result i32)
    (local $n i32) (local $i i32) (local $need i32)
    (local.set $n (i32.wrap_i64 (call $input_length)))
    ;; 64 MiB at most: the manifest's memory_mb is far below that anyway.
    (if (i32.gt_u (local.get $n) (i32.const 67108864)) (then (return (i32.const -1))))
    (local.set $need (i32.shr_u (i32.add (i32.add (global.get $IN) (local.get $n)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const -1))))))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $n)))
        (i64.store (i32.add (global.get $IN) (local.get $i)) (call $input_load_u64 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (global.get $IN) (local.get $i)) (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (i32.add (global.get $IN) (local.get $n)))

  (func (export "process") (result i32)
    (local $end i32) (local $msg i32) (local $next i32) (local $hit i32) (local $at i32) (local $w i32) (local $block i64)
    (local.set $end (call $load_input))
    (if (i32.lt_s (local.get $end) (i32.const 0)) (then (return (i32.const 1))))
    (local.set $msg (call $find (global.get $IN) (local.get $end) (i32.const 0) (i32.const 9)))
    (block $done
      (loop $messages
        (br_if $done (i32.lt_s (local.get $msg) (i32.const 0)))
        ;; This message runs to the next {"topic": or to the end of the input.
        (local.set $next (call $find (i32.add (local.get $msg) (i32.const 1)) (local.get $end) (i32.const 0) (i32.const 9)))
        (if (i32.lt_s (local.get $next) (i32.const 0)) (then (local.set $next (local.get $end))))
        (local.set $hit (call $find (local.get $msg) (local.get $next) (i32.const 32) (i32.const 20)))
        (if (i32.ge_s (local.get $hit) (i32.const 0))
          (then
            (local.set $w (call $copy (global.get $OUT) (i32.const 128) (i32.const 51)))
            ;; The first "id":" of the message is the instance's (it is the instance's first key).
            (local.set $at (call $find (local.get $msg) (local.get $next) (i32.const 64) (i32.const 6)))
            (if (i32.ge_s (local.get $at) (i32.const 0))
              (then (local.set $w (call $copy_string (local.get $w) (i32.add (local.get $at) (i32.const 6)) (local.get $next) (i32.const 256)))))
            (local.set $w (call $copy (local.get $w) (i32.const 256) (i32.const 33)))
            (local.set $at (call $find (local.get $msg) (local.get $next) (i32.const 96) (i32.const 16)))
            (if (i32.ge_s (local.get $at) (i32.const 0))
              (then (local.set $w (call $copy_string (local.get $w) (i32.add (local.get $at) (i32.const 16)) (local.get $next) (i32.const 1024)))))
            (local.set $w (call $copy (local.get $w) (i32.const 320) (i32.const 64)))
            (local.set $block (call $to_block (global.get $OUT) (i32.sub (local.get $w) (global.get $OUT))))
            ;; A refusal (non-zero) changes nothing here: the host counts it.
            (drop (call $publish (local.get $block)))
            (call $free (local.get $block))))
        (local.set $msg (select (local.get $next) (i32.const -1) (i32.lt_u (local.get $next) (local.get $end))))
        (br $messages)))
    (i32.const 0))

  (func (export "describe") (result i32)
    (call $output_set (call $to_block (i32.const 512) (i32.const 163)) (i64.const 163))
    (i32.const 0))
)
