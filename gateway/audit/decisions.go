package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// LogFiles lists the files of the log at path, oldest first: its rotated
// siblings, then the active file itself (when it exists).
func LogFiles(path string) ([]string, error) {
	files, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	return files, nil
}

// Outcomes in a DecisionRow, beyond DecisionAllow, DecisionLobby and
// DecisionDeny.
const OutcomeRateLimited = "rate_limited"

// DecisionIndex is an in-memory index of the admission decisions
// (admission.decision and admission.rate_limited records) of a set of log
// files, so that the security console can filter and page a log of
// millions of records without reading it again. It is built incrementally:
// Update reads only what was appended since, and recognises a file rotated
// under a new name by its first line. Each row keeps where its record is,
// not the record: Entry reads it back for the detail view. It is safe for
// concurrent use.
type DecisionIndex struct {
	mu    sync.RWMutex
	files []*indexedFile
	rows  []DecisionRow // in the order read: by file (chain order), then line
	str   strTable
	// people by subject id: the latest name and email seen for it.
	people map[uint32]personInfo
}

type indexedFile struct {
	name  string
	first [32]byte // SHA-256 of the first line: the file's identity across renames
	size  int64    // bytes indexed (complete lines)
	line  int
}

type personInfo struct{ name, email uint32 }

// DecisionRow is one indexed decision. String members are ids into the
// index's string table; use the accessor methods of DecisionIndex.
type DecisionRow struct {
	Time                       int64 // Unix nanoseconds
	Seq                        uint64
	file                       int32
	Line                       int32
	offset                     int64
	length                     int32
	room, subject, issuer      uint32
	outcome, reasons, clientIP uint32
	role                       uint32
}

// strTable interns strings: an index of a million decisions holds each
// room, person and reason list once.
type strTable struct {
	ids  map[string]uint32
	strs []string
}

func (t *strTable) id(s string) uint32 {
	if t.ids == nil {
		t.ids, t.strs = map[string]uint32{"": 0}, []string{""}
	}
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := uint32(len(t.strs))
	t.ids[s] = id
	t.strs = append(t.strs, s)
	return id
}

// NewDecisionIndex returns an empty index.
func NewDecisionIndex() *DecisionIndex {
	return &DecisionIndex{people: map[uint32]personInfo{}}
}

// Update indexes what files hold beyond what was indexed before. A file
// that shrank or whose first line changed is indexed again from its start.
func (x *DecisionIndex) Update(ctx context.Context, files []string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	before := len(x.rows)
	defer func() {
		// Several nodes' logs interleave in time: keep rows newest-last.
		if len(x.rows) > before && !slices.IsSortedFunc(x.rows[max(before-1, 0):], byTime) {
			slices.SortStableFunc(x.rows, byTime)
		}
	}()
	for _, name := range files {
		if err := x.updateFile(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func byTime(a, b DecisionRow) int {
	switch {
	case a.Time < b.Time:
		return -1
	case a.Time > b.Time:
		return 1
	}
	return 0
}

func (x *DecisionIndex) updateFile(ctx context.Context, name string) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // rotated away since listed: the next Update finds it
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	first, err := readFirstLine(f)
	if err != nil && err != io.EOF {
		return fmt.Errorf("audit index %s: %w", name, err)
	}
	if len(first) == 0 {
		return nil
	}
	id := sha256.Sum256(first)
	var fi *indexedFile
	fileNo := -1
	for i, c := range x.files {
		if c.first == id {
			fi, fileNo = c, i
			break
		}
	}
	if fi == nil {
		fi = &indexedFile{name: name, first: id}
		x.files = append(x.files, fi)
		fileNo = len(x.files) - 1
	}
	fi.name = name // a rotated file keeps its rows
	if st.Size() < fi.size {
		return fmt.Errorf("audit index %s: file shrank from %d to %d bytes", name, fi.size, st.Size())
	}
	if st.Size() == fi.size {
		return nil
	}
	if _, err := f.Seek(fi.size, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	off := fi.size
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A record longer than the buffer: read the rest.
			long := bytes.Clone(line)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err == io.EOF {
			return nil // an incomplete last line waits for the next Update
		}
		if err != nil {
			return err
		}
		n := int64(len(line))
		fi.line++
		if fi.line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		x.indexLine(line[:len(line)-1], int32(fileNo), int32(fi.line), off)
		off += n
		fi.size = off
	}
}

// decisionEvents are cheap to spot before parsing a line.
var (
	markDecision    = []byte(`"event":"` + EventAdmissionDecision + `"`)
	markRateLimited = []byte(`"event":"` + EventAdmissionRateLimited + `"`)
)

// indexedMembers are the members the index keeps, decoded in one pass
// (the other members, and the input but for who the person is, skipped).
type indexedMembers struct {
	Room     string   `json:"room"`
	Subject  string   `json:"subject"`
	Issuer   string   `json:"issuer"`
	Decision string   `json:"decision"`
	Reasons  []string `json:"reasons"`
	ClientIP string   `json:"client_ip"`
	Role     string   `json:"role"`
	Limit    string   `json:"limit"`
	Input    struct {
		Identity struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"identity"`
	} `json:"input"`
}

func (x *DecisionIndex) indexLine(line []byte, file, lineNo int32, off int64) {
	if !bytes.Contains(line, markDecision) && !bytes.Contains(line, markRateLimited) {
		return
	}
	h, err := parseHeader(line)
	if err != nil {
		return
	}
	ts, err := time.Parse(tsLayout, string(h.ts))
	if err != nil {
		return
	}
	var m indexedMembers
	if json.Unmarshal(line, &m) != nil {
		return
	}
	row := DecisionRow{Time: ts.UnixNano(), Seq: h.seq, file: file, Line: lineNo, offset: off, length: int32(len(line))}
	row.room = x.str.id(m.Room)
	row.subject = x.str.id(m.Subject)
	row.issuer = x.str.id(m.Issuer)
	row.clientIP = x.str.id(m.ClientIP)
	row.role = x.str.id(m.Role)
	switch string(h.event) {
	case EventAdmissionDecision:
		row.outcome = x.str.id(m.Decision)
		row.reasons = x.str.id(strings.Join(m.Reasons, ","))
		if id := m.Input.Identity; id.Name != "" || id.Email != "" {
			x.people[row.subject] = personInfo{name: x.str.id(id.Name), email: x.str.id(id.Email)}
		}
	case EventAdmissionRateLimited:
		row.outcome = x.str.id(OutcomeRateLimited)
		row.reasons = x.str.id(m.Limit)
	default:
		return // the marker was inside another record's member
	}
	x.rows = append(x.rows, row)
}

// Len is how many decisions are indexed.
func (x *DecisionIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.rows)
}

// DecisionQuery filters decisions. Zero fields match everything; text
// matches are case-insensitive substrings.
type DecisionQuery struct {
	Room    string // exact room id
	Person  string // part of the subject, display name or email
	Outcome string // allow, lobby, deny, rate_limited
	Reason  string // one reason code (or rate limit) the decision carries
	Since   time.Time
	Until   time.Time
	// Offset and Limit page the newest-first result; Limit 0 means 50.
	Offset, Limit int
}

// Decision is one decision as the console lists it.
type Decision struct {
	Ref      string // file:line, for Entry
	Time     time.Time
	Seq      uint64
	Room     string
	Subject  string
	Issuer   string
	Name     string
	Email    string
	Outcome  string
	Role     string
	Reasons  []string
	ClientIP string
}

// Count is one value and how often it occurred.
type Count struct {
	Value string
	N     int
}

// HotSpots summarise the refusals (deny and rate_limited) of a query.
type HotSpots struct {
	Reasons    []Count // top reasons
	People     []Count // top refused subjects
	Addresses  []Count // top refused source addresses
	RateLimits []Count // rate-limit trips by limit
	PerHour    []Count // refusals per hour (UTC, "2006-01-02T15")
}

// DecisionPage is one page of a query, newest first.
type DecisionPage struct {
	Total     int // matching decisions
	Decisions []Decision
	HotSpots  HotSpots
}

const hotSpotsTop = 10

// Query returns the page of decisions matching q, newest first, and the
// hot spots of all of them.
func (x *DecisionIndex) Query(q DecisionQuery) DecisionPage {
	x.mu.RLock()
	defer x.mu.RUnlock()
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var room uint32
	if q.Room != "" {
		var ok bool
		if room, ok = x.str.ids[q.Room]; !ok {
			return DecisionPage{}
		}
	}
	var outcome uint32
	if q.Outcome != "" {
		var ok bool
		if outcome, ok = x.str.ids[q.Outcome]; !ok {
			return DecisionPage{}
		}
	}
	var people map[uint32]bool
	if q.Person != "" {
		people = x.matchPeople(strings.ToLower(q.Person))
	}
	reasonsMatch := map[uint32]bool{}
	since, until := q.Since.UnixNano(), q.Until.UnixNano()
	var page DecisionPage
	reasons, who, addrs, limits, hours := map[string]int{}, map[uint32]int{}, map[uint32]int{}, map[string]int{}, map[int64]int{}
	for i := len(x.rows) - 1; i >= 0; i-- {
		r := &x.rows[i]
		if room != 0 && r.room != room || outcome != 0 && r.outcome != outcome ||
			!q.Since.IsZero() && r.Time < since || !q.Until.IsZero() && r.Time >= until ||
			people != nil && !people[r.subject] {
			continue
		}
		if q.Reason != "" {
			ok, seen := reasonsMatch[r.reasons]
			if !seen {
				ok = slices.Contains(strings.Split(x.str.strs[r.reasons], ","), q.Reason)
				reasonsMatch[r.reasons] = ok
			}
			if !ok {
				continue
			}
		}
		if page.Total >= q.Offset && len(page.Decisions) < limit {
			page.Decisions = append(page.Decisions, x.decision(r))
		}
		page.Total++
		out := x.str.strs[r.outcome]
		if out != DecisionDeny && out != OutcomeRateLimited {
			continue
		}
		for _, rs := range strings.Split(x.str.strs[r.reasons], ",") {
			if rs != "" {
				reasons[rs]++
			}
		}
		if out == OutcomeRateLimited {
			limits[x.str.strs[r.reasons]]++
		}
		who[r.subject]++
		addrs[r.clientIP]++
		hours[r.Time/int64(time.Hour)]++
	}
	byID := func(m map[uint32]int) map[string]int {
		out := make(map[string]int, len(m))
		for id, n := range m {
			out[x.str.strs[id]] += n
		}
		return out
	}
	page.HotSpots = HotSpots{
		Reasons: top(reasons, hotSpotsTop), People: top(byID(who), hotSpotsTop), Addresses: top(byID(addrs), hotSpotsTop),
		RateLimits: top(limits, hotSpotsTop), PerHour: top(perHour(hours), 0),
	}
	sort.Slice(page.HotSpots.PerHour, func(i, j int) bool { return page.HotSpots.PerHour[i].Value < page.HotSpots.PerHour[j].Value })
	return page
}

func perHour(hours map[int64]int) map[string]int {
	out := make(map[string]int, len(hours))
	for h, n := range hours {
		out[time.Unix(0, h*int64(time.Hour)).UTC().Format("2006-01-02T15")] = n
	}
	return out
}

func (x *DecisionIndex) matchPeople(needle string) map[uint32]bool {
	out := map[uint32]bool{}
	for id, s := range x.str.strs {
		if strings.Contains(strings.ToLower(s), needle) {
			out[uint32(id)] = true // a subject spelled so
		}
	}
	for sub, p := range x.people {
		if out[p.name] || out[p.email] {
			out[sub] = true
		}
	}
	return out
}

// top is the n largest counts (all when n is 0), largest first.
func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for v, c := range m {
		out = append(out, Count{v, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Value < out[j].Value
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func (x *DecisionIndex) decision(r *DecisionRow) Decision {
	s := x.str.strs
	d := Decision{
		Ref: fmt.Sprintf("%d:%d", r.file, r.Line), Time: time.Unix(0, r.Time).UTC(), Seq: r.Seq,
		Room: s[r.room], Subject: s[r.subject], Issuer: s[r.issuer], Outcome: s[r.outcome], Role: s[r.role], ClientIP: s[r.clientIP],
	}
	if rs := s[r.reasons]; rs != "" {
		d.Reasons = strings.Split(rs, ",")
	}
	if p, ok := x.people[r.subject]; ok {
		d.Name, d.Email = s[p.name], s[p.email]
	}
	return d
}

// Person is the display name and email last seen for a subject in the
// indexed decisions' inputs ("" when none).
func (x *DecisionIndex) Person(subject string) (name, email string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	id, ok := x.str.ids[subject]
	if !ok {
		return "", ""
	}
	p := x.people[id]
	return x.str.strs[p.name], x.str.strs[p.email]
}

// Entry reads back the record of a Decision's Ref.
func (x *DecisionIndex) Entry(ref string) (*Entry, error) {
	var file, line int32
	if _, err := fmt.Sscanf(ref, "%d:%d", &file, &line); err != nil {
		return nil, fmt.Errorf("audit index: bad reference %q", ref)
	}
	x.mu.RLock()
	var row *DecisionRow
	for i := len(x.rows) - 1; i >= 0; i-- {
		if x.rows[i].file == file && x.rows[i].Line == line {
			row = &x.rows[i]
			break
		}
	}
	if row == nil {
		x.mu.RUnlock()
		return nil, fmt.Errorf("audit index: no decision at %q", ref)
	}
	name, off, n, lineNo := x.files[file].name, row.offset, row.length, row.Line
	x.mu.RUnlock()
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	e, err := ParseEntry(buf)
	if err != nil {
		return nil, err
	}
	e.File, e.Line = name, int(lineNo)
	return e, nil
}
