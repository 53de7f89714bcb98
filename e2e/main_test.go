package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/authgatetest"
)

// binary is the authgate executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "authgate")
	build := exec.Command("go", "build", "-o", binary, "./cmd/authgate")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build authgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running `authgate serve`.
type proc struct {
	cmd      *exec.Cmd
	URL      string
	AdminKey string
	stdout   *authgatetest.SyncBuffer
	stderr   *authgatetest.SyncBuffer
	done     chan error
}

// serve starts `authgate serve` in dir on a free loopback port and returns
// once it has printed its address (its readiness signal).
func serve(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	p := &proc{cmd: cmd, stdout: &authgatetest.SyncBuffer{}, stderr: &authgatetest.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.stdout.Write([]byte(line + "\n"))
			if u, ok := strings.CutPrefix(line, "authgate is serving on "); ok {
				ready <- strings.Fields(u)[0]
			}
		}
		close(ready)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case u, ok := <-ready:
		if !ok {
			t.Fatalf("authgate serve exited before serving; stderr:\n%s", p.stderr.String())
		}
		p.URL = u
	case <-ctx.Done():
		t.Fatalf("authgate serve did not start; stderr:\n%s", p.stderr.String())
	}
	for _, line := range strings.Split(p.stdout.String(), "\n") {
		if k, ok := strings.CutPrefix(line, "admin key: "); ok {
			p.AdminKey = k
		}
	}
	return p
}

// stop sends SIGTERM and waits for a graceful exit (status 0).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("authgate serve did not exit cleanly on SIGTERM: %v\nstderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("authgate serve ignored SIGTERM")
	}
}

// cli runs one authgate command in dir and returns its stdout, stderr and exit code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return cliEnv(t, dir, nil, args...)
}

// cliEnv is cli with extra environment variables.
func cliEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// cleanEnv is the environment without AUTHGATE_* settings, so the tests
// see authgate's defaults whatever the machine has set.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

type apiResult struct {
	status int
	body   string
}

func call(t *testing.T, hc *http.Client, method, url, key, body string) apiResult {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apiResult{status: resp.StatusCode, body: string(b)}
}
