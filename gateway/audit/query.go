package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Filter selects records for query, tail and report. Zero fields match
// everything.
type Filter struct {
	// Node keeps the records of one gateway node (Entry.Node).
	Node string
	Room string
	// Subject matches the subject, actor or target member (so one person's
	// own admissions and what they did or suffered as a host action), in
	// clear or as HashIdentity of the value.
	Subject string
	// Event is an event name or a path.Match pattern ("room.*").
	Event string
	// Decision matches admission.decision records ("allow", "lobby", "deny").
	Decision string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
}

// Match reports whether e passes the filter.
func (f *Filter) Match(e *Entry) bool {
	if f.Node != "" && e.Node != f.Node {
		return false
	}
	if f.Room != "" && e.Str(FieldRoom) != f.Room {
		return false
	}
	if f.Subject != "" {
		hashed := HashIdentity(f.Subject)
		found := false
		for _, k := range [...]string{FieldSubject, FieldActor, FieldTarget} {
			if v := e.Str(k); v != "" && (v == f.Subject || v == hashed) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.Event != "" && f.Event != e.Event {
		if ok, _ := path.Match(f.Event, e.Event); !ok {
			return false
		}
	}
	if f.Decision != "" && (e.Event != EventAdmissionDecision || e.Str(FieldDecision) != f.Decision) {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	return true
}

// ParseTime reads a --since/--until value: RFC 3339 (with or without
// seconds or zone; UTC assumed), a date, or a duration meaning that long
// before now ("2h", "30m").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-03-02T09:00:00Z), a date, or a duration ago (2h)", s)
}

// Format is how WriteEntries prints records.
type Format int

const (
	// FormatTable is one aligned line per record, for people, that fits
	// TableWidth columns: long cells are cut with "…", revision and
	// decision ids shortened to their first 8 characters.
	FormatTable Format = iota
	// FormatJSON is the records exactly as stored, one per line (JSON
	// lines), for jq and SIEMs; they still verify.
	FormatJSON
	// FormatWide is the table with every cell and id in full (--wide),
	// as wide as it needs.
	FormatWide
)

// TableWidth is the most columns (characters) a FormatTable line takes.
const TableWidth = 120

// EntryWriter prints entries in a Format. Table rows have fixed column
// widths so that a followed log (tail -f) stays aligned.
type EntryWriter struct {
	// ShowNode adds a NODE column after TIME (table format), for the logs
	// of several nodes.
	ShowNode bool
	w        *bufio.Writer
	format   Format
	header   bool
}

// NewEntryWriter returns a writer; call Flush when done.
func NewEntryWriter(w io.Writer, format Format) *EntryWriter {
	return &EntryWriter{w: bufio.NewWriter(w), format: format}
}

const tableRow = "%-24s %7s  %-22s %-12s %-28s %s\n"

// Write prints one entry.
func (ew *EntryWriter) Write(e *Entry) error {
	if ew.format == FormatJSON {
		ew.w.Write(e.Raw)
		return ew.w.WriteByte('\n')
	}
	if ew.format == FormatTable {
		return ew.writeCompact(e)
	}
	clock := e.Time.Format("2006-01-02T15:04:05.000Z")
	if !ew.header {
		ew.header = true
		first := "TIME"
		if ew.ShowNode {
			first = fmt.Sprintf("%-24s %-16s", "TIME", "NODE")
		}
		fmt.Fprintf(ew.w, strings.TrimRight(tableRow, "\n"), first, "SEQ", "EVENT", "ROOM", "WHO", "DETAIL")
		ew.w.WriteByte('\n')
	}
	if ew.ShowNode {
		clock = fmt.Sprintf("%-24s %-16s", clock, NodeName(e.Node))
	}
	row := fmt.Sprintf(tableRow, clock, fmt.Sprint(e.Seq), e.Event,
		dash(e.Str(FieldRoom)), dash(who(e)), detail(e))
	_, err := ew.w.WriteString(strings.TrimRight(row, " \n") + "\n")
	return err
}

// compactRow's columns: time to the second, seq, event, room, who, then
// the details in what is left of TableWidth.
const compactRow = "%-19s %6s  %-19s %-12s %-22s %s"

func (ew *EntryWriter) writeCompact(e *Entry) error {
	clock := e.Time.Format("2006-01-02 15:04:05")
	if !ew.header {
		ew.header = true
		first := "TIME (UTC)"
		if ew.ShowNode {
			first = fmt.Sprintf("%-19s %-10s", "TIME (UTC)", "NODE")
		}
		ew.w.WriteString(strings.TrimRight(fmt.Sprintf(compactRow, first, "SEQ", "EVENT", "ROOM", "WHO", "DETAIL"), " ") + "\n")
	}
	if ew.ShowNode {
		clock = fmt.Sprintf("%-19s %-10s", clock, cut(NodeName(e.Node), 10))
	}
	row := fmt.Sprintf(compactRow, clock, fmt.Sprint(e.Seq), cut(e.Event, 19),
		cut(dash(e.Str(FieldRoom)), 12), cut(dash(who(e)), 22), detailOf(e, true))
	_, err := ew.w.WriteString(cut(strings.TrimRight(row, " "), TableWidth) + "\n")
	return err
}

// cut shortens s to at most n characters, the last one "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// idMembers are ids the compact table shortens.
var idMembers = map[string]bool{
	FieldPolicyRevision: true, FieldRevision: true, FieldPreviousRevision: true, FieldCurrentRevision: true, FieldDecisionID: true,
}

// shortID is an id's first 8 characters, enough to tell ids apart by eye
// and to find the full one with --wide or --json.
func shortID(s string) string {
	if utf8.RuneCountInString(s) <= 9 {
		return s
	}
	return string([]rune(s)[:8]) + "…"
}

// Flush writes out buffered rows.
func (ew *EntryWriter) Flush() error { return ew.w.Flush() }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// who is the person a record is about: "actor → target" for host
// actions, else the subject or actor.
func who(e *Entry) string {
	actor, target, subject := e.Str(FieldActor), e.Str(FieldTarget), e.Str(FieldSubject)
	switch {
	case actor != "" && target != "":
		return actor + " → " + target
	case subject != "":
		return subject
	}
	return actor
}

// shownMembers are in the other columns, or too large for a table.
var shownMembers = map[string]bool{
	FieldRoom: true, FieldSubject: true, FieldActor: true, FieldTarget: true, FieldInput: true, FieldResult: true,
}

// detail summarises the remaining members as key=value, in written order.
func detail(e *Entry) string { return detailOf(e, false) }

// detailOf is detail, with ids shortened when short.
func detailOf(e *Entry, short bool) string {
	var b strings.Builder
	if e.Event == EventAdmissionDecision {
		fmt.Fprintf(&b, "%s %s", strings.ToUpper(e.Str(FieldDecision)), dash(e.Str(FieldRole)))
		if r := e.Strs(FieldReasons); len(r) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(r, ","))
		}
	}
	for _, m := range e.Members {
		if shownMembers[m.Key] || e.Event == EventAdmissionDecision && (m.Key == FieldDecision || m.Key == FieldRole || m.Key == FieldReasons) {
			continue
		}
		if e.Event == EventCheckpoint && m.Key != "reason" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		v := rawText(m.Value)
		if short && idMembers[m.Key] {
			v = shortID(v)
		}
		fmt.Fprintf(&b, "%s=%s", m.Key, v)
	}
	return b.String()
}

// Query prints the records of files that pass f, and returns how many.
// Files may be the logs of several nodes: their records come time-ordered
// (MergedReader), and the table gets a NODE column.
func Query(ctx context.Context, w io.Writer, files []string, f Filter, format Format) (int, ReadStats, error) {
	m, err := NewMergedReader(files)
	if err != nil {
		return 0, ReadStats{}, err
	}
	ew := NewEntryWriter(w, format)
	ew.ShowNode = len(m.Nodes) > 1
	n := 0
	for e, rerr := range m.Entries(ctx) {
		if err = rerr; err != nil {
			break
		}
		if !f.Match(e) {
			continue
		}
		n++
		if err = ew.Write(e); err != nil {
			break
		}
	}
	if ferr := ew.Flush(); err == nil {
		err = ferr
	}
	return n, m.Stats, err
}
