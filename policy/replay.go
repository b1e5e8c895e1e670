package policy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// AuditEventDecision is the audit-log event that records an admission:
// {"event":"admission.decision", "input":{...Input...}, "result":{...Decision...}, ...}.
const AuditEventDecision = "admission.decision"

// maxAuditLineBytes bounds one audit-log line; longer lines are skipped.
const maxAuditLineBytes = 1 << 20

// AuditDecision is one admission decision read back from the audit log.
type AuditDecision struct {
	Seq    string // as written, e.g. "42"
	Time   string // as written
	Input  Input
	Result Decision
}

// parseAuditLine reads one audit-log line. ok is false, with a nil error,
// for events other than admission decisions. Unknown input fields are
// tolerated: the log may come from a newer gateway.
func parseAuditLine(line []byte) (d AuditDecision, ok bool, err error) {
	var rec struct {
		Event  string          `json:"event"`
		Seq    json.RawMessage `json:"seq"`
		TS     json.RawMessage `json:"ts"`
		Input  json.RawMessage `json:"input"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return AuditDecision{}, false, fmt.Errorf("not a JSON object: %w", err)
	}
	if rec.Event != AuditEventDecision {
		return AuditDecision{}, false, nil
	}
	if len(rec.Input) == 0 || string(rec.Input) == "null" {
		return AuditDecision{}, false, errors.New("admission.decision without input")
	}
	if len(rec.Result) == 0 || string(rec.Result) == "null" {
		return AuditDecision{}, false, errors.New("admission.decision without result")
	}
	in, err := parseInput("", rec.Input, false)
	if err != nil {
		// A position inside the embedded object would only confuse; the
		// warning names the log's file and line.
		var ie *InputError
		if errors.As(err, &ie) && ie.Field != "" {
			return AuditDecision{}, false, fmt.Errorf("input.%s: %s", ie.Field, ie.Msg)
		}
		if errors.As(err, &ie) {
			return AuditDecision{}, false, fmt.Errorf("input: %s", ie.Msg)
		}
		return AuditDecision{}, false, fmt.Errorf("input: %w", err)
	}
	var res Decision
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return AuditDecision{}, false, fmt.Errorf("result: %w", err)
	}
	return AuditDecision{Seq: rawText(rec.Seq), Time: rawText(rec.TS), Input: in, Result: res}, true, nil
}

// rawText shows a JSON scalar without quotes.
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// ReplayWarning is a line of an audit log that replay could not use.
type ReplayWarning struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Problem string `json:"problem"`
}

func (w ReplayWarning) String() string { return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Problem) }

// ReplayChange is a person the candidate would treat differently in a room.
// Identical changes (same person, room, old and new treatment) are counted
// once, at their first occurrence.
type ReplayChange struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Email string   `json:"email"`
	Room  string   `json:"room"`
	Old   Decision `json:"old"`
	New   Decision `json:"new"`
	Count int      `json:"count"`
	File  string   `json:"file"` // first occurrence
	Line  int      `json:"line"`
	Seq   string   `json:"seq,omitempty"`
	Time  string   `json:"time,omitempty"`
}

// ReplayReport is the outcome of replaying audit logs under a candidate.
type ReplayReport struct {
	Candidate string          `json:"candidate"`
	Revision  string          `json:"revision"`
	Decisions int             `json:"decisions"` // admission decisions re-evaluated
	Other     int             `json:"other_events"`
	Changes   []ReplayChange  `json:"changes"`
	Warnings  []ReplayWarning `json:"warnings"`

	seen map[string]int // change key -> index in Changes
}

// NewReplayReport starts a report for a candidate engine.
func NewReplayReport(candidate *Engine) *ReplayReport {
	st := candidate.Status()
	return &ReplayReport{Candidate: st.Source, Revision: st.Revision, seen: map[string]int{}}
}

// Replay re-evaluates every admission decision in the audit log read from r
// (named name in warnings) under the candidate engine, adding to rep whoever
// would now be treated differently. Lines that are not JSON or not usable
// decisions are skipped with a warning naming file and line; other events
// are counted and skipped. Only a read error stops it.
func Replay(ctx context.Context, candidate *Engine, name string, r io.Reader, rep *ReplayReport) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := readLine(br, maxAuditLineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 && !tooLong {
			return nil
		}
		switch {
		case tooLong:
			rep.Warnings = append(rep.Warnings, ReplayWarning{name, lineNo, fmt.Sprintf("skipped: line longer than %d bytes", maxAuditLineBytes)})
		case len(bytes.TrimSpace(line)) == 0:
		default:
			rep.ReplayLine(ctx, candidate, name, lineNo, line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// ReplayLine re-evaluates one audit-log line (lineNo of the file name)
// under the candidate, as Replay does for each line of a log: the security
// console's what-if feeds it the last decisions of its index.
func (rep *ReplayReport) ReplayLine(ctx context.Context, candidate *Engine, name string, lineNo int, line []byte) {
	ad, ok, err := parseAuditLine(line)
	if err != nil {
		rep.Warnings = append(rep.Warnings, ReplayWarning{name, lineNo, "skipped: " + err.Error()})
		return
	}
	if !ok {
		rep.Other++
		return
	}
	rep.Decisions++
	now := candidate.Decide(ctx, ad.Input)
	if Same(ad.Result, now) {
		return
	}
	id := ad.Input.Identity
	key := strings.Join([]string{id.Iss, id.Sub, id.Email, ad.Input.Room.ID, summary(ad.Result), summary(now)}, "\x00")
	if i, dup := rep.seen[key]; dup {
		rep.Changes[i].Count++
		return
	}
	if rep.seen == nil {
		rep.seen = map[string]int{}
	}
	rep.seen[key] = len(rep.Changes)
	rep.Changes = append(rep.Changes, ReplayChange{
		Iss: id.Iss, Sub: id.Sub, Email: id.Email, Room: ad.Input.Room.ID,
		Old: ad.Result, New: now, Count: 1,
		File: name, Line: lineNo, Seq: ad.Seq, Time: ad.Time,
	})
}

// ReplayFiles replays audit-log files in order. Gzipped files (archived
// rotations) are read transparently.
func ReplayFiles(ctx context.Context, candidate *Engine, files []string) (*ReplayReport, error) {
	return ReplayFilesProgress(ctx, candidate, files, nil)
}

// ReplayFilesProgress is ReplayFiles telling progress, when set, how many
// more bytes of the files (as stored, compressed or not) it read.
func ReplayFilesProgress(ctx context.Context, candidate *Engine, files []string, progress func(n int64)) (*ReplayReport, error) {
	rep := NewReplayReport(candidate)
	for _, name := range files {
		if err := replayFile(ctx, candidate, name, rep, progress); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// countingReader tells progress how many bytes each Read returned.
type countingReader struct {
	r        io.Reader
	progress func(n int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.progress(int64(n))
	}
	return n, err
}

func replayFile(ctx context.Context, candidate *Engine, name string, rep *ReplayReport, progress func(n int64)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var src io.Reader = f
	if progress != nil {
		src = countingReader{f, progress}
	}
	br := bufio.NewReader(src)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	return Replay(ctx, candidate, name, r, rep)
}

// Summary describes a decision's treatment in one line:
// "allow participant [staff_domain]", "lobby viewer [guest_lobby]",
// "deny [room_full]".
func Summary(d Decision) string { return summary(d) }

func summary(d Decision) string {
	var b strings.Builder
	b.WriteString(d.Outcome())
	if d.Allow || d.Lobby {
		b.WriteString(" " + d.Role)
	}
	b.WriteString(" [" + strings.Join(d.Reasons, ", ") + "]")
	return b.String()
}

// readLine reads one line without its newline. Lines longer than max are
// consumed and reported as tooLong, with no data.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > max+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return nil, true, err
		}
		return bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r")), false, err
	}
}
