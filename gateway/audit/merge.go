package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
)

// Several gateway nodes each write their own chain (Options.Node names it in
// every record). The readers below take the files of all of them at once:
// GroupByNode sorts the files into chains, VerifyNodes verifies each chain on
// its own (a chain's seq and prev never cross to another node's), and
// MergedReader tells one story, time-ordered across the nodes.

// NodeLog is the files of one node's chain.
type NodeLog struct {
	// Node is the node id its records carry; "" for files written without
	// one (a single gateway, or logs older than node ids) and for files
	// without a complete first record when several nodes are given.
	Node  string
	Files []string
}

// GroupByNode sorts files into the chains of the nodes that wrote them, by
// the node of each file's first record, nodes in name order and files in the
// order given. A file without a readable first record (empty, torn, or not a
// record) joins the only chain there is, or else the "" chain, where Verify
// reports what is wrong with it.
func GroupByNode(files []string) ([]NodeLog, error) {
	byNode := map[string]*NodeLog{}
	var unknown []string
	seen := map[string]bool{}
	for _, name := range files {
		if seen[name] {
			continue
		}
		seen[name] = true
		node, ok, err := firstNode(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		nl := byNode[node]
		if nl == nil {
			nl = &NodeLog{Node: node}
			byNode[node] = nl
		}
		nl.Files = append(nl.Files, name)
	}
	if len(unknown) > 0 {
		switch len(byNode) {
		case 1:
			for _, nl := range byNode {
				nl.Files = append(nl.Files, unknown...)
			}
		default:
			nl := byNode[""]
			if nl == nil {
				nl = &NodeLog{}
				byNode[""] = nl
			}
			nl.Files = append(nl.Files, unknown...)
		}
	}
	out := make([]NodeLog, 0, len(byNode))
	for _, nl := range byNode {
		out = append(out, *nl)
	}
	slices.SortFunc(out, func(a, b NodeLog) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// firstNode returns the node of a file's first record; ok is false when the
// file has no complete, well-formed first record.
func firstNode(name string) (node string, ok bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	line, err := readFirstLine(f)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errMalformed):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	e, err := ParseEntry(line)
	if err != nil {
		return "", false, nil
	}
	return e.Node, true, nil
}

// NodeVerifyResult is what Verify found in one node's chain.
type NodeVerifyResult struct {
	Node string
	*VerifyResult
}

// VerifyNodes verifies the chain of every node in files separately (see
// GroupByNode), each with opts. It returns an error only when it cannot read.
func VerifyNodes(ctx context.Context, files []string, opts VerifyOptions) ([]NodeVerifyResult, error) {
	nodes, err := GroupByNode(files)
	if err != nil {
		return nil, err
	}
	out := make([]NodeVerifyResult, 0, len(nodes))
	for _, nl := range nodes {
		res, err := Verify(ctx, nl.Files, opts)
		if err != nil {
			return nil, err
		}
		if p := res.Problem; p != nil && p.Kind == ProblemInserted && strings.Contains(p.Detail, "starts at the same seq") && nl.Node != "" {
			// Two chains under one node id: two nodes were given the same
			// node.id (or one log was restarted from scratch beside the old).
			p.Detail += fmt.Sprintf(": two chains carry node id %q; give each node its own node.id, and verify each chain's files on their own", nl.Node)
		}
		out = append(out, NodeVerifyResult{Node: nl.Node, VerifyResult: res})
	}
	return out, nil
}

// NodesIntegritySummary is IntegritySummary for the chains of several
// nodes: one line per node, "node N: …"; a single chain's line is
// IntegritySummary's unchanged.
func NodesIntegritySummary(res []NodeVerifyResult, err error) string {
	switch {
	case err != nil:
		return IntegritySummary(nil, err)
	case len(res) == 1:
		return IntegritySummary(res[0].VerifyResult, nil)
	}
	lines := make([]string, len(res))
	for i, r := range res {
		lines[i] = "node " + NodeName(r.Node) + ": " + IntegritySummary(r.VerifyResult, nil)
	}
	return strings.Join(lines, "\n")
}

// NodeName is how the tools print a node id: "(none)" for "".
func NodeName(node string) string {
	if node == "" {
		return "(none)"
	}
	return node
}

// MergedReader reads the logs of one or more nodes as one story. Each
// node's records come in chain order, as ReadEntries reads them; the nodes'
// records are interleaved by time (ties: node, then seq). A node whose clock
// stepped back keeps its own order: the merge only ever picks among the
// nodes' next records. It does not verify: use VerifyNodes for that.
type MergedReader struct {
	// Nodes are the chains being read (GroupByNode).
	Nodes []NodeLog
	// Stats add up what every chain's reading skipped; complete once
	// Entries has been read to the end.
	Stats ReadStats
}

// NewMergedReader groups files by node (GroupByNode).
func NewMergedReader(files []string) (*MergedReader, error) {
	nodes, err := GroupByNode(files)
	if err != nil {
		return nil, err
	}
	return &MergedReader{Nodes: nodes}, nil
}

// errStopped ends a chain's reading when the consumer stops early.
var errStopped = errors.New("audit: reading stopped")

// Entries yields every record in merged order. A read error is yielded
// once, as the last pair. Entries may be ranged over once.
func (m *MergedReader) Entries(ctx context.Context) iter.Seq2[*Entry, error] {
	return func(yield func(*Entry, error) bool) {
		type head struct {
			next func() (*Entry, error, bool)
			stop func()
			e    *Entry
		}
		heads := make([]*head, 0, len(m.Nodes))
		defer func() {
			for _, h := range heads {
				h.stop()
			}
		}()
		for _, nl := range m.Nodes {
			chain := func(yield func(*Entry, error) bool) {
				st, err := ReadEntries(ctx, nl.Files, func(e *Entry) error {
					if !yield(e, nil) {
						return errStopped
					}
					return nil
				})
				m.Stats.Records += st.Records
				m.Stats.Skipped = append(m.Stats.Skipped, st.Skipped...)
				m.Stats.Torn = m.Stats.Torn || st.Torn
				if err != nil && !errors.Is(err, errStopped) {
					yield(nil, err)
				}
			}
			next, stop := iter.Pull2(chain)
			h := &head{next: next, stop: stop}
			heads = append(heads, h)
		}
		// advance reads a chain's next record; false on a read error
		// (already yielded or to be yielded by the caller).
		advance := func(h *head) error {
			e, err, ok := h.next()
			switch {
			case !ok:
				h.e = nil
			case err != nil:
				h.e = nil
				return err
			default:
				h.e = e
			}
			return nil
		}
		for _, h := range heads {
			if err := advance(h); err != nil {
				yield(nil, err)
				return
			}
		}
		for {
			var min *head
			for _, h := range heads {
				if h.e != nil && (min == nil || mergeOrder(h.e, min.e) < 0) {
					min = h
				}
			}
			if min == nil {
				return
			}
			if !yield(min.e, nil) {
				return
			}
			if err := advance(min); err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// mergeOrder orders records of different nodes: time, node, seq.
func mergeOrder(a, b *Entry) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Node, b.Node), cmp.Compare(a.Seq, b.Seq))
}

// ReadMerged calls fn for every record of files, the logs of one or more
// nodes, in MergedReader's order; for one node's files that is ReadEntries.
func ReadMerged(ctx context.Context, files []string, fn func(*Entry) error) (ReadStats, error) {
	m, err := NewMergedReader(files)
	if err != nil {
		return ReadStats{}, err
	}
	for e, err := range m.Entries(ctx) {
		if err != nil {
			return m.Stats, err
		}
		if err := fn(e); err != nil {
			return m.Stats, err
		}
	}
	return m.Stats, nil
}
