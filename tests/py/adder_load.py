#!/usr/bin/env python3
"""A load of AddFloats calls with the real grpcio client (generated stubs)
while the test changes the route table, to show that no request is lost.

Calls AddFloats(3.5, -1.2) one after another on one channel (h2c, or TLS
with --ca). After the first successful call prints `started` (flushed), so
the caller knows the load is running. Keeps calling until the file
--until exists (or --max calls were made), then makes --after more calls.
Any failed call or wrong result ends the run with exit status 1.

Prints at the end:
  calls <n>
  before {"<vimana-component>": n, ...}   calls made before --until existed
  after {"<vimana-component>": n, ...}    the --after calls
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adder_client import stubs  # noqa: E402


def main():
    import grpc

    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--ca")
    p.add_argument("--until", required=True, help="stop file")
    p.add_argument("--after", type=int, default=100)
    p.add_argument("--max", type=int, default=100000)
    p.add_argument("--proto", default=os.path.join(os.path.dirname(__file__), "../../examples/adder/adder.proto"))
    args = p.parse_args()

    pb2, pb2_grpc = stubs(args.proto)
    opts = [("grpc.default_authority", args.host)]
    if args.ca:
        with open(args.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        opts.append(("grpc.ssl_target_name_override", args.host))
        ch = grpc.secure_channel(args.target, creds, options=opts)
    else:
        ch = grpc.insecure_channel(args.target, options=opts)
    stub = pb2_grpc.AdderServiceStub(ch)

    def one(seen):
        resp, rpc = stub.AddFloats.with_call(pb2.AddFloatsRequest(x=3.5, y=-1.2), timeout=10)
        if abs(resp.result - 2.3) > 1e-9:
            sys.exit(f"wrong result {resp.result}")
        comp = dict(rpc.initial_metadata() or ()).get("vimana-component", "?")
        seen[comp] = seen.get(comp, 0) + 1

    before, after, calls = {}, {}, 0
    try:
        one(before)
        calls += 1
        print("started", flush=True)
        while not os.path.exists(args.until) and calls < args.max:
            one(before)
            calls += 1
        for _ in range(args.after):
            one(after)
            calls += 1
    except grpc.RpcError as e:
        print(f"calls {calls}")
        sys.exit(f"call {calls + 1} failed: {e.code().name}: {e.details()}")
    print(f"calls {calls}")
    print("before " + json.dumps(before, sort_keys=True))
    print("after " + json.dumps(after, sort_keys=True))


if __name__ == "__main__":
    main()
