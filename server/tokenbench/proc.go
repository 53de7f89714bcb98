package tokenbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authgate/authgate/internal/loadgen"
)

// proc is a server the bench started as a child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	URL     string
	stdout  bytes.Buffer // guarded by mu
	mu      sync.Mutex
	logPath string // its stderr (the server's log), when kept
	done    chan error
}

// start runs exe with args and env in dir and waits (at most two minutes)
// for a stdout line starting with ready; the rest of that line's first
// word is the URL it serves. stderr goes to logPath, or is discarded.
func start(ctx context.Context, name, exe, dir string, env []string, logPath, ready string, args ...string) (*proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = env
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child holds its own descriptor
		cmd.Stderr = f
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stdout.WriteString(line + "\n")
			p.mu.Unlock()
			if u, ok := strings.CutPrefix(line, ready); ok {
				select {
				case urls <- strings.Fields(u)[0]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { p.done <- cmd.Wait() }()
	t := time.NewTimer(2 * time.Minute)
	defer t.Stop()
	select {
	case p.URL = <-urls:
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("%s exited before serving (%v)%s", name, err, p.logTail())
	case <-t.C:
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start serving within two minutes%s", name, p.logTail())
}

// Stdout is what the process printed so far.
func (p *proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// logTail is the end of the process's log, to explain a failure.
func (p *proc) logTail() string {
	if p.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	return "; its log ends:\n" + string(b[max(0, len(b)-2000):])
}

// stop ends the process gracefully (SIGTERM), killing it after a minute.
func (p *proc) stop() error {
	if p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			return fmt.Errorf("%s: %w%s", p.name, err, p.logTail())
		}
		return nil
	case <-t.C:
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("%s ignored SIGTERM for a minute and was killed", p.name)
	}
}

// CPU is the CPU time the process has used so far (0 where /proc is not).
func (p *proc) CPU() time.Duration {
	d, err := loadgen.ProcessCPU(p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return d
}

// waitIdle waits (at most max) until the process uses under a tenth of a
// core over half a second: background work a step set off (the change
// feed digesting an import, the batched last-use writes of a warm-up pass)
// is then done and does not land in the next measurement. Without /proc it
// returns at once.
func (p *proc) waitIdle(ctx context.Context, max time.Duration) {
	const window = 500 * time.Millisecond
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c0, err := loadgen.ProcessCPU(p.cmd.Process.Pid)
		if err != nil {
			return
		}
		t := time.NewTimer(window)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c1, err := loadgen.ProcessCPU(p.cmd.Process.Pid)
		if err != nil || c1-c0 < window/10 {
			return
		}
	}
}

// logSize counts the lines and bytes the process has logged so far.
func (p *proc) logSize() (lines, size int64) {
	if p.logPath == "" {
		return 0, 0
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0, 0
	}
	return int64(bytes.Count(b, []byte("\n"))), int64(len(b))
}

// logMessages counts the JSON log lines written after byte offset from by
// message ("http request" lines also by status).
func (p *proc) logMessages(from int64) map[string]int {
	out := map[string]int{}
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < from {
		return out
	}
	for _, line := range bytes.Split(b[from:], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var l struct {
			Msg    string `json:"msg"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(line, &l) != nil {
			out["(not JSON)"]++
			continue
		}
		if l.Status != 0 {
			l.Msg += " " + strconv.Itoa(l.Status)
		}
		out[l.Msg]++
	}
	return out
}

// childEnv is this process's environment without AUTHGATE_* settings (the
// servers run with authgate's defaults), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
