#!/usr/bin/env python3
"""One raw gRPC call through vimana's gateway with the real grpcio client,
printing the outcome, for the fault-mapping tests.

The request and response bytes are not (de)serialized by generated stubs:
the request is AddFloatsRequest(x, y) encoded by hand (two doubles,
fields 1 and 2), or --raw HEX bytes, or --big N bytes of zeros, so that
undecodable and oversized messages can be sent too.

Prints, one per line:
  code <GRPC_CODE_NAME>        e.g. OK, DEADLINE_EXCEEDED
  details <status message>     (when not OK)
  result <float>               (when OK: field 1 of AddFloatsResponse)
  component <vimana-component header or ?>
  elapsed_ms <duration of the call>
Exit status 0 whatever the gRPC code (the caller asserts it); 2 on usage.
"""
import argparse
import struct
import sys
import time


def encode_request(x, y):
    return b"\x09" + struct.pack("<d", x) + b"\x11" + struct.pack("<d", y)


def decode_result(data):
    # AddFloatsResponse { double result = 1; } -> tag 0x09 + 8 bytes; an
    # empty message means result 0.0 (proto3 default).
    i = 0
    result = 0.0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag == 0x09:
            (result,) = struct.unpack("<d", data[i:i + 8])
            i += 8
        else:
            sys.exit(f"unexpected response bytes {data.hex()}")
    return result


def main():
    import grpc

    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True, help="127.0.0.1:PORT")
    p.add_argument("--host", required=True, help=":authority / SNI host")
    p.add_argument("--ca", help="CA (PEM) to trust; TLS when given, else h2c")
    p.add_argument("--method", default="/foo.bar.AdderService/AddFloats")
    p.add_argument("--raw", help="request bytes as hex")
    p.add_argument("--big", type=int, help="request of N zero bytes")
    p.add_argument("--x", type=float, default=3.5)
    p.add_argument("--y", type=float, default=-1.2)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()

    opts = [
        ("grpc.default_authority", args.host),
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
    ]
    if args.ca:
        with open(args.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        opts.append(("grpc.ssl_target_name_override", args.host))
        ch = grpc.secure_channel(args.target, creds, options=opts)
    else:
        ch = grpc.insecure_channel(args.target, options=opts)

    if args.raw is not None:
        req = bytes.fromhex(args.raw)
    elif args.big is not None:
        req = b"\x00" * args.big
    else:
        req = encode_request(args.x, args.y)

    call = ch.unary_unary(args.method)  # bytes in, bytes out
    # Connect first, so the elapsed time is the call's, not the handshake's.
    grpc.channel_ready_future(ch).result(timeout=args.timeout)
    started = time.monotonic()
    try:
        resp, rpc = call.with_call(req, timeout=args.timeout)
        md = dict(rpc.initial_metadata() or ())
        print("code OK")
        print(f"result {decode_result(resp)}")
    except grpc.RpcError as e:
        # An error is usually trailers-only: grpcio then reports every
        # header, vimana-component included, as trailing metadata.
        md = dict(e.initial_metadata() or ())
        md.update(dict(e.trailing_metadata() or ()))
        print(f"code {e.code().name}")
        print(f"details {e.details()}")
    print(f"component {md.get('vimana-component', '?')}")
    print(f"elapsed_ms {(time.monotonic() - started) * 1000:.0f}")
    ch.close()


if __name__ == "__main__":
    main()
