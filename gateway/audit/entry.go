package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Entry is one record as the auditor tools read it.
type Entry struct {
	Seq   uint64
	Time  time.Time
	Event string
	// Node is the gateway node whose chain holds the record (its "node"
	// member; "" in logs written without Options.Node).
	Node    string
	Members []Member // in written order, without seq, ts, event, prev, node, sig, hash
	Raw     []byte   // the line as stored, without its newline
	File    string
	Line    int
}

// Member is one top-level member of a record.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Get returns the raw value of a member.
func (e *Entry) Get(key string) (json.RawMessage, bool) {
	for _, m := range e.Members {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// Str returns a member as text: a string's value, another value's JSON, ""
// when absent.
func (e *Entry) Str(key string) string {
	v, ok := e.Get(key)
	if !ok {
		return ""
	}
	return rawText(v)
}

// Strs returns a member holding a string or a list of strings.
func (e *Entry) Strs(key string) []string {
	v, ok := e.Get(key)
	if !ok {
		return nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err == nil {
		return list
	}
	if s := rawText(v); s != "" && s != "null" {
		return []string{s}
	}
	return nil
}

func rawText(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// ParseEntry parses one record line (without its newline). It checks the
// record's structure, not its hash: Verify does that.
func ParseEntry(line []byte) (*Entry, error) {
	h, err := parseHeader(line)
	if err != nil {
		return nil, err
	}
	ts, err := time.Parse(tsLayout, string(h.ts))
	if err != nil {
		return nil, malformed("ts %q: %v", h.ts, err)
	}
	e := &Entry{Seq: h.seq, Time: ts, Event: string(h.event), Raw: line}
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, malformed("%v", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed("%v", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed("member %q: %v", key, err)
		}
		if key == "node" {
			if err := json.Unmarshal(raw, &e.Node); err != nil {
				return nil, malformed("node: %v", err)
			}
			continue
		}
		if reservedKeys[key] {
			continue
		}
		e.Members = append(e.Members, Member{Key: key, Value: raw})
	}
	return e, nil
}

// ReadStats tells what ReadEntries skipped.
type ReadStats struct {
	Records int
	// Skipped lists lines that are not records ("FILE:LINE: reason").
	Skipped []string
	// Torn is set when the last file ends in an incomplete record.
	Torn bool
}

// ReadEntries calls fn for every record of files in chain order (files are
// ordered by their first record). It does not verify the chain; lines that
// are not records are skipped and listed in the stats.
func ReadEntries(ctx context.Context, files []string, fn func(*Entry) error) (ReadStats, error) {
	var st ReadStats
	ordered, err := orderFiles(files)
	if err != nil {
		return st, err
	}
	for i, of := range ordered {
		if err := readFileEntries(ctx, of.name, i == len(ordered)-1, &st, fn); err != nil {
			return st, err
		}
	}
	return st, nil
}

func readFileEntries(ctx context.Context, name string, last bool, st *ReadStats, fn func(*Entry) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	lr := &lineReader{r: bufio.NewReaderSize(f, 256<<10)}
	for {
		line, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, errMalformed) {
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s:%d: %v", name, lr.line+1, err))
			return nil
		}
		if err != nil {
			return err
		}
		if lr.torn {
			if last {
				st.Torn = true
			} else {
				st.Skipped = append(st.Skipped, fmt.Sprintf("%s:%d: incomplete record", name, lr.line))
			}
			return nil
		}
		if lr.line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e, err := ParseEntry(bytes.Clone(line))
		if err != nil {
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s:%d: %v", name, lr.line, err))
			continue
		}
		e.File, e.Line = name, lr.line
		st.Records++
		if err := fn(e); err != nil {
			return err
		}
	}
}
