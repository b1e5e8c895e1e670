package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
)

const auditUsage = `usage: meetguard audit <command> [flags] FILE...

commands:
  verify [--key FILE.pub]... [--sealed] FILE...
        check the hash chain and checkpoint signatures across rotated files;
        the logs of several nodes are verified chain by chain (one per node).
        exit 0 intact, 1 tampered (names the first bad record), 3 torn tail
        (a crash during a write, not tampering), 2 usage or read error;
        a progress bar on stderr when it is a terminal
  query [filters] [--wide] [--json] FILE...
        print matching records as a table that fits 120 columns (ids
        shortened), every cell in full with --wide, or JSON lines with --json
  tail [-f] [-n N] [filters] [--wide] [--json] FILE
        print the last N matching records of the active file; -f follows it
  report --room R [--since T] [--until T] [--markdown] [--key FILE.pub] FILE...
        the story of one meeting, with the log's integrity; the logs of
        several nodes make one time-ordered story
  keygen --out FILE
        create an audit signing key (FILE, mode 0600) and FILE.pub

FILE... may be the logs of several gateway nodes (every record names its node):
         query and report interleave them by time, verify checks each node's chain
filters: --node N  --room R  --subject S (subject, actor or target)  --event E (name or glob: room.*)
         --decision allow|lobby|deny  --since T  --until T
times:   RFC 3339 (2026-03-02T09:00:00Z), a date (2026-03-02), or a duration ago (2h)
keys:    without --key, FILE.pub beside the log is used; pass --key with a copy you trust
`

// Exit codes of `meetguard audit verify`.
const (
	auditExitIntact   = 0
	auditExitTampered = 1
	auditExitUsage    = 2
	auditExitTorn     = 3
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "audit", auditUsage, map[string]command{
		"verify": auditVerify,
		"query":  auditQuery,
		"tail":   auditTail,
		"report": auditReport,
		"keygen": auditKeygen,
	}, args, stdout, stderr)
}

func auditFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	flags := newFlagSet("meetguard audit "+name, stderr)
	flags.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	return flags
}

// auditKeyFiles is a repeatable --key flag.
type auditKeyFiles []string

func (k *auditKeyFiles) String() string     { return strings.Join(*k, ",") }
func (k *auditKeyFiles) Set(v string) error { *k = append(*k, v); return nil }

var auditRotatedSuffix = regexp.MustCompile(`\.\d{12}(\.[^.]*)?$`)

// auditLoadKeys reads the --key files, or finds FILE.pub beside each log
// (each node's, when the files are several nodes' logs).
func auditLoadKeys(flagged auditKeyFiles, files []string, stderr io.Writer) ([]ed25519.PublicKey, error) {
	if len(flagged) == 0 {
		found := map[string]bool{}
		for _, f := range files {
			for _, cand := range []string{f + ".pub", auditRotatedSuffix.ReplaceAllString(f, "$1") + ".pub"} {
				if _, err := os.Stat(cand); err == nil {
					if !found[cand] {
						found[cand] = true
						flagged = append(flagged, cand)
						fmt.Fprintf(stderr, "using public key %s found beside the log; pass --key with a copy you trust\n", cand)
					}
					break
				}
			}
		}
		if len(flagged) == 0 {
			return nil, errors.New("no public key: pass --key FILE.pub")
		}
	}
	var keys []ed25519.PublicKey
	for _, f := range flagged {
		k, err := audit.LoadPublicKeys(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := auditFlagSet("verify", stderr)
	var keys auditKeyFiles
	flags.Var(&keys, "key", "audit public key file (PEM); repeatable")
	sealed := flags.Bool("sealed", false, "require the log to end with the checkpoint written on close (archived logs)")
	files, err := parseInterspersed(flags, args)
	if err != nil {
		return auditExitUsage
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "meetguard audit verify: no log files given")
		return auditExitUsage
	}
	pubs, err := auditLoadKeys(keys, files, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit verify: %v\n", err)
		return auditExitUsage
	}
	bar := newProgress(stderr, "verifying", files)
	results, err := audit.VerifyNodes(ctx, files, audit.VerifyOptions{Keys: pubs, RequireSealed: *sealed, Progress: bar.add()})
	bar.done()
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit verify: %v\n", err)
		return auditExitUsage
	}
	if len(results) == 1 {
		return auditPrintVerify(stdout, "", results[0].VerifyResult)
	}
	// Several nodes: each chain's verdict, prefixed with its node, then
	// the worst of them (tampered before torn before intact).
	code := auditExitIntact
	var tampered, torn []string
	for _, r := range results {
		prefix := "node " + audit.NodeName(r.Node) + ": "
		switch auditPrintVerify(stdout, prefix, r.VerifyResult) {
		case auditExitTampered:
			tampered = append(tampered, audit.NodeName(r.Node))
		case auditExitTorn:
			torn = append(torn, audit.NodeName(r.Node))
		}
	}
	switch {
	case len(tampered) > 0:
		fmt.Fprintf(stdout, "%d nodes: TAMPERED (%s)\n", len(results), strings.Join(tampered, ", "))
		code = auditExitTampered
	case len(torn) > 0:
		fmt.Fprintf(stdout, "%d nodes: TRUNCATED (torn tail) (%s); every other record verifies\n", len(results), strings.Join(torn, ", "))
		code = auditExitTorn
	default:
		fmt.Fprintf(stdout, "%d nodes: OK, every chain verifies\n", len(results))
	}
	return code
}

// auditPrintVerify prints one chain's verdict, each line starting with
// prefix, and returns its exit code.
func auditPrintVerify(out io.Writer, prefix string, res *audit.VerifyResult) int {
	stdout := prefixWriter{w: out, prefix: prefix}
	verified := "no record verified"
	if res.Records > 0 {
		verified = fmt.Sprintf("records seq %d–%d verify", res.FirstSeq, res.LastSeq)
	}
	switch {
	case res.Problem != nil:
		fmt.Fprintf(stdout, "TAMPERED: %s\n(%s)\n", res.Problem.Error(), verified)
		return auditExitTampered
	case res.Torn != nil:
		fmt.Fprintf(stdout, "TRUNCATED (torn tail): the log verifies up to seq %d; the last %d bytes of %s (from offset %d) are an incomplete record,\n"+
			"as a crash during a write leaves it. This is not evidence of tampering; the gateway cuts it off when it next opens the log.\n",
			res.Torn.AfterSeq, res.Torn.Bytes, res.Torn.File, res.Torn.Offset)
		return auditExitTorn
	}
	fmt.Fprintf(stdout, "OK: %d records (seq %d–%d) in %d file(s), %d checkpoint signatures valid (key %s)\n",
		res.Records, res.FirstSeq, res.LastSeq, len(res.Files), res.Checkpoints, strings.Join(res.KeyIDs, ", "))
	if res.StartsMidChain {
		fmt.Fprintf(stdout, "note: the chain starts at seq %d; earlier files were not given, so their link is not checked\n", res.FirstSeq)
	}
	switch cp := res.LastCheckpoint; {
	case res.Sealed:
		fmt.Fprintf(stdout, "sealed: closed cleanly at %s\n", cp.Time.Format(time.RFC3339))
	case cp != nil:
		fmt.Fprintf(stdout, "not sealed: %d records after the checkpoint at seq %d (%s) are chained but not yet signed\n"+
			"(the log is still being written, or the gateway stopped without closing it; records cut after that checkpoint would not show)\n",
			res.Unsigned, cp.Seq, cp.Time.Format(time.RFC3339))
	}
	return auditExitIntact
}

// prefixWriter starts every line with prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if p.prefix == "" {
		return p.w.Write(b)
	}
	lines := strings.SplitAfter(string(b), "\n")
	var out strings.Builder
	for _, l := range lines {
		if l != "" {
			out.WriteString(p.prefix + l)
		}
	}
	if _, err := io.WriteString(p.w, out.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}

type auditFilterFlags struct {
	node, room, subject, event, decision, since, until string
}

func auditAddFilterFlags(flags *flag.FlagSet) *auditFilterFlags {
	f := &auditFilterFlags{}
	flags.StringVar(&f.node, "node", "", "only records written by this gateway node (node.id)")
	flags.StringVar(&f.room, "room", "", "only records of this room")
	flags.StringVar(&f.subject, "subject", "", "only records whose subject, actor or target is this identity")
	flags.StringVar(&f.event, "event", "", "only this event (or glob, e.g. room.*)")
	flags.StringVar(&f.decision, "decision", "", "only admission decisions with this outcome: allow, lobby or deny")
	flags.StringVar(&f.since, "since", "", "only records at or after this time")
	flags.StringVar(&f.until, "until", "", "only records before this time")
	return f
}

func (f *auditFilterFlags) filter(now time.Time) (audit.Filter, error) {
	out := audit.Filter{Node: f.node, Room: f.room, Subject: f.subject, Event: f.event, Decision: f.decision}
	switch f.decision {
	case "", audit.DecisionAllow, audit.DecisionLobby, audit.DecisionDeny:
	default:
		return out, fmt.Errorf("--decision %q: want allow, lobby or deny", f.decision)
	}
	var err error
	if f.since != "" {
		if out.Since, err = audit.ParseTime(f.since, now); err != nil {
			return out, fmt.Errorf("--since: %w", err)
		}
	}
	if f.until != "" {
		if out.Until, err = audit.ParseTime(f.until, now); err != nil {
			return out, fmt.Errorf("--until: %w", err)
		}
	}
	return out, nil
}

func auditReportSkipped(stderr io.Writer, st audit.ReadStats) {
	for _, s := range st.Skipped {
		fmt.Fprintf(stderr, "warning: skipped %s\n", s)
	}
	if st.Torn {
		fmt.Fprintln(stderr, "note: the last record is incomplete (torn tail) and was skipped")
	}
}

// tableFormat is how query and tail print: JSON lines, the full table
// (--wide), or the table cut to 120 columns.
func tableFormat(asJSON, wide bool) audit.Format {
	switch {
	case asJSON:
		return audit.FormatJSON
	case wide:
		return audit.FormatWide
	}
	return audit.FormatTable
}

func auditQuery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := auditFlagSet("query", stderr)
	ff := auditAddFilterFlags(flags)
	asJSON := flags.Bool("json", false, "print records as stored, one JSON object per line")
	wide := flags.Bool("wide", false, "print every cell and id in full (the table is cut to 120 columns otherwise)")
	files, err := parseInterspersed(flags, args)
	if err != nil {
		return auditExitUsage
	}
	filter, err := ff.filter(time.Now())
	if err == nil && len(files) == 0 {
		err = errors.New("no log files given")
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit query: %v\n", err)
		return auditExitUsage
	}
	format := tableFormat(*asJSON, *wide)
	_, st, err := audit.Query(ctx, stdout, files, filter, format)
	auditReportSkipped(stderr, st)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit query: %v\n", err)
		return 1
	}
	return 0
}

func auditTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := auditFlagSet("tail", stderr)
	ff := auditAddFilterFlags(flags)
	follow := flags.Bool("f", false, "keep printing records as they are written (follows rotation)")
	n := flags.Int("n", 10, "how many of the last matching records to print first")
	asJSON := flags.Bool("json", false, "print records as stored, one JSON object per line")
	wide := flags.Bool("wide", false, "print every cell and id in full (the table is cut to 120 columns otherwise)")
	files, err := parseInterspersed(flags, args)
	if err != nil {
		return auditExitUsage
	}
	filter, err := ff.filter(time.Now())
	if err == nil && len(files) != 1 {
		err = errors.New("give exactly one log file (the active one)")
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit tail: %v\n", err)
		return auditExitUsage
	}
	format := tableFormat(*asJSON, *wide)
	ew := audit.NewEntryWriter(stdout, format)
	if !*follow {
		// Without -f: the backlog, then stop.
		done, cancel := context.WithCancel(ctx)
		cancel()
		ctx = done
	}
	err = audit.Follow(ctx, files[0], filter, audit.FollowOptions{Backlog: *n}, func(e *audit.Entry) error {
		if err := ew.Write(e); err != nil {
			return err
		}
		return ew.Flush()
	})
	if ferr := ew.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit tail: %v\n", err)
		return 1
	}
	return 0
}

func auditReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := auditFlagSet("report", stderr)
	room := flags.String("room", "", "the meeting's room (required)")
	since := flags.String("since", "", "start of the meeting window")
	until := flags.String("until", "", "end of the meeting window")
	markdown := flags.Bool("markdown", false, "write Markdown instead of plain text")
	var keys auditKeyFiles
	flags.Var(&keys, "key", "audit public key file (PEM) to verify the log with; repeatable")
	files, err := parseInterspersed(flags, args)
	if err != nil {
		return auditExitUsage
	}
	ff := auditFilterFlags{since: *since, until: *until}
	filter, err := ff.filter(time.Now())
	switch {
	case err != nil:
	case *room == "":
		err = errors.New("--room is required")
	case len(files) == 0:
		err = errors.New("no log files given")
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit report: %v\n", err)
		return auditExitUsage
	}
	r, err := audit.BuildReport(ctx, files, audit.ReportOptions{Room: *room, Since: filter.Since, Until: filter.Until})
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit report: %v\n", err)
		return 1
	}
	if pubs, kerr := auditLoadKeys(keys, files, stderr); kerr != nil {
		r.Integrity = "NOT VERIFIED: " + kerr.Error()
	} else {
		r.Integrity = audit.NodesIntegritySummary(audit.VerifyNodes(ctx, files, audit.VerifyOptions{Keys: pubs}))
	}
	write := r.WriteText
	if *markdown {
		write = r.WriteMarkdown
	}
	if err := write(stdout); err != nil {
		fmt.Fprintf(stderr, "meetguard audit report: %v\n", err)
		return 1
	}
	return 0
}

func auditKeygen(_ context.Context, args []string, stdout, stderr io.Writer) int {
	flags := auditFlagSet("keygen", stderr)
	out := flags.String("out", "", "where to write the private key; the public key goes to OUT.pub")
	if _, err := parseInterspersed(flags, args); err != nil {
		return auditExitUsage
	}
	if *out == "" {
		fmt.Fprintln(stderr, "meetguard audit keygen: --out is required")
		return auditExitUsage
	}
	priv, err := audit.GenerateKey(*out)
	if errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(stderr, "meetguard audit keygen: %s or %s.pub already exists; refusing to overwrite a key\n", *out, *out)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "meetguard audit keygen: %v\n", err)
		return 1
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stdout, "wrote %s (private, mode 0600) and %s.pub\nkey id %s\n", abs, abs, audit.KeyID(priv.Public().(ed25519.PublicKey)))
	return 0
}
