// go-host: a minimal Go host for vimana spacecores using hashicorp/go-plugin's
// client. It measures, per iteration, the wall time from launching the plugin
// process through the go-plugin handshake to the answer of the first Status
// RPC, then kills the plugin. Output: one JSON line with median/p90/min (ms).
//
//	go-host -plugin ./go-spacecore [-n 50] [-mtls=false] [-v]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sort"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"vimana.local/go-spacecore/proto"
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "SPACECORE_PLUGIN",
	MagicCookieValue: "v1",
}

// scPlugin is the client half of the "spacecore" go-plugin Plugin.
type scPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (scPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("go-host does not serve spacecores")
}

func (scPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return proto.NewScPluginClient(c), nil
}

type result struct {
	Host     string  `json:"host"`
	N        int     `json:"n"`
	MTLS     bool    `json:"mtls"`
	MedianMs float64 `json:"median_ms"`
	P90Ms    float64 `json:"p90_ms"`
	MinMs    float64 `json:"min_ms"`
	MaxMs    float64 `json:"max_ms"`
	MeanMs   float64 `json:"mean_ms"`
}

func once(path string, mtls bool, logger hclog.Logger, stderr io.Writer) (time.Duration, string, error) {
	t0 := time.Now()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          map[string]plugin.Plugin{"spacecore": scPlugin{}},
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         mtls,
		Logger:           logger,
		Stderr:           stderr,
	})
	defer client.Kill()

	rpc, err := client.Client() // launches the process and does the handshake
	if err != nil {
		return 0, "", fmt.Errorf("handshake: %w", err)
	}
	raw, err := rpc.Dispense("spacecore")
	if err != nil {
		return 0, "", fmt.Errorf("dispense: %w", err)
	}
	sc := raw.(proto.ScPluginClient)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := sc.Status(ctx, &proto.StatusRequest{PluginId: "go-host"})
	if err != nil {
		return 0, "", fmt.Errorf("Status: %w", err)
	}
	return time.Since(t0), resp.GetStatus(), nil
}

// percentile uses nearest-rank on sorted data.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if rank < 0 {
		rank = 0
	}
	return sorted[rank]
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func main() {
	path := flag.String("plugin", "./go-spacecore", "path to the spacecore plugin binary")
	n := flag.Int("n", 50, "iterations")
	mtls := flag.Bool("mtls", true, "use go-plugin AutoMTLS")
	verbose := flag.Bool("v", false, "log go-plugin client output and per-iteration times to stderr")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "go-host: -n must be >= 1")
		os.Exit(2)
	}
	if _, err := os.Stat(*path); err != nil {
		fmt.Fprintf(os.Stderr, "go-host: plugin: %v\n", err)
		os.Exit(2)
	}

	// hclog 0.11 has no "off" level; without an explicit Logger go-plugin
	// would log at Trace to stderr, so use a null logger unless -v.
	logger := hclog.NewNullLogger()
	if *verbose {
		// go-plugin re-logs each plugin stderr line through this logger.
		logger = hclog.New(&hclog.LoggerOptions{Name: "go-host", Level: hclog.Debug, Output: os.Stderr})
	}

	samples := make([]float64, 0, *n)
	for i := 0; i < *n; i++ {
		d, status, err := once(*path, *mtls, logger, io.Discard)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-host: iteration %d: %v\n", i, err)
			os.Exit(1)
		}
		ms := float64(d) / float64(time.Millisecond)
		if *verbose {
			fmt.Fprintf(os.Stderr, "go-host: iteration %d: %.3f ms status=%q\n", i, ms, status)
		}
		samples = append(samples, ms)
	}

	sorted := append([]float64(nil), samples...)
	sort.Float64s(sorted)
	sum := 0.0
	for _, s := range sorted {
		sum += s
	}
	out, _ := json.Marshal(result{
		Host:     "go",
		N:        *n,
		MTLS:     *mtls,
		MedianMs: round3(median(sorted)),
		P90Ms:    round3(percentile(sorted, 90)),
		MinMs:    round3(sorted[0]),
		MaxMs:    round3(sorted[len(sorted)-1]),
		MeanMs:   round3(sum / float64(len(sorted))),
	})
	fmt.Println(string(out))
}
