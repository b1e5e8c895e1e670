package policy

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation says why a policy decided what it did, for people editing
// Rego (meetguard policy eval --explain). It is not for the request path.
type Explanation struct {
	Query    string   `json:"query"`
	Decision Decision `json:"decision"`
	// Package is the decision rule's package; Values holds every other rule
	// of it as evaluated for this input (deny reasons, is_host, capacity...).
	Package string         `json:"package"`
	Values  map[string]any `json:"values"`
	Trace   string         `json:"trace,omitempty"` // OPA's evaluation trace, when asked for
}

// Explain evaluates one of the engine's decision queries ("decision",
// "create_room", or the full query text) for in, and also evaluates the rest
// of its package so the reader sees the intermediate conclusions.
func (e *Engine) Explain(ctx context.Context, query string, in Input, trace bool) (*Explanation, error) {
	kind := queryDecision
	switch query {
	case "", "decision", e.queries[queryDecision].text:
	case "create_room", e.queries[queryCreate].text:
		kind = queryCreate
	default:
		return nil, fmt.Errorf("%w: query %q is neither decision (%s) nor create_room (%s)", ErrInvalidOptions, query, e.queries[queryDecision].text, e.queries[queryCreate].text)
	}
	q := e.queries[kind]
	rev := e.live.Load()
	input := in.value()
	d, _, err := rev.eval(ctx, kind, input, e.opts.Timeout)
	if err != nil {
		// Show what a request would get, and why.
		d = policyError()
		d.UserMessage += " [" + err.Error() + "]"
	}
	d.Revision = rev.hash
	ex := &Explanation{Query: q.text, Decision: d}

	pkg := q.ref[:len(q.ref)-1]
	ex.Package = pkg.String()
	rs, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(pkg)))),
		rego.Compiler(rev.build.compiler),
		rego.Store(rev.build.store),
		rego.ParsedInput(input),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", ex.Package, err)
	}
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		if m, ok := rs[0].Expressions[0].Value.(map[string]any); ok {
			ex.Values = maps.Clone(m)
			// parseQuery guarantees the last ref term is a string.
			delete(ex.Values, string(q.ref[len(q.ref)-1].Value.(ast.String)))
		}
	}

	if trace {
		tracer := topdown.NewBufferTracer()
		_, _ = rev.prepared[kind].Eval(ctx, rego.EvalParsedInput(input), rego.EvalQueryTracer(tracer))
		var b strings.Builder
		topdown.PrettyTraceWithLocation(&b, *tracer)
		ex.Trace = b.String()
	}
	return ex, nil
}
