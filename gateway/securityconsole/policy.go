package securityconsole

import (
	"cmp"
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/web"
	"github.com/meetguard/meetguard/policy"
)

// PolicyState is the serving policy as the policy page shows it
// (policy.Engine).
type PolicyState interface {
	Status() policy.Status
	// TestServing runs the serving revision's own tests with coverage.
	TestServing(ctx context.Context, timeout time.Duration) (*policy.TestReport, error)
}

// DefaultTestTimeout bounds one background run of the bundle's tests (all
// of them, with coverage); each test also has policy.Test's own limit.
const DefaultTestTimeout = 2 * time.Minute

// maxPolicyEvents is how many policy reloads, rejections and shadow
// disagreements the page lists, newest first.
const maxPolicyEvents = 20

// policyTests runs the serving policy's own Rego tests with coverage in the
// background, once per revision, as `meetguard policy test` does (the same
// compile, tester and coverage code), so that the page shows them without
// a page view waiting for OPA's tester.
type policyTests struct {
	state   PolicyState
	timeout time.Duration
	log     *zap.Logger

	mu       sync.Mutex
	running  string // revision being tested, "" when idle
	tested   string // revision the report is of
	report   *policy.TestReport
	err      string
	finished time.Time
}

// testRun is what the page shows of the latest run.
type testRun struct {
	Running  bool
	Report   *policy.TestReport
	Passed   int
	Failed   int
	Error    string
	Finished time.Time
	Stale    bool // the report is of another revision than the serving one
}

// ensure starts a run if the serving revision has not been tested and no
// run is under way. It never waits for the run.
func (p *policyTests) ensure() {
	if p == nil || p.state == nil {
		return
	}
	rev := p.state.Status().Revision
	p.mu.Lock()
	defer p.mu.Unlock()
	if rev == "" || p.running != "" || p.tested == rev {
		return
	}
	p.running = rev
	go p.run(rev)
}

func (p *policyTests) run(rev string) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	rep, err := p.state.TestServing(ctx, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running, p.finished = "", time.Now()
	p.tested, p.report, p.err = rev, rep, ""
	if err != nil {
		p.report, p.err = nil, err.Error()
	}
	if rep != nil {
		p.tested = rep.Revision // a reload may have come in between
	}
	if err != nil {
		p.log.Warn("security console: policy tests could not run", zap.Error(err))
	}
}

// wait blocks until no run is under way or ctx ends (tests, and the
// gateway's start-up pass).
func (p *policyTests) wait(ctx context.Context) {
	for {
		p.mu.Lock()
		idle := p.running == ""
		p.mu.Unlock()
		if idle || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *policyTests) snapshot(serving string) testRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := testRun{Running: p.running != "", Report: p.report, Error: p.err, Finished: p.finished}
	if p.report != nil {
		t.Passed, t.Failed = p.report.Passed(), len(p.report.Failed())
		t.Stale = p.report.Revision != serving
	}
	return t
}

// policyView is the policy page.
type policyView struct {
	Status   policy.Status
	Tests    testRun
	Reloads  []policyEvent // reloads and rejections, newest first
	Rejected []policyEvent // the rejections among them
	Shadow   []policyEvent // shadow disagreements
	ReadErr  bool          // the audit log could not be read
}

// policyEvent is one policy.* audit record.
type policyEvent struct {
	Time     time.Time
	Node     string
	Event    string
	Trigger  string
	Shadow   bool
	Revision string
	Other    string // previous or current revision
	Error    string // file:line: problem
	// shadow disagreements
	Room, Subject, Live, Candidate string
}

// servePolicy shows the serving revision and how it came to serve, the
// reloads refused (with file and line, which /readyz no longer says), the
// bundle's own test results and coverage, and shadow disagreements.
func (c *Console) servePolicy(q *call) {
	v := c.base(q, "policy")
	pv := &policyView{}
	v.Policy = pv
	if c.o.Serving != nil {
		pv.Status = c.o.Serving.Status()
		c.tests.ensure()
		pv.Tests = c.tests.snapshot(pv.Status.Revision)
	}
	files, err := c.o.Files()
	var recs []*audit.Entry
	if err == nil {
		recs, err = audit.ReadRecent(q.r.Context(), files, audit.Filter{Event: "policy.*"}, audit.RecentOptions{Limit: 3 * maxPolicyEvents})
	}
	if err != nil {
		c.o.Logger.Warn("security console: reading policy events failed", zap.Error(err))
		pv.ReadErr = true
	}
	for _, e := range recs {
		ev := policyEvent{Time: e.Time, Node: e.Node, Event: e.Event, Trigger: e.Str(audit.FieldTrigger), Shadow: e.Str(audit.FieldShadow) == "true",
			Revision: e.Str(audit.FieldRevision), Error: e.Str(audit.FieldError)}
		switch e.Event {
		case audit.EventPolicyReload:
			ev.Other = e.Str(audit.FieldPreviousRevision)
		case audit.EventPolicyReloadRejected:
			ev.Other = e.Str(audit.FieldCurrentRevision)
			if len(pv.Rejected) < maxPolicyEvents {
				pv.Rejected = append(pv.Rejected, ev)
			}
		case audit.EventPolicyShadowDisagreement:
			ev.Other = e.Str(audit.FieldPolicyRevision)
			ev.Room, ev.Subject = e.Str(audit.FieldRoom), e.Str(audit.FieldSubject)
			ev.Live, ev.Candidate = e.Str(audit.FieldDecision), e.Str(audit.FieldShadowDecision)
			if len(pv.Shadow) < maxPolicyEvents {
				pv.Shadow = append(pv.Shadow, ev)
			}
			continue
		default:
			continue
		}
		if len(pv.Reloads) < maxPolicyEvents {
			pv.Reloads = append(pv.Reloads, ev)
		}
	}
	c.render(q, http.StatusOK, web.T("security.polpage.title"), v)
}

func newPolicyTests(o Options) *policyTests {
	if o.Serving == nil {
		return nil
	}
	return &policyTests{state: o.Serving, timeout: cmp.Or(o.TestTimeout, DefaultTestTimeout), log: o.Logger}
}
