package metrics_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/metrics"
)

const (
	dashboardFile = "../../deploy/grafana/meetguard.json"
	rulesFile     = "../../deploy/prometheus/alerts.yml"
)

func deployQueries(t *testing.T) []metrics.Query {
	t.Helper()
	var all []metrics.Query
	for _, f := range []struct {
		path string
		read func(string, []byte) ([]metrics.Query, error)
	}{{dashboardFile, metrics.DashboardQueries}, {rulesFile, metrics.RuleQueries}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		qs, err := f.read(f.path, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 0 {
			t.Fatalf("%s: no queries", f.path)
		}
		all = append(all, qs...)
	}
	return all
}

// TestDeployFiles_EveryMetricIsServed: a panel or alert naming a metric
// the gateway does not serve would stay empty or silent for ever. Every
// name the dashboard and the rules use must be in a real gateway's
// /metrics (histogram series by their family).
func TestDeployFiles_EveryMetricIsServed(t *testing.T) {
	n := startNode(t)
	// One request and one decision, so the series that appear on first
	// use (requests by code, the policy revision) exist.
	if st, _ := n.api(http.MethodPost, "nosuchroom", "join", n.token(staff("sam")), nil); st == 0 {
		t.Fatal("no answer")
	}
	fams := n.scrape()
	used := map[string]bool{}
	for _, q := range deployQueries(t) {
		names := metrics.QueryMetrics(q.Expr)
		if len(names) == 0 {
			t.Errorf("%s: %q uses no meetguard metric", q.Where, q.Expr)
		}
		for _, name := range names {
			used[name] = true
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suffix); ok && fams[f] != nil && fams[f].GetType().String() == "HISTOGRAM" {
					family = f
				}
			}
			if fams[family] == nil {
				t.Errorf("%s uses %s, which /metrics does not serve", q.Where, name)
			}
		}
	}
	// And the other way: every security metric is on the dashboard.
	for name := range fams {
		if !strings.HasPrefix(name, metrics.Namespace+"_") || name == "meetguard_http_request_duration_seconds" {
			continue
		}
		found := used[name] || used[name+"_bucket"]
		if !found {
			t.Errorf("%s is served but neither the dashboard nor the rules use it", name)
		}
	}
}

func TestDeployFiles_MalformedFilesSayWhere(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"truncated dashboard", "d.json", "{\n  \"title\": \"x\",\n  \"panels\": [\n", "d.json: line 4, column 0: unexpected end of JSON input"},
		{"dashboard syntax", "d.json", "{\n  \"title\": \"x\",\n  \"panels\": [}\n", "d.json: line 3, column 14: invalid character '}'"},
		{"dashboard wrong type", "d.json", "{\"title\": \"x\", \"panels\": {}}", "d.json: line 1, column 26: json: cannot unmarshal object"},
		{"dashboard no title", "d.json", `{"panels": [{"title": "a", "targets": [{"expr": "up"}]}]}`, "dashboard has no title"},
		{"panel without expr", "d.json", `{"title": "x", "panels": [{"title": "Admissions", "targets": [{"refId": "A"}]}]}`, `panel 0 "Admissions" target 0 has no expr`},
		{"nested panel without targets", "d.json", `{"title": "x", "panels": [{"type": "row", "title": "r", "panels": [{"title": "inner"}]}]}`, `panel 0 "inner" has no targets`},
		{"rules syntax", "r.yml", "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: [\n", "r.yml: line 5"},
		{"rules unknown key", "r.yml", "groups:\n  - name: a\n    rules:\n      - alert: X\n        exprr: up\n", "r.yml: unmarshal errors:\n  line 5: field exprr not found"},
		{"rule without expr", "r.yml", "groups:\n  - name: a\n    rules:\n      - alert: X\n", `r.yml: group "a" rules[0] (alert X): expr is required`},
		{"rule both kinds", "r.yml", "groups:\n  - name: a\n    rules:\n      - alert: X\n        record: y\n        expr: up\n", "both alert and record"},
		{"rule neither kind", "r.yml", "groups:\n  - name: a\n    rules:\n      - expr: up\n", "alert or record is required"},
		{"no groups", "r.yml", "groups: []\n", "no rule groups"},
		{"repeated group", "r.yml", "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n", `groups[1]: group name "a" repeated`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := metrics.DashboardQueries
			if strings.HasSuffix(tc.file, ".yml") {
				read = metrics.RuleQueries
			}
			_, err := read(tc.file, []byte(tc.content))
			if !errors.Is(err, metrics.ErrDeployFile) {
				t.Fatalf("err = %v, want ErrDeployFile", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// promtool finds the promtool that .ci/run builds, or skips.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MEETGUARD_PROMTOOL")
	if p == "" {
		t.Skip("MEETGUARD_PROMTOOL not set; build it with: GOBIN=$HOME/.cache/meetguard/promtool go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0 (or run .ci/run)")
	}
	return p
}

// TestAlertRules_Promtool checks the shipped rules with Prometheus's own
// checker and runs their unit tests (alerts_test.yml: each alert fires on
// the series that should fire it and stays quiet otherwise).
func TestAlertRules_Promtool(t *testing.T) {
	bin := promtool(t)
	if out, err := exec.Command(bin, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "test", "rules", "../../deploy/prometheus/alerts_test.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	// And it does refuse a broken expression, with the rule's place.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: sum(rate(meetguard_kicks_total[5m])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "5:") {
		t.Fatalf("promtool accepted a broken rule: %v\n%s", err, out)
	}
}

func FuzzDashboardQueries(f *testing.F) {
	if b, err := os.ReadFile(dashboardFile); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"title": "x", "panels": [{"title": "a", "targets": [{"expr": "meetguard_kicks_total"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		qs, err := metrics.DashboardQueries("f.json", b)
		if err != nil && !errors.Is(err, metrics.ErrDeployFile) {
			t.Fatalf("unwrapped error %v", err)
		}
		for _, q := range qs {
			_ = metrics.QueryMetrics(q.Expr)
		}
	})
}

func FuzzRuleQueries(f *testing.F) {
	if b, err := os.ReadFile(rulesFile); err == nil {
		f.Add(b)
	}
	f.Add([]byte("groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := metrics.RuleQueries("f.yml", b)
		if err != nil && !errors.Is(err, metrics.ErrDeployFile) {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}
