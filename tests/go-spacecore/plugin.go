package main

// go-plugin glue for the spacecore gRPC protocol (proto/spacecore/v1/sc.proto),
// in the shape of the public vimana spacecore template: a Spacecore interface
// implemented by the plugin, an ScPluginGRPC go-plugin Plugin that registers the
// gRPC server, and a thin adapter from the generated service to the interface.

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"vimana.local/go-spacecore/proto"
)

// Handshake must match the host (vimana) exactly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "SPACECORE_PLUGIN",
	MagicCookieValue: "v1",
}

// Spacecore is what a spacecore implementation provides.
type Spacecore interface {
	Start(pluginID string) (status string, err error)
	Stop(pluginID string) (status string, err error)
	Logs(pluginID string) (lines []string, err error)
	Status(pluginID string) (status string, err error)
}

// ScPluginGRPC is the go-plugin Plugin for the "spacecore" plugin name.
// gRPC only: the net/rpc half is intentionally unsupported.
type ScPluginGRPC struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Spacecore
}

func (p *ScPluginGRPC) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterScPluginServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns the raw generated client; hosts written in Go can use it.
func (p *ScPluginGRPC) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return proto.NewScPluginClient(c), nil
}

type grpcServer struct {
	proto.UnimplementedScPluginServer
	impl Spacecore
}

func (s *grpcServer) Start(_ context.Context, req *proto.StartRequest) (*proto.StartResponse, error) {
	st, err := s.impl.Start(req.GetPluginId())
	if err != nil {
		return nil, err
	}
	return &proto.StartResponse{PluginId: req.GetPluginId(), Status: st}, nil
}

func (s *grpcServer) Stop(_ context.Context, req *proto.StopRequest) (*proto.StopResponse, error) {
	st, err := s.impl.Stop(req.GetPluginId())
	if err != nil {
		return nil, err
	}
	return &proto.StopResponse{PluginId: req.GetPluginId(), Status: st}, nil
}

func (s *grpcServer) Logs(_ context.Context, req *proto.LogsRequest) (*proto.LogsResponse, error) {
	lines, err := s.impl.Logs(req.GetPluginId())
	if err != nil {
		return nil, err
	}
	return &proto.LogsResponse{PluginId: req.GetPluginId(), Logs: lines}, nil
}

func (s *grpcServer) Status(_ context.Context, req *proto.StatusRequest) (*proto.StatusResponse, error) {
	st, err := s.impl.Status(req.GetPluginId())
	if err != nil {
		return nil, err
	}
	return &proto.StatusResponse{PluginId: req.GetPluginId(), Status: st}, nil
}
