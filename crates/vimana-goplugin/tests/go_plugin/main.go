// A minimal real go-plugin gRPC plugin (Debian's hashicorp/go-plugin) used
// by tests/go_interop.rs to prove Rust host <-> Go plugin interop, including
// AutoMTLS with go-plugin's ECDSA P-521 certificates.
package main

import (
	"context"
	"fmt"
	"os"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

type nothing struct {
	plugin.NetRPCUnsupportedPlugin
}

func (nothing) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (nothing) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, nil
}

func main() {
	fmt.Fprintln(os.Stderr, "go test plugin starting")
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "SPACECORE_PLUGIN",
			MagicCookieValue: "v1",
		},
		Plugins:    map[string]plugin.Plugin{"nothing": nothing{}},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
