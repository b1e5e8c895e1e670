package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/meetguard/meetguard/policy"
)

// Exit codes of `meetguard policy`.
const (
	policyOK       = 0
	policyFailed   = 1 // the policy, the input or a test is bad; the message says where
	policyUsage    = 2
	policyDiffered = 3 // replay --fail-on-change found people treated differently
)

const defaultPolicyDir = "policies"

// toolTimeout is the per-decision deadline of the offline tools (eval,
// replay), far above the gateway's.
const toolTimeout = 10 * time.Second

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var usage strings.Builder
	policyUsageText(&usage)
	return dispatch(ctx, "policy", usage.String(), map[string]command{
		"test":   runPolicyTest,
		"check":  runPolicyCheck,
		"eval":   runPolicyEval,
		"fmt":    runPolicyFmt,
		"replay": runPolicyReplay,
		"init":   runPolicyInit,
	}, args, stdout, stderr)
}

func policyUsageText(w io.Writer) {
	fmt.Fprint(w, `usage: meetguard policy <command> [flags] [DIR]

DIR is a policy directory (default "policies"); --bundle FILE takes an OPA bundle instead.

commands:
  init DIR                           write the shipped bundle (policies, tests, data.json, schema) to edit
  test [DIR]                         run the Rego tests with coverage; non-zero exit on failure
  check [DIR]                        parse, compile, schema type-check and capability-check
  eval --input FILE [--explain] [DIR]  print the decision for an input document and why
  fmt [-w] [PATH...]                 list (or with -w rewrite) files not in opa fmt form
  replay --audit FILE... --candidate DIR
                                     re-decide logged admissions under a candidate policy and
                                     list who would be treated differently

exit status: 0 ok, 1 policy/input/test problem, 2 usage, 3 replay found changes (--fail-on-change)
`)
}

// sourceFlags are the flags every subcommand that loads a policy takes.
type sourceFlags struct {
	bundle, key, keyID string
}

func (s *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.bundle, "bundle", "", "OPA bundle file (.tar.gz) instead of a directory")
	fs.StringVar(&s.key, "verification-key", "", "PEM public key; require the policy to be signed with it")
	fs.StringVar(&s.keyID, "verification-key-id", "", "key id the signature must name (default \""+policy.DefaultBundleKeyID+"\")")
}

// dir picks the policy directory from the positional arguments.
func (s *sourceFlags) dir(args []string) (string, error) {
	switch {
	case len(args) > 1:
		return "", fmt.Errorf("one policy directory expected, got %d: %s", len(args), strings.Join(args, " "))
	case s.bundle != "" && len(args) == 1:
		return "", errors.New("give a directory or --bundle, not both")
	case s.bundle != "":
		return "", nil
	case len(args) == 1:
		return args[0], nil
	}
	return defaultPolicyDir, nil
}

// reportErr prints an error for people: every problem of a load error on
// its own line, file:line first.
func reportErr(w io.Writer, cmd string, err error) {
	var le *policy.LoadError
	if errors.As(err, &le) && len(le.Problems) > 0 {
		fmt.Fprintf(w, "meetguard policy %s: %s: %s failed\n", cmd, le.Source, le.Stage)
		for _, p := range le.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintf(w, "meetguard policy %s: %v\n", cmd, err)
}

func runPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meetguard policy test", stderr)
	var src sourceFlags
	src.register(fs)
	verbose := fs.Bool("v", false, "list every test, not only failures")
	run := fs.String("run", "", "run only tests whose name matches this regular expression")
	threshold := fs.Float64("threshold", 95, "fail if coverage of policy lines (tests excluded) is below this percentage")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	// A test is a correctness check, not a speed check: a busy laptop or CI
	// runner must not fail a correct bundle because one test ran slowly.
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of each test")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return policyUsage
	}
	dir, err := src.dir(pos)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard policy test: %v\n", err)
		return policyUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "meetguard policy test: --timeout must be positive")
		return policyUsage
	}
	if *threshold < 0 || *threshold > 100 {
		fmt.Fprintln(stderr, "meetguard policy test: --threshold must be between 0 and 100")
		return policyUsage
	}
	rep, err := policy.Test(ctx, policy.TestOptions{Dir: dir, Bundle: src.bundle, BundleVerificationKey: src.key, BundleVerificationKeyID: src.keyID, Run: *run, Timeout: *timeout})
	if err != nil {
		reportErr(stderr, "test", err)
		return policyFailed
	}
	failed := rep.Failed()
	belowThreshold := rep.Coverage != nil && rep.Coverage.Percent < *threshold
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printTestReport(stdout, rep, failed, *verbose, *threshold)
	}
	switch {
	case len(rep.Results) == 0:
		fmt.Fprintln(stderr, "meetguard policy test: no tests found")
		return policyFailed
	case len(failed) > 0:
		return policyFailed
	case belowThreshold:
		fmt.Fprintf(stderr, "meetguard policy test: coverage %.1f%% is below the %.1f%% threshold\n", rep.Coverage.Percent, *threshold)
		return policyFailed
	}
	return policyOK
}

func printTestReport(w io.Writer, rep *policy.TestReport, failed []policy.TestResult, verbose bool, threshold float64) {
	for _, t := range rep.Results {
		if !verbose && (t.Pass() || t.Skip) {
			continue
		}
		status := "PASS"
		switch {
		case t.Skip:
			status = "SKIP"
		case !t.Pass():
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s %s (%s:%d) %v\n", status, t.Name, t.File, t.Line, t.Duration.Round(time.Microsecond))
		if t.Err != "" {
			fmt.Fprintf(w, "     error: %s\n", t.Err)
		}
		if out := strings.TrimSpace(t.Output); out != "" && !t.Pass() {
			for _, l := range strings.Split(out, "\n") {
				fmt.Fprintf(w, "     printed: %s\n", l)
			}
		}
	}
	if verbose || len(failed) > 0 {
		fmt.Fprintln(w)
	}
	verdict := "PASS"
	if len(failed) > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: %d/%d tests passed (%s, revision %s)\n", verdict, rep.Passed(), len(rep.Results), rep.Source, shortRev(rep.Revision))
	if rep.Coverage == nil {
		return
	}
	fmt.Fprintf(w, "coverage: %.1f%% of policy lines (test files excluded; threshold %.1f%%)\n", rep.Coverage.Percent, threshold)
	for _, f := range rep.Coverage.Files {
		fmt.Fprintf(w, "  %6.1f%%  %s\n", f.Percent, f.File)
		for _, r := range f.Missed {
			if r.Start == r.End {
				fmt.Fprintf(w, "           not covered: %s:%d\n", f.File, r.Start)
			} else {
				fmt.Fprintf(w, "           not covered: %s:%d-%d\n", f.File, r.Start, r.End)
			}
		}
	}
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

func runPolicyCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meetguard policy check", stderr)
	var src sourceFlags
	src.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return policyUsage
	}
	dir, err := src.dir(pos)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard policy check: %v\n", err)
		return policyUsage
	}
	rev, err := policy.Check(ctx, policy.CheckOptions{Dir: dir, Bundle: src.bundle, BundleVerificationKey: src.key, BundleVerificationKeyID: src.keyID})
	if err != nil {
		reportErr(stderr, "check", err)
		return policyFailed
	}
	fmt.Fprintf(stdout, "ok: %s (revision %s)\n", firstNonEmpty(src.bundle, dir), rev)
	return policyOK
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func runPolicyEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meetguard policy eval", stderr)
	var src sourceFlags
	src.register(fs)
	inputFile := fs.String("input", "", "input document (JSON, the shape of policies/schema/input.json); - for stdin")
	query := fs.String("query", "decision", "decision, create_room, or a full query such as data.meetguard.admission.decision")
	explain := fs.Bool("explain", false, "also print every rule of the decision's package as evaluated for this input")
	trace := fs.Bool("trace", false, "also print OPA's full evaluation trace")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return policyUsage
	}
	dir, err := src.dir(pos)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard policy eval: %v\n", err)
		return policyUsage
	}
	if *inputFile == "" {
		fmt.Fprintln(stderr, "meetguard policy eval: --input is required")
		return policyUsage
	}
	in, err := readInputFile(*inputFile)
	if err != nil {
		reportErr(stderr, "eval", err)
		return policyFailed
	}
	opts := policy.Options{Dir: dir, Bundle: src.bundle, BundleVerificationKey: src.key, BundleVerificationKeyID: src.keyID, Timeout: toolTimeout}
	if strings.HasPrefix(*query, "data.") {
		if strings.HasSuffix(*query, ".create_room") {
			opts.CreateQuery = *query
		} else {
			opts.Query = *query
		}
	}
	eng, err := policy.New(ctx, opts)
	if err != nil {
		reportErr(stderr, "eval", err)
		return policyFailed
	}
	ex, err := eng.Explain(ctx, *query, in, *trace)
	if err != nil {
		reportErr(stderr, "eval", err)
		return policyFailed
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(ex.Decision)
	fmt.Fprintf(stdout, "\n%s: %s\n", ex.Query, policy.Summary(ex.Decision))
	if *explain {
		fmt.Fprintf(stdout, "\nwhy: the rules of %s for this input\n", ex.Package)
		names := make([]string, 0, len(ex.Values))
		for name := range ex.Values {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			b, _ := json.Marshal(ex.Values[name])
			fmt.Fprintf(stdout, "  %s = %s\n", name, b)
		}
	}
	if *trace {
		fmt.Fprintf(stdout, "\ntrace:\n%s", ex.Trace)
	}
	return policyOK
}

func readInputFile(name string) (policy.Input, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1))
		name = "stdin"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return policy.Input{}, err
	}
	return policy.ParseInput(name, data)
}

func runPolicyFmt(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meetguard policy fmt", stderr)
	write := fs.Bool("w", false, "rewrite files in place instead of listing them")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return policyUsage
	}
	if len(pos) == 0 {
		pos = []string{defaultPolicyDir}
	}
	files, err := policy.RegoFiles(pos...)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard policy fmt: %v\n", err)
		return policyFailed
	}
	status := policyOK
	for _, f := range files {
		r, err := policy.FormatFile(f)
		if err != nil {
			reportErr(stderr, "fmt", err)
			status = policyFailed
			continue
		}
		if !r.Changed {
			continue
		}
		if !*write {
			fmt.Fprintf(stdout, "%s: not formatted\n", f)
			status = policyFailed
			continue
		}
		if err := policy.WriteFormatted(r); err != nil {
			fmt.Fprintf(stderr, "meetguard policy fmt: %v\n", err)
			status = policyFailed
			continue
		}
		fmt.Fprintf(stdout, "%s: formatted\n", f)
	}
	return status
}

// fileList is a repeatable flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func runPolicyReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meetguard policy replay", stderr)
	var audits fileList
	fs.Var(&audits, "audit", "audit log (JSON lines); repeat, or list more files after the flags")
	candidate := fs.String("candidate", "", "candidate policy directory")
	candidateBundle := fs.String("candidate-bundle", "", "candidate OPA bundle file instead of a directory")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	failOnChange := fs.Bool("fail-on-change", false, "exit 3 if anyone would be treated differently")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return policyUsage
	}
	audits = append(audits, pos...)
	if len(audits) == 0 || (*candidate == "") == (*candidateBundle == "") {
		fmt.Fprintln(stderr, "meetguard policy replay: --audit FILE and exactly one of --candidate DIR or --candidate-bundle FILE are required")
		return policyUsage
	}
	// Offline: a busy laptop must not turn decisions into timeouts that
	// would show up as changes.
	eng, err := policy.New(ctx, policy.Options{Dir: *candidate, Bundle: *candidateBundle, Timeout: toolTimeout})
	if err != nil {
		reportErr(stderr, "replay", err)
		return policyFailed
	}
	bar := newProgress(stderr, "replaying", audits)
	rep, err := policy.ReplayFilesProgress(ctx, eng, audits, bar.add())
	bar.done()
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard policy replay: %v\n", err)
		return policyFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReplay(stdout, rep)
	}
	if *failOnChange && len(rep.Changes) > 0 {
		return policyDiffered
	}
	return policyOK
}

// plural is n with the noun in the right number ("1 person", "2 people").
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func printReplay(w io.Writer, rep *policy.ReplayReport) {
	fmt.Fprintf(w, "replayed %s under %s (revision %s); %s, %s skipped\n",
		plural(rep.Decisions, "admission decision", "admission decisions"), rep.Candidate, shortRev(rep.Revision),
		plural(rep.Other, "other event", "other events"), plural(len(rep.Warnings), "line", "lines"))
	if len(rep.Changes) == 0 {
		fmt.Fprintln(w, "nobody would be treated differently")
		return
	}
	people := 0
	seen := map[string]bool{}
	for _, c := range rep.Changes {
		if k := c.Iss + "\x00" + c.Sub; !seen[k] {
			seen[k] = true
			people++
		}
	}
	fmt.Fprintf(w, "%s would be treated differently (%s):\n", plural(people, "person", "people"), plural(len(rep.Changes), "distinct change", "distinct changes"))
	for _, c := range rep.Changes {
		who := c.Email
		if who == "" {
			who = c.Sub
		}
		times := ""
		if c.Count > 1 {
			times = fmt.Sprintf(" (%d decisions)", c.Count)
		}
		fmt.Fprintf(w, "\n  %s [iss=%s sub=%s] in room %q%s, first at %s:%d\n", who, c.Iss, c.Sub, c.Room, times, c.File, c.Line)
		fmt.Fprintf(w, "    was: %s\n", policy.Summary(c.Old))
		fmt.Fprintf(w, "    now: %s\n", policy.Summary(c.New))
	}
}
