package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// sandboxLock makes one process per database the owner of the mounted
// sandbox. The sandbox keeps provider state (grants, token families) in its
// process; two `serve` processes on one SQLite file each mounting their own
// would hand out tokens the other's sandbox has never seen, and a refresh
// through the other process would kill the credential. The owner holds an
// flock on <state file>.lock and writes its public URL there; a second
// process finds the lock taken and uses the owner's sandbox as an external
// one (AUTHGATE_SANDBOX_URL) instead of mounting its own.
type sandboxLock struct {
	f *os.File
}

// acquireSandboxLock takes the lock, or reports the owner's URL when another
// process holds it (waiting, bounded by ctx, for the owner to publish it).
func acquireSandboxLock(ctx context.Context, stateFile string) (*sandboxLock, string, error) {
	path := stateFile + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return &sandboxLock{f: f}, "", nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, "", fmt.Errorf("sandbox lock %s: %w", path, err)
	}
	f.Close()
	// The owner writes its URL once it listens; a just-started owner may not
	// have yet.
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "http") {
			return nil, strings.TrimSpace(string(b)), nil
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("another authgate process mounts the sandbox for this database (lock %s) but has not published its address; set AUTHGATE_SANDBOX_URL to it, or AUTHGATE_SANDBOX=off", path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// publish records where the owner's sandbox is reachable.
func (l *sandboxLock) publish(url string) error {
	if l == nil || strings.HasSuffix(url, ":0") {
		return nil // not listening yet
	}
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(url+"\n"), 0)
	return err
}

func (l *sandboxLock) release() {
	if l != nil {
		l.f.Close() // closing drops the flock
	}
}
