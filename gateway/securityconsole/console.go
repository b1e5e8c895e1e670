package securityconsole

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/web"
	"github.com/meetguard/meetguard/policy"
)

// Prefix is where the console is served.
const Prefix = "/.meetguard/security/"

// Gate decides who may use the console (policy.ConsoleGate).
type Gate interface {
	Access(ctx context.Context, id policy.Identity) (policy.ConsoleAccess, error)
}

// Options configure a Console.
type Options struct {
	// Gate answers data.meetguard.console.access. Required.
	Gate Gate
	// Audit records every console request. Required: a view that cannot
	// be recorded is refused.
	Audit audit.Recorder
	// Files lists the audit log files to read (every node's, in any
	// order). Required.
	Files func() ([]string, error)
	// Explain, when set, says why the serving policy decides a logged
	// input as it does (policy.Engine.Explain), for the decision page.
	Explain func(ctx context.Context, in policy.Input) (*policy.Explanation, error)
	// Policy builds the what-if page's candidate policies and masks logged
	// inputs as the decision log does (the serving *policy.Engine). Without
	// it the what-if page is off and inputs are shown as logged.
	Policy Candidates
	// Origin is the gateway's own origin (scheme://host[:port]), which a
	// browser's what-if POST must come from (web.CheckCSRF).
	Origin string
	// Serving is the serving policy, for the policy page; without it the
	// page shows only the audit log's policy records.
	Serving PolicyState
	// TestTimeout bounds one background run of the policy's own tests;
	// default DefaultTestTimeout.
	TestTimeout time.Duration
	// Keys verify the audit log's checkpoint signatures (every node's
	// public key) for the integrity page; without them it says so.
	Keys []ed25519.PublicKey
	// IntegrityWait is how long an integrity view waits for the chain
	// check it starts; default DefaultIntegrityWait.
	IntegrityWait time.Duration
	// Pages renders the pages; default web.Default().
	Pages  *web.Pages
	Logger *zap.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Console serves the console pages. Mount it at Prefix behind the
// gateway's authentication (gateway.Options.Pages): it reads the identity
// from the request context.
type Console struct {
	o     Options
	index *audit.DecisionIndex
	tests *policyTests

	monitor   *audit.ChainMonitor // nil without Keys
	intMu     sync.Mutex
	intDone   chan struct{} // closed when the latest chain check ended
	intFailed bool

	mu        sync.Mutex // one index update at a time
	refreshed time.Time

	whatIf chan struct{} // one what-if at a time
}

// New builds a Console.
func New(o Options) (*Console, error) {
	if o.Gate == nil || o.Audit == nil || o.Files == nil {
		return nil, errors.New("securityconsole: Gate, Audit and Files are required")
	}
	if o.Pages == nil {
		o.Pages = web.Default()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, index: audit.NewDecisionIndex(), whatIf: make(chan struct{}, 1), tests: newPolicyTests(o)}
	if len(o.Keys) > 0 {
		m, err := audit.NewChainMonitor(audit.ChainMonitorOptions{Keys: o.Keys})
		if err != nil {
			return nil, err
		}
		c.monitor = m
	}
	return c, nil
}

// Index brings the decision index up to date now (the gateway calls it at
// start so that the first page view does not pay for the initial build).
func (c *Console) Index(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updateLocked(ctx)
}

func (c *Console) updateLocked(ctx context.Context) error {
	files, err := c.o.Files()
	if err != nil {
		return err
	}
	if err := c.index.Update(ctx, files); err != nil {
		return err
	}
	c.refreshed = c.o.Now()
	return nil
}

// TestPolicy runs the serving policy's own tests if its revision has not
// been tested yet, and waits for the run (or ctx). The gateway calls it at
// start; the policy page starts a run itself after a reload.
func (c *Console) TestPolicy(ctx context.Context) {
	c.tests.ensure()
	if c.tests != nil {
		c.tests.wait(ctx)
	}
}

// fresh reads what was appended to the log since the last request (the
// index is incremental: a request pays for the new records only), so a
// page shows every record durable before it was asked for.
func (c *Console) fresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updateLocked(ctx)
}

// maxAuditedPath bounds the path (with its query) written to the log.
const maxAuditedPath = 512

// call is one allowed console request.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	id     identity.Identity
	access policy.ConsoleAccess
}

// ServeHTTP authorizes, audits and serves one console request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := identity.From(ctx)
	if !ok || id.Subject == "" {
		// The gateway authenticates first; reaching here without an
		// identity is a wiring mistake, and refused.
		c.refuse(w, r)
		return
	}
	path := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if len(path) > maxAuditedPath {
		path = path[:maxAuditedPath]
	}
	access, err := c.o.Gate.Access(ctx, policyIdentity(id))
	reason := ""
	switch {
	case err != nil:
		c.o.Logger.Warn("security console: policy failed, refusing", zap.String("subject", id.Subject), zap.Error(err))
		reason = "policy_error"
	case !access.Allow:
		reason = "no_role"
	}
	decision := audit.DecisionAllow
	if reason != "" {
		decision = audit.DecisionDeny
	}
	format := exportFormat(r)
	if aerr := audit.Write(ctx, c.o.Audit, audit.ConsoleViewed(id.Subject, id.Issuer, r.Method, path, decision, reason, format, request.ClientIP(r))); aerr != nil {
		// Nothing is shown that is not on the record.
		c.o.Logger.Error("security console: audit failed, refusing", zap.Error(aerr))
		respond.Page(w, r, http.StatusServiceUnavailable, web.T("security.unavailable_title"), web.Message{Text: web.T("security.unavailable")})
		return
	}
	if reason != "" {
		c.refuse(w, r)
		return
	}
	c.route(&call{w: w, r: r, id: id, access: access})
}

// refuse is the one answer for everyone the console is not for, whatever
// the path: it does not say whether a page or a room exists.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request) {
	respond.Page(w, r, http.StatusForbidden, web.T("refusal.title"), web.Message{Text: web.T("security.refusal")})
}

// exportFormat is the audit record's format: an export's, or "whatif" for
// a what-if run (a POST to the what-if page).
func exportFormat(r *http.Request) string {
	if r.Method == http.MethodPost && r.URL.Path == Prefix+"whatif" {
		return "whatif"
	}
	switch f := r.URL.Query().Get("format"); f {
	case "markdown", "json":
		if strings.HasPrefix(r.URL.Path, Prefix+"rooms") {
			return f
		}
	}
	return ""
}

func (c *Console) route(q *call) {
	page := strings.TrimPrefix(q.r.URL.Path, Prefix)
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead && (page != "whatif" || q.r.Method != http.MethodPost) {
		allow := "GET, HEAD"
		if page == "whatif" {
			allow = "GET, HEAD, POST"
		}
		q.w.Header().Set("Allow", allow)
		respond.JSONError(q.w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
		return
	}
	switch page {
	case "", "decisions":
		c.serveDecisions(q)
	case "decision":
		c.serveDecision(q)
	case "rooms":
		c.serveRoom(q)
	case "whatif":
		c.serveWhatIf(q)
	case "policy":
		c.servePolicy(q)
	case "integrity":
		c.serveIntegrity(q)
	default:
		respond.Page(q.w, q.r, http.StatusNotFound, web.T("security.notfound_title"), web.Message{Text: web.T("security.notfound"), Link: &web.Link{Href: Prefix, Label: web.T("security.nav_decisions")}})
	}
}

func policyIdentity(id identity.Identity) policy.Identity {
	pi := policy.Identity{
		Iss: id.Issuer, Sub: id.Subject, Email: identity.ASCIIEmail(id.Email), EmailVerified: id.EmailVerified,
		Name: id.Name, Groups: id.Groups, ACR: id.ACR, AMR: id.AMR, Via: string(id.Via),
	}
	if !id.AuthTime.IsZero() {
		pi.AuthTime = id.AuthTime.Unix()
	}
	return pi
}

// LogFiles lists this node's audit log files (audit.LogFiles of path)
// and those of the other nodes' logs shipped here: every file matching a
// pattern of peers (glob patterns of their active log paths,
// audit.peer_files) with its rotated siblings. Each file once, this
// node's first.
func LogFiles(path string, peers []string) ([]string, error) {
	files, err := audit.LogFiles(path)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	add := func(fs []string) {
		for _, f := range fs {
			abs, err := filepath.Abs(f)
			if err != nil || seen[abs] {
				continue
			}
			seen[abs] = true
			files = append(files, f)
		}
	}
	files, own := nil, files
	add(own)
	for _, g := range peers {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("audit.peer_files %q: %w", g, err)
		}
		sort.Strings(m)
		for _, f := range m {
			if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			peer, err := audit.LogFiles(f)
			if err != nil {
				return nil, err
			}
			add(peer)
		}
	}
	return files, nil
}
