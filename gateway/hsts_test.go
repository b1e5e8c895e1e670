package gateway_test

import (
	"testing"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
)

func TestHSTS_OnlyWhenPublicURLIsHTTPS(t *testing.T) {
	tests := []struct {
		name, publicURL, want string
	}{
		{"https public url", "https://meet.example.test", "max-age=31536000"},
		{"plain public url", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{mutate: func(c *config.Config) {
				if tt.publicURL != "" {
					c.PublicURL = tt.publicURL
				}
			}})
			// Every answer carries it, including refusals and redirects to
			// login: the first response a browser sees must pin https.
			for _, path := range []string{"/", "/room/x", "/%2e%2e/etc"} {
				resp := get(t, browsertest.Client(t), e.URL+path, nil)
				resp.Body.Close()
				if got := resp.Header.Get("Strict-Transport-Security"); got != tt.want {
					t.Fatalf("%s: Strict-Transport-Security %q, want %q", path, got, tt.want)
				}
			}
		})
	}
}
