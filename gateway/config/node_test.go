package config

import (
	"os"
	"strings"
	"testing"
)

func TestParse_NodeIDDefaultsToTheHostNameAndIsChecked(t *testing.T) {
	base := strings.Replace(goodConfig, "  secret_file: SECRET_FILE\n", "  secret: "+strings.Repeat("k", 40)+"\n", 1)
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name, node string
		want       string // the node id, or the error
		bad        bool
	}{
		{"default", "", host, false},
		{"set", "node:\n  id: gw-2.eu_west\n", "gw-2.eu_west", false},
		{"space", "node:\n  id: 'gw 2'\n", `line 2: node.id: node id "gw 2": only A-Z a-z 0-9 . _ - are allowed (the default is the host name; set node.id)`, true},
		{"quote", "node:\n  id: 'gw\"2'\n", `node.id: node id "gw\"2": only`, true},
		{"too long", "node:\n  id: " + strings.Repeat("n", 65) + "\n", "node.id: node id", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.node+base), env(map[string]string{"CLIENT_SECRET": "s"}))
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Node.ID != tc.want {
				t.Fatalf("node.id %q, want %q", cfg.Node.ID, tc.want)
			}
		})
	}
}
