package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The dashboard (deploy/grafana) and alert rules (deploy/prometheus)
// query these metrics by name; a renamed metric would leave a panel empty
// and an alert silent without anyone noticing. These readers take the
// queries out of both files so a test can check every name against a
// live /metrics, and say exactly where a malformed file is wrong.

// Query is one PromQL expression of a deploy file and where it is.
type Query struct {
	// Where names the panel ("panel \"Admissions\"") or rule ("alert
	// MeetguardAuditWriteFailures").
	Where string
	Expr  string
}

// ErrDeployFile is wrapped by every error about a malformed file.
var ErrDeployFile = errors.New("malformed deploy file")

// DashboardQueries reads a Grafana dashboard (JSON) and returns every
// panel target's expression, rows' nested panels included.
func DashboardQueries(name string, b []byte) ([]Query, error) {
	var d struct {
		Title  string           `json:"title"`
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrDeployFile, name, jsonProblem(b, err))
	}
	if d.Title == "" {
		return nil, fmt.Errorf("%w: %s: dashboard has no title", ErrDeployFile, name)
	}
	if len(d.Panels) == 0 {
		return nil, fmt.Errorf("%w: %s: dashboard has no panels", ErrDeployFile, name)
	}
	var out []Query
	var walk func(ps []dashboardPanel) error
	walk = func(ps []dashboardPanel) error {
		for i, p := range ps {
			where := fmt.Sprintf("panel %d %q", i, p.Title)
			if p.Type != "row" && len(p.Targets) == 0 && p.Type != "text" {
				return fmt.Errorf("%w: %s: %s has no targets", ErrDeployFile, name, where)
			}
			for j, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("%w: %s: %s target %d has no expr", ErrDeployFile, name, where, j)
				}
				out = append(out, Query{Where: where, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// jsonProblem turns a decoding error into "line N, column M: problem".
func jsonProblem(b []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 || off > int64(len(b)) {
		return err.Error()
	}
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// RuleQueries reads a Prometheus rule file (YAML) and returns every
// alerting and recording rule's expression. It checks the shape strictly
// (unknown keys, a rule that is both or neither alert and record, a rule
// without expr, duplicate group names); promtool checks the PromQL.
func RuleQueries(name string, b []byte) ([]Query, error) {
	var f struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Limit    int    `yaml:"limit"`
			Rules    []struct {
				Alert         string            `yaml:"alert"`
				Record        string            `yaml:"record"`
				Expr          string            `yaml:"expr"`
				For           string            `yaml:"for"`
				KeepFiringFor string            `yaml:"keep_firing_for"`
				Labels        map[string]string `yaml:"labels"`
				Annotations   map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDeployFile, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(f.Groups) == 0 {
		return nil, fmt.Errorf("%w: %s: no rule groups", ErrDeployFile, name)
	}
	var out []Query
	var groups []string
	for i, g := range f.Groups {
		if g.Name == "" {
			return nil, fmt.Errorf("%w: %s: groups[%d]: name is required", ErrDeployFile, name, i)
		}
		if slices.Contains(groups, g.Name) {
			return nil, fmt.Errorf("%w: %s: groups[%d]: group name %q repeated", ErrDeployFile, name, i, g.Name)
		}
		groups = append(groups, g.Name)
		for j, r := range g.Rules {
			at := fmt.Sprintf("%s: group %q rules[%d]", name, g.Name, j)
			var where string
			switch {
			case r.Alert != "" && r.Record != "":
				return nil, fmt.Errorf("%w: %s: both alert and record", ErrDeployFile, at)
			case r.Alert != "":
				where = "alert " + r.Alert
			case r.Record != "":
				where = "record " + r.Record
			default:
				return nil, fmt.Errorf("%w: %s: alert or record is required", ErrDeployFile, at)
			}
			if strings.TrimSpace(r.Expr) == "" {
				return nil, fmt.Errorf("%w: %s (%s): expr is required", ErrDeployFile, at, where)
			}
			out = append(out, Query{Where: where, Expr: r.Expr})
		}
	}
	return out, nil
}

// metricName matches this gateway's metric names in PromQL: they all
// start with the namespace, so they cannot be confused with functions,
// label names or keywords.
var metricName = regexp.MustCompile(`\b` + Namespace + `_[a-zA-Z0-9_]+`)

// QueryMetrics lists the meetguard metric names an expression uses,
// histogram series (_bucket, _sum, _count) as written.
func QueryMetrics(expr string) []string {
	names := metricName.FindAllString(expr, -1)
	slices.Sort(names)
	return slices.Compact(names)
}
