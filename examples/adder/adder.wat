;; foo.bar.AdderService/AddFloats as a core WebAssembly module.
;;
;; This module implements the world `foo:bar/services` of wit/adder.wit
;; (which uses `status` from `vimana:grpc/types@0.1.0`, see
;; crates/vimana-grpc/wit/grpc.wit). `adder::component()` embeds that WIT and
;; encodes the module into a component with wit-component; `adder::build()`
;; swaps the body between the `@body` markers for the test behaviours and
;; adds their data segments at the `@data` marker.
;;
;; Canonical ABI of
;;   add-floats: func(request: add-floats-request)
;;       -> result<add-floats-response, status>
;;
;; * The parameter `record { x: f64, y: f64 }` flattens to two core params
;;   (f64, f64).
;; * The result flattens to more than one core value, so the function returns
;;   one i32: a pointer to a return area in linear memory, aligned to 8 (the
;;   largest alignment of any payload field, the f64), 24 bytes long:
;;
;;     +0   u8   discriminant: 0 = ok, 1 = err
;;     ok:  +8   f64  add-floats-response.result
;;     err: +8   u8   status.code (enum `code`: 17 cases fit a u8; the case's
;;                    position is the gRPC code, 3 = invalid-argument)
;;          +12  i32  status.message: pointer to UTF-8 bytes
;;          +16  i32  status.message: length in bytes
;;
;; Memory map (one 64 KiB page):
;;   16..40     the return area
;;   64..1024   constant strings (status messages of failing behaviours)
;;   1024..     bump heap of `cabi_realloc`
;;
;; The host instantiates a fresh instance per call, so nothing is ever freed
;; and no `cabi_post_*` function is needed.
(module
  ;; Exported as `memory`: the host reads the return area and the message
  ;; string from it when lifting the result.
  (memory (export "memory") 1)

  ;; @data

  ;; Next free byte of the bump heap.
  (global $heap (mut i32) (i32.const 1024))

  ;; `cabi_realloc(old_ptr, old_size, align, new_size) -> ptr`: the host
  ;; calls it to lower lists and strings into the guest. `add-floats` takes
  ;; none, but components conventionally export it; this one only bumps
  ;; (`old_ptr` is never reused: nothing here calls it with one).
  (func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32)
        (param $new_size i32)
        (result i32)
    (local $p i32)
    ;; p = (heap + align - 1) & !(align - 1)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $new_size)))
    (local.get $p))

  ;; `foo:bar/adder-service#add-floats`: the export name wit-component maps
  ;; to the function `add-floats` of the exported interface.
  (func (export "foo:bar/adder-service#add-floats")
        (param $x f64) (param $y f64)
        (result i32)
    ;; @body-begin
    ;; ok(add-floats-response { result: x + y })
    (i32.store8 (i32.const 16) (i32.const 0))
    (f64.store (i32.const 24) (f64.add (local.get $x) (local.get $y)))
    (i32.const 16)
    ;; @body-end
  )
)
