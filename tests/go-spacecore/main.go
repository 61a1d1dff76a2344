// go-spacecore: a test spacecore plugin for vimana, speaking HashiCorp
// go-plugin's gRPC protocol with the proto.ScPlugin service.
//
// Workload: Start runs a goroutine that appends an incrementing counter line
// to $SC_STATE_DIR/counter.log (default os.TempDir()/go-spacecore-<pid>) every
// 200ms. Logs returns the last 20 lines of that file.
//
// Fault knobs (environment):
//
//	SC_CRASH_ON=start|stop|status|logs  os.Exit(3) inside that RPC (comma list ok)
//	SC_CHATTY=1      write a line to stdout AND stderr every 100ms, forever
//	SC_AUTOSTART=1   start the workload before serving (Status says "running")
//	SC_HANG_ON=start|stop|status|logs  never answer that RPC (comma list ok)
//	SC_START_DELAY_MS=n  sleep n ms in Start before starting the workload
//	SC_LOG_LEVEL=..  hclog level (default info)
//	SC_EXPECT_COOKIE=v  expect this magic cookie value instead of "v1"
//	                    (simulates a plugin built for another host)
//
// Note on stdio: go-plugin (1.0.1 as packaged in Debian 12) replaces os.Stdout
// and os.Stderr inside plugin.Serve with pipes whose read ends nobody drains
// in gRPC mode. Everything here that must reach the real fds 1/2 therefore
// holds on to the original *os.File values captured before Serve.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

func main() {
	realStdout, realStderr := os.Stdout, os.Stderr
	if v := os.Getenv("SC_EXPECT_COOKIE"); v != "" {
		Handshake.MagicCookieValue = v
	}

	level := hclog.LevelFromString(os.Getenv("SC_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "go-spacecore",
		Level:      level,
		Output:     realStderr,
		JSONFormat: true,
	})

	stateDir := os.Getenv("SC_STATE_DIR")
	if stateDir == "" {
		stateDir = filepath.Join(os.TempDir(), fmt.Sprintf("go-spacecore-%d", os.Getpid()))
	}
	crashOn := callSet(os.Getenv("SC_CRASH_ON"))
	var startDelay time.Duration
	if v := os.Getenv("SC_START_DELAY_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			logger.Error("SC_START_DELAY_MS must be a number of milliseconds", "value", v)
			os.Exit(1)
		}
		startDelay = time.Duration(ms) * time.Millisecond
	}

	// Refuse early (same message/exit code as plugin.Serve) so that running
	// the binary by hand does not create a state dir or start chatter.
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: Handshake}) // prints the notice, exits 1
		return
	}

	core, err := newCounterCore(logger, stateDir, crashOn)
	if err != nil {
		logger.Error("cannot prepare state dir", "dir", stateDir, "error", err)
		os.Exit(1)
	}
	core.hangOn = callSet(os.Getenv("SC_HANG_ON"))
	core.startDelay = startDelay
	logger.Info("go-spacecore starting", "pid", os.Getpid(), "state_dir", stateDir,
		"crash_on", os.Getenv("SC_CRASH_ON"), "chatty", os.Getenv("SC_CHATTY") == "1",
		"autostart", os.Getenv("SC_AUTOSTART") == "1")

	if os.Getenv("SC_AUTOSTART") == "1" {
		if _, err := core.Start("autostart"); err != nil {
			logger.Error("autostart failed", "error", err)
			os.Exit(1)
		}
	}
	if os.Getenv("SC_CHATTY") == "1" {
		go chatter(realStdout, realStderr)
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins: map[string]plugin.Plugin{
			"spacecore": &ScPluginGRPC{Impl: core},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
	logger.Info("go-spacecore exiting")
}

// chatter writes a line to the real stdout and stderr every 100ms, forever.
// Write errors are ignored; note that a write to a closed pipe on fd 1/2
// raises SIGPIPE, which (Go default, SIGPIPE not handled) kills the process.
// That is the point: it shows whether the host keeps the plugin's stdio
// alive after the host itself dies.
func chatter(stdout, stderr *os.File) {
	// The first stdout line must be go-plugin's handshake line. Serve swaps
	// os.Stdout only after printing and syncing it, so wait for the swap.
	for os.Stdout == stdout {
		time.Sleep(5 * time.Millisecond)
	}
	for i := 1; ; i++ {
		fmt.Fprintf(stdout, "chatty stdout %d pid=%d\n", i, os.Getpid())
		fmt.Fprintf(stderr, "chatty stderr %d pid=%d\n", i, os.Getpid())
		time.Sleep(100 * time.Millisecond)
	}
}

// callSet parses a comma list of RPC names (start, stop, status, logs).
func callSet(list string) map[string]bool {
	set := map[string]bool{}
	for _, c := range strings.Split(list, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" {
			set[c] = true
		}
	}
	return set
}
