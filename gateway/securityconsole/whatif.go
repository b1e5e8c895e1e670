package securityconsole

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/web"
	"github.com/meetguard/meetguard/policy"
)

// Candidates builds candidate policies without serving them and masks
// logged inputs as the decision log does (*policy.Engine).
type Candidates interface {
	Candidate(ctx context.Context, files []policy.CandidateFile, o policy.CandidateOptions) (*policy.Engine, error)
	CandidateFromDisk(ctx context.Context, o policy.CandidateOptions) (*policy.Engine, error)
	MaskInput(in any) (any, []string)
	Revision() string
}

const (
	// whatIfTimeout bounds one what-if: building the candidate (its tests
	// included) and replaying.
	whatIfTimeout = 2 * time.Minute
	// candidateDecisionTimeout bounds one replayed decision: far above the
	// gateway's, so that a busy machine does not show timeouts as changes.
	candidateDecisionTimeout = 2 * time.Second
	// maxReplayBytes bounds the log lines one what-if reads.
	maxReplayBytes = 64 << 20
	// maxShownChanges bounds the changes a result page lists with inputs.
	maxShownChanges = 1000
)

// whatIfView is the what-if page.
type whatIfView struct {
	N, Max   int
	Source   string
	Serving  string // the serving revision, untouched by a what-if
	Refused  *policy.LoadError
	Result   *whatIfResult
	Disabled bool // no policy engine to build candidates with
}

type whatIfResult struct {
	Candidate, Revision string
	Decisions, Other    int
	Skipped             int
	People              int
	Changes, Shown      int
	Took                string
	Groups              []changeGroup
}

// changeGroup is every person whose treatment changes the same way.
type changeGroup struct {
	Kind     string // newly_denied, newly_lobby, newly_admitted, changed
	Old, New string // policy.Summary
	Changes  []shownChange
}

type shownChange struct {
	Name, Email, Subject, Issuer, Room string
	Count                              int
	Time                               time.Time
	File                               string
	Line                               int
	Input                              string // masked, indented
	Masked                             string // what masking removed
}

func (c *Console) serveWhatIf(q *call) {
	v := c.base(q, "whatif")
	wv := &whatIfView{N: DefaultWhatIfDecisions, Max: MaxWhatIfDecisions, Source: sourceUpload}
	v.WhatIf = wv
	if !q.access.Has("security") {
		// Auditors review the log; trying candidate policies is the
		// security team's.
		v.Error = c.tr(q, "security.whatif.role")
		c.render(q, http.StatusForbidden, web.T("security.whatif.title"), v)
		return
	}
	if c.o.Policy == nil {
		wv.Disabled = true
		c.render(q, http.StatusServiceUnavailable, web.T("security.whatif.title"), v)
		return
	}
	wv.Serving = c.o.Policy.Revision()
	if q.r.Method != http.MethodPost {
		c.render(q, http.StatusOK, web.T("security.whatif.title"), v)
		return
	}
	// A what-if costs CPU and memory: a cookie-authenticated POST must
	// come from the console's own page, not from another site riding on a
	// security engineer's session.
	if q.id.Via != identity.ViaBearer {
		if err := web.CheckCSRF(q.r, c.o.Origin); err != nil {
			v.Error = c.tr(q, "security.whatif.cross_site")
			c.render(q, http.StatusForbidden, web.T("security.whatif.title"), v)
			return
		}
	}
	// One what-if at a time on this gateway: it bounds the memory and CPU
	// taken from admissions; nothing is kept after the answer.
	select {
	case c.whatIf <- struct{}{}:
		defer func() { <-c.whatIf }()
	default:
		v.Error = c.tr(q, "security.whatif.busy")
		c.render(q, http.StatusServiceUnavailable, web.T("security.whatif.title"), v)
		return
	}
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, maxUploadBytes)
	form, err := parseWhatIfForm(q.r.Body, q.r.Header.Get("Content-Type"))
	wv.N, wv.Source = form.N, form.Source
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || strings.Contains(err.Error(), "http: request body too large") {
			err = uploadErr("the upload is larger than %d bytes", maxUploadBytes)
		}
		v.Error = err.Error()
		c.render(q, http.StatusBadRequest, web.T("security.whatif.title"), v)
		return
	}
	ctx, cancel := context.WithTimeout(q.r.Context(), whatIfTimeout)
	defer cancel()
	start := c.o.Now()
	cand, err := c.candidate(ctx, form)
	if err != nil {
		var le *policy.LoadError
		if errors.As(err, &le) {
			wv.Refused = le
			c.render(q, http.StatusUnprocessableEntity, web.T("security.whatif.title"), v)
			return
		}
		c.o.Logger.Warn("security console: what-if candidate failed", zap.Error(err))
		v.Error = c.tr(q, "security.whatif.timeout", whatIfTimeout.String())
		c.render(q, http.StatusServiceUnavailable, web.T("security.whatif.title"), v)
		return
	}
	if err := c.fresh(ctx); err != nil {
		c.unavailable(q, err)
		return
	}
	res, err := c.replay(ctx, cand, form.N)
	if err == nil && ctx.Err() != nil {
		// Decisions cut short by the deadline fail closed, which would
		// show as changes: no partial answer.
		err = ctx.Err()
	}
	if err != nil {
		c.o.Logger.Warn("security console: what-if replay failed", zap.Error(err))
		v.Error = c.tr(q, "security.whatif.timeout", whatIfTimeout.String())
		if !errors.Is(err, context.DeadlineExceeded) {
			v.Error = c.tr(q, "security.unavailable")
		}
		c.render(q, http.StatusServiceUnavailable, web.T("security.whatif.title"), v)
		return
	}
	res.Took = c.o.Now().Sub(start).Round(time.Millisecond).String()
	wv.Result = res
	c.render(q, http.StatusOK, web.T("security.whatif.title"), v)
}

// tr translates a message for the viewer.
func (c *Console) tr(q *call, key string, args ...any) string {
	return c.o.Pages.Catalog().For(q.r).T(key, args...)
}

func (c *Console) candidate(ctx context.Context, f whatIfForm) (*policy.Engine, error) {
	o := policy.CandidateOptions{Timeout: candidateDecisionTimeout}
	switch {
	case f.Source == sourceDisk:
		return c.o.Policy.CandidateFromDisk(ctx, o)
	case f.Bundle != nil:
		o.Name = safeName(f.BundleName)
		files, err := policy.ReadCandidateBundle(o.Name, bytes.NewReader(f.Bundle), policy.CandidateLimits{})
		if err != nil {
			return nil, err
		}
		return c.o.Policy.Candidate(ctx, files, o)
	default:
		o.Name = "upload"
		files, err := policy.CandidateFiles(o.Name, f.Files, policy.CandidateLimits{})
		if err != nil {
			return nil, err
		}
		return c.o.Policy.Candidate(ctx, files, o)
	}
}

// replay re-decides the n latest logged decisions under the candidate
// with policy.ReportReport.ReplayLine, the code of `meetguard policy
// replay`, and groups who would be treated differently.
func (c *Console) replay(ctx context.Context, cand *policy.Engine, n int) (*whatIfResult, error) {
	rep := policy.NewReplayReport(cand)
	inputs := map[string]shownChange{} // file:line of a change's first decision
	_, err := c.index.LastDecisions(ctx, n, maxReplayBytes, func(file string, line int, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		before := len(rep.Changes)
		rep.ReplayLine(ctx, cand, file, line, raw)
		if len(rep.Changes) > before && len(inputs) < maxShownChanges {
			inputs[fmt.Sprintf("%s:%d", file, line)] = c.maskedInput(raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &whatIfResult{Candidate: rep.Candidate, Revision: rep.Revision, Decisions: rep.Decisions, Other: rep.Other,
		Skipped: len(rep.Warnings), Changes: len(rep.Changes)}
	people := map[string]bool{}
	groups := map[string]int{}
	for _, ch := range rep.Changes {
		people[ch.Iss+"\x00"+ch.Sub] = true
		sc, ok := inputs[fmt.Sprintf("%s:%d", ch.File, ch.Line)]
		if !ok {
			continue // past maxShownChanges
		}
		res.Shown++
		sc.Subject, sc.Issuer, sc.Room, sc.Count, sc.File, sc.Line = ch.Sub, ch.Iss, ch.Room, ch.Count, ch.File, ch.Line
		sc.Time, _ = time.Parse(time.RFC3339Nano, ch.Time)
		old, now := policy.Summary(ch.Old), policy.Summary(ch.New)
		key := old + "\x00" + now
		i, ok := groups[key]
		if !ok {
			i = len(res.Groups)
			groups[key] = i
			res.Groups = append(res.Groups, changeGroup{Kind: changeKind(ch.Old, ch.New), Old: old, New: now})
		}
		res.Groups[i].Changes = append(res.Groups[i].Changes, sc)
	}
	res.People = len(people)
	// Newly refused first: that is what a security engineer checks before
	// anything else.
	rank := map[string]int{"newly_denied": 0, "newly_lobby": 1, "newly_admitted": 2, "changed": 3}
	slices.SortStableFunc(res.Groups, func(a, b changeGroup) int { return rank[a.Kind] - rank[b.Kind] })
	return res, nil
}

func changeKind(old, now policy.Decision) string {
	o, n := old.Outcome(), now.Outcome()
	switch {
	case o == n:
		return "changed"
	case n == audit.DecisionDeny:
		return "newly_denied"
	case n == audit.DecisionLobby:
		return "newly_lobby"
	}
	return "newly_admitted"
}

// maskedInput is a logged decision's input as the console shows it: the
// configured mask fields removed (policy.Options.MaskFields), and the
// person's name and email as they remain.
func (c *Console) maskedInput(raw []byte) shownChange {
	var rec struct {
		Input json.RawMessage `json:"input"`
	}
	if json.Unmarshal(raw, &rec) != nil || len(rec.Input) == 0 {
		return shownChange{}
	}
	in, erased := c.mask(rec.Input)
	var sc shownChange
	if m, ok := in.(map[string]any); ok {
		if id, ok := m["identity"].(map[string]any); ok {
			sc.Name, _ = id["name"].(string)
			sc.Email, _ = id["email"].(string)
		}
	}
	if b, err := json.MarshalIndent(in, "", "  "); err == nil {
		sc.Input = string(b)
	}
	sc.Masked = strings.Join(erased, ", ")
	return sc
}

// mask decodes a logged input and removes the configured mask fields.
func (c *Console) mask(raw json.RawMessage) (any, []string) {
	var in any
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, nil
	}
	if c.o.Policy == nil {
		return in, nil
	}
	return c.o.Policy.MaskInput(in)
}
