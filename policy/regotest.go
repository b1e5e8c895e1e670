package policy

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is one Rego test of a policy bundle.
type TestResult struct {
	Name     string        `json:"name"` // e.g. data.meetguard.admission_test.test_owner_is_host
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Fail     bool          `json:"fail,omitempty"`
	Skip     bool          `json:"skip,omitempty"`
	Err      string        `json:"error,omitempty"`
	Output   string        `json:"output,omitempty"` // what the test printed
	Duration time.Duration `json:"duration"`
}

// Pass reports whether the test ran and succeeded.
func (t TestResult) Pass() bool { return !t.Fail && !t.Skip && t.Err == "" }

func testResult(r *tester.Result) TestResult {
	t := TestResult{
		Name:     r.Package + "." + r.Name,
		Fail:     r.Fail,
		Skip:     r.Skip,
		Output:   string(r.Output),
		Duration: r.Duration,
	}
	if r.Location != nil {
		t.File, t.Line = r.Location.File, r.Location.Row
	}
	if r.Error != nil {
		t.Err = r.Error.Error()
	}
	return t
}

// Coverage is how much of a bundle's policy (test files excluded) its tests
// evaluate, by source line.
type Coverage struct {
	Percent float64        `json:"percent"`
	Files   []FileCoverage `json:"files"`
}

// FileCoverage is coverage of one policy file.
type FileCoverage struct {
	File       string      `json:"file"`
	Percent    float64     `json:"percent"`
	Covered    int         `json:"covered_lines"`
	NotCovered int         `json:"not_covered_lines"`
	Missed     []LineRange `json:"not_covered,omitempty"`
}

// LineRange is an inclusive range of source lines.
type LineRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// isTestFile follows OPA's convention for test modules.
func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

func coverageOf(cov *cover.Cover, modules map[string]*ast.Module) *Coverage {
	policyModules := maps.Clone(modules)
	maps.DeleteFunc(policyModules, func(name string, _ *ast.Module) bool { return isTestFile(name) })
	rep := cov.Report(policyModules)
	out := &Coverage{}
	var covered, notCovered int
	for name, fr := range rep.Files {
		// The report also lists files that were merely traced (the tests).
		if _, ok := policyModules[name]; !ok {
			continue
		}
		fc := FileCoverage{File: name, Percent: fr.Coverage, Covered: fr.CoveredLines, NotCovered: fr.NotCoveredLines}
		for _, r := range fr.NotCovered {
			fc.Missed = append(fc.Missed, LineRange{Start: r.Start.Row, End: r.End.Row})
		}
		fc.Missed = mergeLines(fc.Missed)
		covered += fc.Covered
		notCovered += fc.NotCovered
		out.Files = append(out.Files, fc)
	}
	if covered+notCovered > 0 {
		out.Percent = 100 * float64(covered) / float64(covered+notCovered)
	}
	slices.SortFunc(out.Files, func(a, b FileCoverage) int { return strings.Compare(a.File, b.File) })
	return out
}

// mergeLines joins overlapping and adjacent line ranges: OPA reports a rule
// head and its body separately even when they share a line.
func mergeLines(rs []LineRange) []LineRange {
	slices.SortFunc(rs, func(a, b LineRange) int { return a.Start - b.Start })
	var out []LineRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].End+1 {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestOptions select the policy to test.
type TestOptions struct {
	Dir                     string
	Bundle                  string
	BundleVerificationKey   string
	BundleVerificationKeyID string
	Run                     string        // regular expression selecting tests by name; empty runs all
	Timeout                 time.Duration // per test; default 30s (correctness, not speed)
}

// TestReport is the outcome of running a bundle's tests.
type TestReport struct {
	Source   string       `json:"source"`
	Revision string       `json:"revision"`
	Results  []TestResult `json:"results"`
	Coverage *Coverage    `json:"coverage"`
}

// Passed counts passing tests.
func (r *TestReport) Passed() int {
	n := 0
	for _, t := range r.Results {
		if t.Pass() {
			n++
		}
	}
	return n
}

// Failed lists tests that failed or errored.
func (r *TestReport) Failed() []TestResult {
	var out []TestResult
	for _, t := range r.Results {
		if !t.Pass() && !t.Skip {
			out = append(out, t)
		}
	}
	return out
}

// Test runs a bundle's Rego tests with OPA's tester, under the same
// capabilities, schemas and strict compile that serving uses, and measures
// coverage. A policy that does not compile is an error; failing tests are
// reported in the result, not as an error.
func Test(ctx context.Context, opts TestOptions) (*TestReport, error) {
	if (opts.Dir == "") == (opts.Bundle == "") {
		return nil, errors.Join(ErrInvalidOptions, errors.New("give exactly one of a policy directory or a bundle file"))
	}
	src, err := readSource(opts.Dir, opts.Bundle)
	if err != nil {
		return nil, err
	}
	v, err := verifierFor(opts.BundleVerificationKey, opts.BundleVerificationKeyID)
	if err != nil {
		return nil, err
	}
	b, err := compile(ctx, src, buildOptions{verify: v, runTests: true, coverage: true, testFilter: opts.Run, testTimeout: opts.Timeout})
	if err != nil {
		return nil, err
	}
	return &TestReport{Source: src.name, Revision: src.hash(), Results: b.tests, Coverage: b.coverage}, nil
}

// TestServing runs the serving revision's own tests with coverage, as Test
// does, on the bytes that revision was built from (not the files as they
// are now, which a rejected edit may have broken). timeout bounds each
// test; 0 means Test's default.
func (e *Engine) TestServing(ctx context.Context, timeout time.Duration) (*TestReport, error) {
	rev := e.live.Load()
	if rev == nil {
		return nil, errors.New("no policy revision loaded")
	}
	src := rev.build.src
	b, err := compile(ctx, src, buildOptions{verify: e.verify, runTests: true, coverage: true, testTimeout: timeout})
	if err != nil {
		return nil, err
	}
	return &TestReport{Source: src.name, Revision: rev.hash, Results: b.tests, Coverage: b.coverage}, nil
}
