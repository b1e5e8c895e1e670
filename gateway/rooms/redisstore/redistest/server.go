// Package redistest starts a real, throwaway redis-server on 127.0.0.1 for
// tests: no persistence, a free port, killed when the test ends. It never
// touches a Redis it did not start.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotInstalled means redis-server is not in PATH.
var ErrNotInstalled = errors.New("redistest: redis-server is not installed")

// SkipMessage is what tests say when they skip for want of redis-server.
const SkipMessage = "redis-server is not installed (not in PATH): skipping the test that needs a real Redis"

// Server is a running redis-server.
type Server struct {
	Addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	port int
	out  *bytes.Buffer
	args []string // extra redis-server arguments (a replica's --replicaof)
}

// Start runs redis-server for one test, or skips the test if the binary
// is not installed. The server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(SkipMessage)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// Launch runs redis-server on a free port; the caller must Kill it.
func Launch() (*Server, error) { return launch() }

// StartWith is Start with extra redis-server arguments (e.g.
// "--cluster-enabled", "yes").
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	s, err := launch(args...)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(SkipMessage)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

func launch(args ...string) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNotInstalled
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redistest: finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), args: args}
	return s, s.start()
}

func (s *Server) start() error {
	out := &bytes.Buffer{}
	cmd := exec.Command("redis-server", append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning"}, s.args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd, s.out = cmd, out
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redistest: redis-server on %s did not answer: %w\n%s", s.Addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client with short timeouts, as a gateway node would
// use, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolTimeout: 2 * time.Second, MaxRetries: 1, DialerRetries: 1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port with the same
// arguments: empty, unless they keep its data (--appendonly yes --dir D
// loads the append-only file).
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Pause stops the server's process (SIGSTOP) without closing anything, as
// a hung or cut-off server looks to its peers; Resume lets it go on.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: server not running")
	}
	return s.cmd.Process.Signal(sig)
}
