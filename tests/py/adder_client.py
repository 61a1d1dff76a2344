#!/usr/bin/env python3
"""A real gRPC client of the example adder service behind vimana's gateway.

Generates stubs for examples/adder/adder.proto with grpc_tools at run time,
connects over TLS to 127.0.0.1:<port> with the given SNI/authority host,
trusting only the exported vimana CA, and runs one check:

  call        AddFloats(3.5, -1.2) -> prints the result and the
              vimana-component header of the answer
  reflect     lists the services via grpc reflection (v1alpha client)
  json        POST /foo.bar.AdderService/AddFloats with a JSON body (HTTP/1.1
              over TLS with SNI) -> prints the JSON answer
  h2c-call    like call, over plaintext HTTP/2 (no TLS)

Exit status 0 on success; prints one line per result.
"""
import argparse
import atexit
import importlib
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile


def stubs(proto):
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="adder-stubs-")
    atexit.register(shutil.rmtree, out, True)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "protoc",
        f"-I{os.path.dirname(os.path.abspath(proto))}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.basename(proto),
    ])
    if rc != 0:
        sys.exit(f"protoc failed for {proto}")
    sys.path.insert(0, out)
    name = os.path.splitext(os.path.basename(proto))[0]
    return importlib.import_module(f"{name}_pb2"), importlib.import_module(f"{name}_pb2_grpc")


def channel(args):
    import grpc

    opts = [("grpc.default_authority", args.host)]
    if args.mode == "h2c-call":
        return grpc.insecure_channel(args.target, options=opts)
    with open(args.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    opts.append(("grpc.ssl_target_name_override", args.host))
    return grpc.secure_channel(args.target, creds, options=opts)


def call(args):
    pb2, pb2_grpc = stubs(args.proto)
    stub = pb2_grpc.AdderServiceStub(channel(args))
    n = args.count
    seen = {}
    for _ in range(n):
        resp, rpc = stub.AddFloats.with_call(pb2.AddFloatsRequest(x=args.x, y=args.y), timeout=10)
        md = dict(rpc.initial_metadata() or ())
        comp = md.get("vimana-component", "?")
        seen[comp] = seen.get(comp, 0) + 1
    print(f"result {resp.result:.6f}")
    print("components " + json.dumps(seen, sort_keys=True))


def reflect(args):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel(args))
    for s in sorted(db.get_services()):
        print(f"service {s}")


def json_post(args):
    body = json.dumps({"x": args.x, "y": args.y}).encode()
    ctx = ssl.create_default_context(cafile=args.ca)
    host, port = args.target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=args.host) as s:
            req = (
                f"POST /foo.bar.AdderService/AddFloats HTTP/1.1\r\nHost: {args.host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode() + body
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode()
    print(f"status {status}")
    print(f"json {payload.decode().strip()}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["call", "reflect", "json", "h2c-call"])
    p.add_argument("--target", required=True, help="127.0.0.1:PORT")
    p.add_argument("--host", required=True, help="SNI / :authority host")
    p.add_argument("--ca", help="CA certificate (PEM) to trust")
    p.add_argument("--proto", default=os.path.join(os.path.dirname(__file__), "../../examples/adder/adder.proto"))
    p.add_argument("--x", type=float, default=3.5)
    p.add_argument("--y", type=float, default=-1.2)
    p.add_argument("--count", type=int, default=1)
    args = p.parse_args()
    {"call": call, "h2c-call": call, "reflect": reflect, "json": json_post}[args.mode](args)


if __name__ == "__main__":
    main()
