package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
)

const (
	tickInterval = 200 * time.Millisecond
	logTailLines = 20
)

// counterCore is the Spacecore implementation: its workload is a goroutine
// that appends an incrementing counter line to <stateDir>/counter.log.
type counterCore struct {
	log      hclog.Logger
	stateDir string
	path     string
	crashOn  map[string]bool
	// hangOn names RPCs that block forever (SC_HANG_ON); startDelay is how
	// long Start sleeps before it starts the workload (SC_START_DELAY_MS).
	hangOn     map[string]bool
	startDelay time.Duration

	mu      sync.Mutex
	running bool
	stopCh  chan struct{}
	doneCh  chan struct{}
	counter int64 // last value written
}

func newCounterCore(log hclog.Logger, stateDir string, crashOn map[string]bool) (*counterCore, error) {
	if st, err := os.Stat(stateDir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", stateDir)
	}
	c := &counterCore{
		log:      log,
		stateDir: stateDir,
		path:     filepath.Join(stateDir, "counter.log"),
		crashOn:  crashOn,
	}
	// Resume the counter from an earlier run with the same state dir, so the
	// sequence stays monotonic across plugin restarts.
	if last, err := tailLines(c.path, 1); err == nil && len(last) == 1 {
		if n, err := strconv.ParseInt(strings.TrimSpace(last[0]), 10, 64); err == nil {
			c.counter = n
		}
	}
	return c, nil
}

// maybeCrash exits the process in the middle of an RPC when SC_CRASH_ON names it.
func (c *counterCore) maybeCrash(call string) {
	if c.crashOn[call] {
		c.log.Error("SC_CRASH_ON: exiting mid-call", "call", call, "exit_code", 3)
		os.Exit(3)
	}
}

// maybeHang blocks the RPC forever when SC_HANG_ON names it.
func (c *counterCore) maybeHang(call string) {
	if c.hangOn[call] {
		c.log.Warn("SC_HANG_ON: never answering", "call", call)
		select {}
	}
}

func (c *counterCore) Start(id string) (string, error) {
	c.log.Info("Start called", "plugin_id", id)
	c.maybeCrash("start")
	c.maybeHang("start")
	if c.startDelay > 0 {
		// Outside the lock: Status still answers while Start is slow.
		c.log.Info("SC_START_DELAY_MS: sleeping in Start", "delay", c.startDelay.String())
		time.Sleep(c.startDelay)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.log.Info("workload already running", "plugin_id", id, "file", c.path)
		return "started", nil
	}
	// The state dir is created lazily so that processes which never Start
	// (e.g. benchmark runs) leave nothing behind.
	if err := os.MkdirAll(c.stateDir, 0o755); err != nil {
		c.log.Error("cannot create state dir", "dir", c.stateDir, "error", err)
		return "", fmt.Errorf("mkdir %s: %w", c.stateDir, err)
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		c.log.Error("cannot open counter file", "file", c.path, "error", err)
		return "", fmt.Errorf("open %s: %w", c.path, err)
	}
	c.stopCh = make(chan struct{})
	c.doneCh = make(chan struct{})
	c.running = true
	go c.run(f, c.stopCh, c.doneCh)
	c.log.Info("workload started", "plugin_id", id, "file", c.path)
	return "started", nil
}

func (c *counterCore) run(f *os.File, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer f.Close()
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		c.mu.Lock()
		c.counter++
		n := c.counter
		c.mu.Unlock()
		if _, err := fmt.Fprintf(f, "%d\n", n); err != nil {
			c.log.Error("counter write failed", "file", c.path, "error", err)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (c *counterCore) Stop(id string) (string, error) {
	c.log.Info("Stop called", "plugin_id", id)
	c.maybeCrash("stop")
	c.maybeHang("stop")

	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return "stopped", nil
	}
	stop, done := c.stopCh, c.doneCh
	c.running = false
	close(stop)
	c.mu.Unlock()
	<-done // run() takes c.mu, so wait outside the lock
	c.log.Info("workload stopped", "plugin_id", id)
	return "stopped", nil
}

func (c *counterCore) Status(id string) (string, error) {
	c.log.Info("Status called", "plugin_id", id)
	c.maybeCrash("status")
	c.maybeHang("status")

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return "running", nil
	}
	return "stopped", nil
}

func (c *counterCore) Logs(id string) ([]string, error) {
	c.log.Info("Logs called", "plugin_id", id)
	c.maybeCrash("logs")
	c.maybeHang("logs")

	lines, err := tailLines(c.path, logTailLines)
	if os.IsNotExist(err) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return lines, nil
}

// tailLines returns up to n last complete-or-trailing lines of the file,
// reading backwards in growing chunks so a long-running counter.log stays cheap.
func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	chunk := int64(4096)
	for {
		if chunk > size {
			chunk = size
		}
		buf := make([]byte, chunk)
		if _, err := f.ReadAt(buf, size-chunk); err != nil && err != io.EOF {
			return nil, err
		}
		buf = bytes.TrimRight(buf, "\n")
		// Need n+1 newlines (or the start of the file) to have n whole lines.
		if bytes.Count(buf, []byte{'\n'}) >= n || chunk == size {
			var all []string
			sc := bufio.NewScanner(bytes.NewReader(buf))
			for sc.Scan() {
				all = append(all, sc.Text())
			}
			if chunk < size && len(all) > 0 {
				all = all[1:] // first line may be partial
			}
			if len(all) > n {
				all = all[len(all)-n:]
			}
			return all, nil
		}
		chunk *= 2
	}
}
