package policy

import (
	"context"
	"testing"
)

// minShippedCoverage is the coverage the shipped bundle's tests must reach.
const minShippedCoverage = 95.0

// TestShippedPolicy_RegoTests runs the Rego tests of the shipped bundle, each
// as a subtest, so that `go test ./policy/...` fails when a rule or its test
// breaks, and checks their coverage.
func TestShippedPolicy_RegoTests(t *testing.T) {
	rep, err := Test(context.Background(), TestOptions{Dir: shippedPolicies})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) < 40 {
		t.Errorf("only %d Rego tests found", len(rep.Results))
	}
	for _, r := range rep.Results {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Pass() {
				t.Errorf("%s:%d: %s failed %s %s", r.File, r.Line, r.Name, r.Err, r.Output)
			}
		})
	}
	if rep.Coverage == nil || rep.Coverage.Percent < minShippedCoverage {
		t.Fatalf("coverage %+v, want at least %.0f%%", rep.Coverage, minShippedCoverage)
	}
	for _, f := range rep.Coverage.Files {
		if isTestFile(f.File) {
			t.Errorf("coverage counts test file %s", f.File)
		}
		for _, r := range f.Missed {
			t.Logf("not covered: %s:%d-%d", f.File, r.Start, r.End)
		}
	}
	t.Logf("%d Rego tests, coverage %.1f%%", len(rep.Results), rep.Coverage.Percent)
}

func TestTest_ReportsFailingTestsAndUncoveredLines(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"p.rego": "package meetguard.admission\n\ndecision := {\"allow\": false}\n\nunused_rule if input.room.locked\n",
		"p_test.rego": "package meetguard.admission_test\n\nimport data.meetguard.admission\n\n" +
			"test_denies if admission.decision.allow == false\n\ntest_wrong if admission.decision.allow == true\n",
	})
	rep, err := Test(context.Background(), TestOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	failed := rep.Failed()
	if rep.Passed() != 1 || len(failed) != 1 || failed[0].Name != "data.meetguard.admission_test.test_wrong" || failed[0].Line != 7 {
		t.Errorf("results %+v", rep.Results)
	}
	if rep.Coverage.Percent >= 100 || len(rep.Coverage.Files) != 1 || len(rep.Coverage.Files[0].Missed) != 1 || rep.Coverage.Files[0].Missed[0].Start != 5 {
		t.Errorf("coverage %+v, want line 5 of p.rego not covered", rep.Coverage)
	}
	// The engine refuses to serve it.
	if _, err := New(context.Background(), Options{Dir: dir}); err == nil {
		t.Error("New served a bundle whose tests fail")
	}
}
