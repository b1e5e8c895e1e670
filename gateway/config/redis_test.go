package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse_RedisNamesOneServerOrOneSentinelSet(t *testing.T) {
	base := strings.Replace(goodConfig, "  secret_file: SECRET_FILE\n", "  secret: "+strings.Repeat("k", 40)+"\n", 1) +
		"rooms:\n  ticket_key: " + strings.Repeat("t", 40) + "\nstore:\n  kind: redis\n  redis:\n"
	for _, tc := range []struct {
		name, redis string
		want        []string // empty: valid
	}{
		{"addr", "    addr: 127.0.0.1:6379\n", nil},
		{"sentinel", "    sentinel:\n      master: mymaster\n      addrs: [10.0.0.1:26379, 'sentinel-2:26379']\n      password: p\n", nil},
		{"neither", "    db: 1\n", []string{"store.redis.addr: is required when store.kind is redis (or set store.redis.sentinel)"}},
		{"both", "    addr: 127.0.0.1:6379\n    sentinel:\n      master: m\n      addrs: [127.0.0.1:26379]\n", []string{"store.redis.addr: set either addr or sentinel, not both"}},
		{"no master", "    sentinel:\n      addrs: [127.0.0.1:26379]\n", []string{"store.redis.sentinel.master: is required"}},
		{"no addrs", "    sentinel:\n      master: m\n", []string{"store.redis.sentinel.addrs: is required"}},
		{"bad addr", "    sentinel:\n      master: m\n      addrs: [127.0.0.1, ':26379']\n", []string{"store.redis.sentinel.addrs[0]: must be host:port", "store.redis.sentinel.addrs[1]: must be host:port"}},
		{"replica ack", "    addr: 127.0.0.1:6379\n    replica_ack_timeout: 100ms\n", nil},
		{"replica ack too long", "    addr: 127.0.0.1:6379\n    replica_ack_timeout: 2s\n", []string{"store.redis.replica_ack_timeout: must be between 0 (off) and 500ms"}},
		{"replica ack negative", "    addr: 127.0.0.1:6379\n    replica_ack_timeout: -1ms\n", []string{"store.redis.replica_ack_timeout: must be between 0 (off) and 500ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+tc.redis), env(map[string]string{"CLIENT_SECRET": "s"}))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "replica ack" && cfg.Store.Redis.ReplicaAckTimeout != 100*time.Millisecond {
					t.Fatalf("replica_ack_timeout not read: %v", cfg.Store.Redis.ReplicaAckTimeout)
				}
				if tc.name == "sentinel" && (cfg.Store.Redis.Sentinel.Master != "mymaster" || len(cfg.Store.Redis.Sentinel.Addrs) != 2 || cfg.Store.Redis.Sentinel.Password != "p") {
					t.Fatalf("sentinel not read: %+v", cfg.Store.Redis.Sentinel)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}
