package policy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"go.uber.org/zap"
)

// Defaults for Options.
const (
	DefaultQuery         = "data.meetguard.admission.decision"
	DefaultCreateQuery   = "data.meetguard.admission.create_room"
	DefaultTimeout       = 100 * time.Millisecond
	DefaultWatchDebounce = 200 * time.Millisecond
	// DefaultBundleKeyID is the key id a signed bundle must name, OPA's
	// own default for `opa build --signing-key`.
	DefaultBundleKeyID = "default"
	// BundleName labels the revision in decision-log records.
	BundleName = "meetguard"
)

// Options configure an Engine. Exactly one of Dir and Bundle is required.
type Options struct {
	Dir    string // policy directory (policy.dir)
	Bundle string // OPA bundle file (.tar.gz)
	// BundleVerificationKey is a PEM public key (or certificate) file. When
	// set, every revision must be signed by it: an unsigned bundle, one
	// without a key id, one naming another key id or with a bad signature
	// is refused. Applies to Dir as well as Bundle.
	BundleVerificationKey string
	// BundleVerificationKeyID is the key id signatures must name; default
	// DefaultBundleKeyID.
	BundleVerificationKeyID string
	Query                   string        // admission decision; default DefaultQuery
	CreateQuery             string        // room creation decision; default DefaultCreateQuery
	Timeout                 time.Duration // per decision; default DefaultTimeout
	// ShadowDir is an optional candidate policy directory evaluated beside
	// the live one on the same input; disagreements are logged and reported
	// to OnShadow, and the live decision always stands.
	ShadowDir string
	// MaskFields are JSON pointers into the input (e.g. "/identity/email";
	// a leading "/input" is accepted) removed from decision-log records.
	MaskFields    []string
	Logger        *zap.Logger
	WatchDebounce time.Duration // quiet time after a file event before reloading; default DefaultWatchDebounce
	// OnReload is called after every reload attempt, accepted or rejected,
	// live or shadow, so the gateway can audit it. It must not block.
	OnReload func(ReloadEvent)
	// OnDecision is called with an OPA-decision-log-compatible record of
	// every decision. It must not block.
	OnDecision func(DecisionRecord)
	// OnShadow is called with every shadow comparison. It must not block.
	OnShadow func(ShadowRecord)
}

// Engine evaluates admission decisions against the serving policy revision.
// It is safe for concurrent use; reloads swap revisions atomically and never
// interrupt decisions in flight.
type Engine struct {
	opts    Options
	log     *zap.Logger
	verify  *verifier
	queries [queryKinds]queryRef
	mask    []maskPath

	live   atomic.Pointer[revision]
	shadow atomic.Pointer[revision]

	reloadMu    sync.Mutex // one reload at a time
	mu          sync.Mutex // guards the status fields below
	lastReload  time.Time
	lastErr     error
	shadowErr   error
	shadowSlots chan struct{}
}

// queryKind picks one of the prepared decision queries.
type queryKind int

const (
	queryDecision queryKind = iota
	queryCreate
	queryKinds
)

// queryRef is a decision query: its parsed form and its decision-log path.
type queryRef struct {
	kind queryKind
	text string
	ref  ast.Ref
	body ast.Body
	path string // "meetguard/admission/decision"
}

func parseQuery(kind queryKind, field, q string) (queryRef, error) {
	ref, err := ast.ParseRef(q)
	if err != nil || !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 2 || !ref.IsGround() {
		return queryRef{}, fmt.Errorf("%w: %s: %q must be a data reference such as %s", ErrInvalidOptions, field, q, DefaultQuery)
	}
	parts := make([]string, 0, len(ref)-1)
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			return queryRef{}, fmt.Errorf("%w: %s: %q must name rules, not index them", ErrInvalidOptions, field, q)
		}
		parts = append(parts, string(s))
	}
	return queryRef{kind: kind, text: q, ref: ref, body: ast.NewBody(ast.NewExpr(ast.NewTerm(ref))), path: strings.Join(parts, "/")}, nil
}

// revision is one compiled policy with its prepared queries.
type revision struct {
	hash     string
	source   string
	loadedAt time.Time
	trigger  string // how it came to serve: "start", "reload" (SIGHUP) or "watch"
	tests    int
	build    *build
	prepared [queryKinds]rego.PreparedEvalQuery
}

// New loads, compiles, type-checks and tests the policy, and prepares its
// queries. It returns an error, serving nothing, if any of that fails.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if (opts.Dir == "") == (opts.Bundle == "") {
		return nil, fmt.Errorf("%w: give exactly one of a policy directory or a bundle file", ErrInvalidOptions)
	}
	opts.Query = cmp.Or(opts.Query, DefaultQuery)
	opts.CreateQuery = cmp.Or(opts.CreateQuery, DefaultCreateQuery)
	if opts.Timeout < 0 || opts.WatchDebounce < 0 {
		return nil, fmt.Errorf("%w: timeout %v and watch debounce %v must not be negative", ErrInvalidOptions, opts.Timeout, opts.WatchDebounce)
	}
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	opts.WatchDebounce = cmp.Or(opts.WatchDebounce, DefaultWatchDebounce)
	opts.BundleVerificationKeyID = cmp.Or(opts.BundleVerificationKeyID, DefaultBundleKeyID)
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	e := &Engine{opts: opts, log: opts.Logger, shadowSlots: make(chan struct{}, 64)}
	var err error
	if e.queries[queryDecision], err = parseQuery(queryDecision, "query", opts.Query); err != nil {
		return nil, err
	}
	if e.queries[queryCreate], err = parseQuery(queryCreate, "create_query", opts.CreateQuery); err != nil {
		return nil, err
	}
	if e.mask, err = parseMasks(opts.MaskFields); err != nil {
		return nil, err
	}
	if e.verify, err = verifierFor(opts.BundleVerificationKey, opts.BundleVerificationKeyID); err != nil {
		return nil, err
	}

	rev, err := e.load(ctx, opts.Dir, opts.Bundle, e.verify)
	if err != nil {
		return nil, err
	}
	rev.trigger = "start"
	e.live.Store(rev)
	e.lastReload = rev.loadedAt
	e.log.Info("policy.loaded", zap.String("source", rev.source), zap.String("revision", rev.hash), zap.Int("tests", rev.tests))

	if opts.ShadowDir != "" {
		srev, err := e.load(ctx, opts.ShadowDir, "", nil)
		if err != nil {
			return nil, fmt.Errorf("shadow policy: %w", err)
		}
		srev.trigger = "start"
		e.shadow.Store(srev)
		e.log.Info("policy.shadow_loaded", zap.String("source", srev.source), zap.String("revision", srev.hash))
	}
	return e, nil
}

// load reads and builds one revision; its tests must pass.
func (e *Engine) load(ctx context.Context, dir, bundlePath string, v *verifier) (*revision, error) {
	src, err := readSource(dir, bundlePath)
	if err != nil {
		return nil, err
	}
	return e.buildRevision(ctx, src, v)
}

func (e *Engine) buildRevision(ctx context.Context, src *source, v *verifier) (*revision, error) {
	b, err := compile(ctx, src, buildOptions{verify: v, runTests: true})
	if err != nil {
		return nil, err
	}
	if lerr := b.testFailures(); lerr != nil {
		return nil, lerr
	}
	decision := e.queries[queryDecision]
	if len(b.compiler.GetRulesExact(decision.ref)) == 0 {
		return nil, &LoadError{Source: src.name, Stage: "prepare", kind: ErrInvalidPolicy,
			Problems: []Problem{{File: src.name, Message: "no rule defines " + decision.text}}}
	}
	if create := e.queries[queryCreate]; len(b.compiler.GetRulesExact(create.ref)) == 0 {
		// Not fatal: DecideCreate then denies every request with policy_error.
		e.log.Warn("policy.create_query_undefined", zap.String("source", src.name), zap.String("query", create.text))
	}
	rev := &revision{hash: src.hash(), source: src.name, loadedAt: time.Now(), tests: len(b.tests), build: b}
	for _, q := range e.queries {
		if rev.prepared[q.kind], err = b.prepare(ctx, q.body); err != nil {
			return nil, &LoadError{Source: src.name, Stage: "prepare", kind: ErrInvalidPolicy, cause: err, Problems: astProblems(err, src.name)}
		}
	}
	return rev, nil
}

func (b *build) prepare(ctx context.Context, body ast.Body, extra ...func(*rego.Rego)) (rego.PreparedEvalQuery, error) {
	opts := append([]func(*rego.Rego){
		rego.ParsedQuery(body),
		rego.Compiler(b.compiler),
		rego.Store(b.store),
		// A built-in error (a bad time, a bad number) must fail the
		// decision, not quietly make a deny rule undefined.
		rego.StrictBuiltinErrors(true),
	}, extra...)
	return rego.New(opts...).PrepareForEval(ctx)
}

// Revision is the content hash of the serving revision.
func (e *Engine) Revision() string { return e.live.Load().hash }

// Status is the engine's state, for the security console's policy page.
type Status struct {
	Loaded          bool      `json:"loaded"`
	Source          string    `json:"source"`
	Revision        string    `json:"revision"`
	LoadedAt        time.Time `json:"loaded_at"`
	LoadTrigger     string    `json:"load_trigger"` // "start", "reload" (SIGHUP) or "watch" (a file changed)
	Tests           int       `json:"tests"`
	LastReloadAt    time.Time `json:"last_reload_at"`
	LastReloadError string    `json:"last_reload_error,omitempty"` // why the latest reload was refused; empty once one succeeds
	ShadowSource    string    `json:"shadow_source,omitempty"`
	ShadowRevision  string    `json:"shadow_revision,omitempty"`
	ShadowError     string    `json:"shadow_error,omitempty"`
}

// Status reports the serving revision and the outcome of the latest reload.
func (e *Engine) Status() Status {
	rev := e.live.Load()
	s := Status{Loaded: rev != nil}
	if rev != nil {
		s.Source, s.Revision, s.LoadedAt, s.LoadTrigger, s.Tests = rev.source, rev.hash, rev.loadedAt, rev.trigger, rev.tests
	}
	if srev := e.shadow.Load(); srev != nil {
		s.ShadowSource, s.ShadowRevision = srev.source, srev.hash
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s.LastReloadAt = e.lastReload
	if e.lastErr != nil {
		s.LastReloadError = e.lastErr.Error()
	}
	if e.shadowErr != nil {
		s.ShadowError = e.shadowErr.Error()
	}
	return s
}

// Decide answers data.meetguard.admission.decision (Options.Query) for in.
// It never allows on any failure: an evaluation error, a timeout, an
// undefined result, several results or a malformed one all give
// Allow=false with Reasons ["policy_error"].
func (e *Engine) Decide(ctx context.Context, in Input) Decision {
	return e.decide(ctx, queryDecision, in)
}

// DecideCreate answers data.meetguard.admission.create_room
// (Options.CreateQuery): may this identity create room in.Room.ID? Its
// failure rules are Decide's.
func (e *Engine) DecideCreate(ctx context.Context, in Input) Decision {
	return e.decide(ctx, queryCreate, in)
}

func (e *Engine) decide(ctx context.Context, kind queryKind, in Input) Decision {
	q := e.queries[kind]
	rev := e.live.Load()
	id := newDecisionID()
	input := in.value()
	start := time.Now()
	d, raw, err := rev.eval(ctx, kind, input, e.opts.Timeout)
	elapsed := time.Since(start)
	if err != nil {
		d = policyError()
		e.log.Warn("policy.decision_failed", zap.String("decision_id", id), zap.String("query", q.text),
			zap.String("revision", rev.hash), zap.String("room", in.Room.ID), zap.Error(err))
	}
	d.DecisionID, d.Revision = id, rev.hash

	if e.opts.OnDecision != nil {
		e.opts.OnDecision(e.record(q, id, rev.hash, input, raw, d, err, start, elapsed))
	}
	if srev := e.shadow.Load(); srev != nil {
		e.runShadow(ctx, srev, kind, in, input, d)
	}
	return d
}

// keepAST skips OPA's conversion of results to Go maps: decodeDecision
// reads the AST value directly.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

var (
	errUndefined = errors.New("decision is undefined")
	errAmbiguous = errors.New("query has more than one result")
)

// eval runs one prepared query under the decision deadline and checks the
// result's shape. raw is the policy's own result, for the decision log.
func (r *revision) eval(ctx context.Context, kind queryKind, input ast.Value, timeout time.Duration) (d Decision, raw ast.Value, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return Decision{}, nil, err
	}
	rs, err := r.prepared[kind].Eval(ctx, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepAST))
	switch {
	case err != nil:
		return Decision{}, nil, err
	case ctx.Err() != nil:
		// Evaluation may finish between cancellation checks; a decision
		// past its deadline is not used either.
		return Decision{}, nil, ctx.Err()
	case len(rs) == 0:
		return Decision{}, nil, errUndefined
	case len(rs) > 1 || len(rs[0].Expressions) != 1:
		return Decision{}, nil, errAmbiguous
	}
	raw, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return Decision{}, nil, fmt.Errorf("%w: unexpected result type %T", errNotDecision, rs[0].Expressions[0].Value)
	}
	d, err = decodeDecision(raw)
	return d, raw, err
}

// newDecisionID returns a random UUID (version 4), as OPA uses for decision
// ids.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
