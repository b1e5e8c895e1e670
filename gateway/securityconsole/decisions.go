package securityconsole

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/web"
	"github.com/meetguard/meetguard/policy"
)

// pageSize is how many decisions one page lists.
const pageSize = 50

// filterForm is the decisions filter as the viewer typed it.
type filterForm struct {
	Room, Person, Outcome, Reason, Since, Until, TZ string
	Page                                            int
}

func (f filterForm) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"room": f.Room, "person": f.Person, "outcome": f.Outcome, "reason": f.Reason, "since": f.Since, "until": f.Until, "tz": f.TZ} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// maxFilterBytes bounds each filter value.
const maxFilterBytes = 256

// parseFilter reads the query. Times without a zone are in the viewer's
// zone: tz is its offset from UTC in minutes as the browser reports it
// (Date.getTimezoneOffset: UTC minus local), sent by the page's script.
func parseFilter(q url.Values, now time.Time) (filterForm, audit.DecisionQuery, error) {
	f := filterForm{Room: q.Get("room"), Person: strings.TrimSpace(q.Get("person")), Outcome: q.Get("outcome"), Reason: strings.TrimSpace(q.Get("reason")),
		Since: q.Get("since"), Until: q.Get("until"), TZ: q.Get("tz")}
	var dq audit.DecisionQuery
	for name, v := range map[string]string{"room": f.Room, "person": f.Person, "reason": f.Reason, "since": f.Since, "until": f.Until, "tz": f.TZ} {
		if len(v) > maxFilterBytes {
			return f, dq, fmt.Errorf("%s: at most %d bytes", name, maxFilterBytes)
		}
	}
	switch f.Outcome {
	case "", audit.DecisionAllow, audit.DecisionLobby, audit.DecisionDeny, audit.OutcomeRateLimited:
	default:
		return f, dq, fmt.Errorf("outcome: one of allow, lobby, deny, rate_limited")
	}
	offset := time.Duration(0)
	if f.TZ != "" {
		m, err := strconv.Atoi(f.TZ)
		if err != nil || m < -16*60 || m > 16*60 {
			return f, dq, fmt.Errorf("tz: minutes from UTC, -960 to 960")
		}
		offset = time.Duration(m) * time.Minute
	}
	parse := func(name, s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := audit.ParseTime(s, now)
		if err != nil {
			return t, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err != nil && !strings.ContainsAny(s[min(len(s), 10):], "Z+") {
			t = t.Add(offset) // a wall time in the viewer's zone
		}
		return t, nil
	}
	var err error
	if dq.Since, err = parse("since", f.Since); err != nil {
		return f, dq, err
	}
	if dq.Until, err = parse("until", f.Until); err != nil {
		return f, dq, err
	}
	if p := q.Get("page"); p != "" {
		if f.Page, err = strconv.Atoi(p); err != nil || f.Page < 1 || f.Page > 1_000_000 {
			return f, dq, fmt.Errorf("page: a number from 1")
		}
	}
	if f.Page == 0 {
		f.Page = 1
	}
	dq.Room, dq.Person, dq.Outcome, dq.Reason = f.Room, f.Person, f.Outcome, f.Reason
	dq.Offset, dq.Limit = (f.Page-1)*pageSize, pageSize
	return f, dq, nil
}

// view is what every console template sees.
type view struct {
	Nav      string
	Who      string
	Security bool // the viewer has the security role
	Error    string
	// decisions
	Filter    filterForm
	Result    audit.DecisionPage
	Indexed   int
	Prev      string
	Next      string
	Outcomes  []string
	PageCount int
	// decision detail
	Detail *detail
	// rooms
	Room   *roomView
	Report *audit.Report
	// what-if
	WhatIf *whatIfView
	// policy
	Policy *policyView
	// integrity
	Integrity *integrityView
}

func (c *Console) base(q *call, nav string) view {
	who := q.id.Subject
	if q.id.Email != "" {
		who = q.id.Email
	}
	return view{Nav: nav, Who: who, Security: q.access.Has("security")}
}

func (c *Console) render(q *call, status int, title web.Text, v view) {
	// The filter forms submit (GET) to the console itself.
	pv := web.View{Template: "security", Title: title, Script: "security.js", FormAction: []string{"'self'"}, Data: v}
	if v.WhatIf != nil {
		// The what-if form POSTs: its Origin must be sent (web.View).
		pv.ReferrerPolicy = "same-origin"
	}
	c.o.Pages.Render(q.w, q.r, status, pv)
}

func (c *Console) badRequest(q *call, nav string, err error) {
	v := c.base(q, nav)
	v.Error = err.Error()
	c.render(q, http.StatusBadRequest, web.T("security.bad_request"), v)
}

func (c *Console) unavailable(q *call, err error) {
	c.o.Logger.Warn("security console: reading the audit log failed")
	_ = err
	respond.Page(q.w, q.r, http.StatusServiceUnavailable, web.T("security.unavailable_title"), web.Message{Text: web.T("security.unavailable")})
}

func (c *Console) serveDecisions(q *call) {
	f, dq, err := parseFilter(q.r.URL.Query(), c.o.Now())
	if err != nil {
		c.badRequest(q, "decisions", err)
		return
	}
	if err := c.fresh(q.r.Context()); err != nil {
		c.unavailable(q, err)
		return
	}
	v := c.base(q, "decisions")
	v.Filter, v.Indexed = f, c.index.Len()
	v.Result = c.index.Query(dq)
	v.Outcomes = []string{audit.DecisionAllow, audit.DecisionLobby, audit.DecisionDeny, audit.OutcomeRateLimited}
	v.PageCount = (v.Result.Total + pageSize - 1) / pageSize
	link := func(page int) string {
		vals := f.values()
		vals.Set("page", strconv.Itoa(page))
		return Prefix + "decisions?" + vals.Encode()
	}
	if f.Page > 1 {
		v.Prev = link(f.Page - 1)
	}
	if f.Page < v.PageCount {
		v.Next = link(f.Page + 1)
	}
	c.render(q, http.StatusOK, web.T("security.decisions_title"), v)
}

// detail is one decision in full.
type detail struct {
	Decision   audit.Decision
	Revision   string
	DecisionID string
	Via        string
	Input      string // indented JSON, masked
	Masked     string // the mask fields removed from it
	Result     string
	Record     string // the record as stored
	// Why is the serving policy's explanation of the logged input (its
	// package's other rules as evaluated: deny reasons, is_host, ...), and
	// WhyRevision the revision that gave it.
	Why         string
	WhyRevision string
	File        string
	Line        int
}

func (c *Console) serveDecision(q *call) {
	ref := q.r.URL.Query().Get("ref")
	if err := c.fresh(q.r.Context()); err != nil {
		c.unavailable(q, err)
		return
	}
	e, err := c.index.Entry(ref)
	if err != nil {
		respond.Page(q.w, q.r, http.StatusNotFound, web.T("security.notfound_title"), web.Message{Text: web.T("security.notfound"), Link: &web.Link{Href: Prefix, Label: web.T("security.nav_decisions")}})
		return
	}
	d := &detail{Revision: e.Str(audit.FieldPolicyRevision), DecisionID: e.Str(audit.FieldDecisionID), Via: e.Str(audit.FieldVia),
		Record: string(e.Raw), File: e.File, Line: e.Line}
	page := c.index.Query(audit.DecisionQuery{Room: e.Str(audit.FieldRoom), Person: e.Str(audit.FieldSubject), Since: e.Time, Until: e.Time.Add(time.Nanosecond), Limit: 1000})
	for _, x := range page.Decisions {
		if x.Ref == ref {
			d.Decision = x
		}
	}
	if raw, ok := e.Get(audit.FieldInput); ok {
		// The decision log's masking applies to every input shown.
		d.Input = indent(raw)
		if in, erased := c.mask(raw); in != nil {
			if b, err := json.MarshalIndent(in, "", "  "); err == nil {
				d.Input, d.Masked = string(b), strings.Join(erased, ", ")
			}
		}
		if c.o.Explain != nil {
			// Replay strictness: an input the schema does not take is
			// shown, not explained.
			if in, err := policy.ParseInput("audit record", raw); err == nil {
				if ex, err := c.o.Explain(q.r.Context(), in); err == nil {
					if b, err := json.MarshalIndent(ex.Values, "", "  "); err == nil {
						d.Why, d.WhyRevision = string(b), ex.Decision.Revision
					}
				}
			}
		}
	}
	if raw, ok := e.Get(audit.FieldResult); ok {
		d.Result = indent(raw)
	}
	v := c.base(q, "decisions")
	v.Detail = d
	c.render(q, http.StatusOK, web.T("security.decision_title"), v)
}

func indent(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}
