package reload

import (
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/config"
)

func baseConfig() *config.Config {
	return &config.Config{
		Listen: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080",
		OIDC:      config.OIDC{Issuer: "https://idp.example", ClientID: "mg", ClientSecret: "s3cret"},
		Upstreams: []config.Upstream{{Name: "app", URL: "http://10.0.0.1", Prefix: "/"}, {Name: "lk", Kind: "livekit", URL: "http://10.0.0.2", Prefix: "/lk/", LiveKit: &config.LiveKit{APIKey: "k"}}},
		Store:     config.Store{Kind: "memory"},
		Limits:    config.Limits{MaxBodyBytes: 1 << 20, ReadHeaderTimeout: 10 * time.Second},
	}
}

// TestPlan says, for each kind of change, whether it is applied in place
// or reported as needing a restart; a restart-only change never reaches
// the configuration put in force.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name             string
		edit             func(*config.Config)
		changed, restart []string
	}{
		{"nothing", func(*config.Config) {}, nil, nil},
		{"body limit", func(c *config.Config) { c.Limits.MaxBodyBytes = 1024 }, []string{"limits.max_body_bytes"}, nil},
		{"server timeout", func(c *config.Config) { c.Limits.ReadHeaderTimeout = time.Second }, nil, []string{"limits.read_header_timeout"}},
		{"listen", func(c *config.Config) { c.Listen = "127.0.0.1:9" }, nil, []string{"listen"}},
		{"store kind", func(c *config.Config) { c.Store.Kind = "redis" }, nil, []string{"store.kind"}},
		{"secret changes name the field only", func(c *config.Config) { c.OIDC.ClientSecret = "other" }, nil, []string{"oidc.client_secret"}},
		{"trusted proxies", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8"} }, []string{"trusted_proxies"}, nil},
		{"upstream url", func(c *config.Config) { c.Upstreams[0].URL = "http://10.0.0.9" }, []string{"upstreams[app].url"}, nil},
		{"new generic upstream", func(c *config.Config) {
			c.Upstreams = append(c.Upstreams, config.Upstream{Name: "docs", URL: "http://10.0.0.3", Prefix: "/docs/"})
		}, []string{"upstreams[docs]"}, nil},
		{"adapter setting", func(c *config.Config) { c.Upstreams[1].LiveKit.APIKey = "k2" }, nil, []string{"upstreams[lk].livekit.api_key"}},
		{"adapter change holds back the whole list", func(c *config.Config) {
			c.Upstreams[0].URL = "http://10.0.0.9"
			c.Upstreams[1].Kind = "generic"
		}, nil, []string{"upstreams[lk].kind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, next := baseConfig(), baseConfig()
			tc.edit(next)
			live, changed, restart := plan(cur, next)
			if !slices.Equal(changed, tc.changed) || !slices.Equal(restart, tc.restart) {
				t.Fatalf("changed %v restart %v, want %v %v", changed, restart, tc.changed, tc.restart)
			}
			// Nothing that needs a restart is put in force.
			if live.Listen != cur.Listen || live.Store.Kind != cur.Store.Kind || live.OIDC.ClientSecret != cur.OIDC.ClientSecret ||
				live.Limits.ReadHeaderTimeout != cur.Limits.ReadHeaderTimeout {
				t.Fatalf("a restart-only setting was applied: %+v", live)
			}
			if len(tc.restart) > 0 && !slices.ContainsFunc(tc.restart, func(p string) bool { return p == "listen" }) {
				for i := range live.Upstreams {
					if len(restartOnly(tc.restart)) > 0 && live.Upstreams[i].URL != cur.Upstreams[i].URL {
						t.Fatalf("upstreams applied although %v needs a restart", tc.restart)
					}
				}
			}
		})
	}
}

func restartOnly(ps []string) []string {
	var out []string
	for _, p := range ps {
		if len(p) > 9 && p[:9] == "upstreams" {
			out = append(out, p)
		}
	}
	return out
}
