package check

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The shipped rules pass Prometheus's own checks, and every alert carries
// what on-call relies on: a known severity and a summary.
func TestShippedAlertRules(t *testing.T) {
	groups, errs := Rules("../alerts.yml")
	if len(errs) > 0 {
		t.Fatalf("deploy/prometheus/alerts.yml:\n%s", Describe(errs))
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("group %q: rule %q is not an alert (the file ships alerts only)", g.Name, r.Record)
				continue
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("group %q, alert %q: severity label %q, want critical, warning or info", g.Name, r.Alert, r.Labels["severity"])
			}
			if strings.TrimSpace(r.Annotations["summary"]) == "" {
				t.Errorf("group %q, alert %q: no summary annotation", g.Name, r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("deploy/prometheus/alerts.yml has no rules")
	}
}

// Broken rule files are refused with the place of the fault, so the check
// above cannot pass a file Prometheus would refuse to load.
func TestBrokenRulesRefused(t *testing.T) {
	const head = "groups:\n  - name: g\n    rules:\n"
	const ok = "      - alert: A\n        expr: up == 0\n        labels:\n          severity: warning\n"
	for _, tc := range []struct {
		name, rules string
		want        *regexp.Regexp
	}{
		{"valid", ok, nil},
		{"broken expression", ok + "      - alert: B\n        expr: sum(rate(up[5m])\n",
			regexp.MustCompile(`: 9:15: group "g", rule 2, "B": could not parse expression: .*unclosed left parenthesis`)},
		{"unknown PromQL function", "      - alert: B\n        expr: rat(up[5m]) > 0\n",
			regexp.MustCompile(`: 5:15: group "g", rule 1, "B": could not parse expression: .*unknown function with name "rat"`)},
		{"unknown field", "      - alert: B\n        exprr: up == 0\n",
			regexp.MustCompile(`line 5: field exprr not found`)},
		{"missing expression", "      - alert: B\n",
			regexp.MustCompile(`group "g", rule 1, "B": field 'expr' must be set`)},
		{"bad annotation template", "      - alert: B\n        expr: up == 0\n        annotations:\n          summary: \"{{ $labels.instance \"\n",
			regexp.MustCompile(`group "g", rule 1, "B": .*template`)},
		{"duplicate alert", ok + ok,
			regexp.MustCompile(`: 8:16: group "g", rule 2, "A": same name and labels as the rule at 4:16`)},
		// rulefmt v0.316.0 gives a repeated group the position 0:0, so
		// only the message is checked.
		{"duplicate group", ok + "  - name: g\n    rules:\n" + ok,
			regexp.MustCompile(`groupname: "g" is repeated`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "alerts.yml")
			if err := os.WriteFile(path, []byte(head+tc.rules), 0o600); err != nil {
				t.Fatal(err)
			}
			_, errs := Rules(path)
			got := Describe(errs)
			if tc.want == nil {
				if len(errs) > 0 {
					t.Fatalf("valid file refused:\n%s", got)
				}
				return
			}
			if !tc.want.MatchString(got) {
				t.Fatalf("errors:\n%s\nwant a match for %s", got, tc.want)
			}
			if !strings.HasPrefix(got, path+": ") {
				t.Errorf("error does not name the file %s:\n%s", path, got)
			}
		})
	}
}
