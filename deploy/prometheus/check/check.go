// Package check validates Prometheus rule files with Prometheus's own code,
// as `promtool check rules` does, without the promtool binary (a build too
// large for CI): rulefmt decodes the file strictly (unknown fields refused),
// checks every rule and parses each expression with the PromQL parser and
// each annotation as a template; then, like promtool's duplicate-rules lint,
// two alerts with the same name and labels are refused.
//
// It is a separate Go module so that the Prometheus module stays out of the
// gateway's dependencies; `make unit` and `make deploy-check` run its tests.
package check

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Rules reads and validates the rule file at path. Every error names the
// file and, where Prometheus knows it, the line and column of the rule.
func Rules(path string) (*rulefmt.RuleGroups, []error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{err}
	}
	// promtool's defaults: strict fields, UTF-8 names, standard functions.
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) == 0 {
		errs = duplicates(content, groups)
	}
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, errs[i])
	}
	return groups, errs
}

// duplicates refuses a rule whose name and labels (group labels merged with
// the rule's) equal an earlier rule's: Prometheus would run both and their
// alerts would overwrite each other. promtool only warns unless --lint-fatal;
// CI treats it as an error.
func duplicates(content []byte, groups *rulefmt.RuleGroups) []error {
	// rulefmt keeps no positions in RuleGroups; its node types do.
	var nodes struct {
		Groups []rulefmt.RuleGroupNode `yaml:"groups"`
	}
	if err := yaml.Unmarshal(content, &nodes); err != nil {
		return []error{err}
	}
	type first struct {
		line, column int
	}
	seen := map[string]first{}
	var errs []error
	for g, group := range groups.Groups {
		for r, rule := range group.Rules {
			name, node := rule.Alert, nodes.Groups[g].Rules[r].Alert
			if name == "" {
				name, node = rule.Record, nodes.Groups[g].Rules[r].Record
			}
			labels := maps.Clone(group.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			maps.Copy(labels, rule.Labels)
			key := name
			for _, k := range slices.Sorted(maps.Keys(labels)) {
				key += "\xff" + k + "\xff" + labels[k]
			}
			if f, ok := seen[key]; ok {
				errs = append(errs, fmt.Errorf("%d:%d: group %q, rule %d, %q: same name and labels as the rule at %d:%d",
					node.Line, node.Column, group.Name, r+1, name, f.line, f.column))
				continue
			}
			seen[key] = first{node.Line, node.Column}
		}
	}
	return errs
}

// Describe joins errors one a line, for test failures and messages.
func Describe(errs []error) string {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}
