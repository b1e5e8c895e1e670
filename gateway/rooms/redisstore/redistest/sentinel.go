package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the test Sentinel monitors.
const MasterName = "meetguard-test"

// Sentinel is a primary, one replica and one redis-sentinel watching them,
// all on 127.0.0.1, killed when the test ends. The Sentinel declares the
// primary down after 500 ms, so a killed primary fails over within a few
// seconds.
type Sentinel struct {
	Addr    string // the Sentinel's host:port
	Primary *Server
	Replica *Server
	cmd     *exec.Cmd
}

// StartSentinel starts the three, or skips the test if redis-server or
// redis-sentinel is not installed. It returns once the Sentinel knows the
// replica and the replica is in sync.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		t.Skip("redis-sentinel is not installed (apt-get install redis-sentinel): skipping the failover test")
	}
	// Replication writes an RDB file: keep it in the test's directory.
	primary, err := launch("--dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Kill)
	replica, err := launch("--dir", t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Kill)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf(`port %d
bind 127.0.0.1
loglevel warning
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %[2]s 500
sentinel failover-timeout %[2]s 5000
sentinel parallel-syncs %[2]s 1
`, port, MasterName, primary.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-sentinel", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := &Sentinel{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Primary: primary, Replica: replica, cmd: cmd}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	rc := replica.Client(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		reps, err1 := sc.Replicas(ctx, MasterName).Result()
		info, err2 := rc.Info(ctx, "replication").Result()
		cancel()
		if err := errors.Join(err1, err2); err == nil && len(reps) > 0 && strings.Contains(info, "master_link_status:up") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel never saw an in-sync replica (%v %v)", err1, err2)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PrimaryAddr asks the Sentinel which server is the primary now.
func (s *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(a[0], a[1]), nil
}
