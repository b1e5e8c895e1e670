package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ConsoleQuery is the document the security console asks for: an object
// {"allow": bool, "roles": [string]} for the identity in input.identity.
const ConsoleQuery = "data.meetguard.console.access"

// Console roles (policies/console.rego).
const (
	ConsoleRoleAuditor  = "auditor"
	ConsoleRoleSecurity = "security"
)

// ConsoleAccess is the policy's answer for one console request.
type ConsoleAccess struct {
	Allow    bool
	Roles    []string
	Revision string
}

// Has reports whether the access carries role.
func (a ConsoleAccess) Has(role string) bool {
	for _, r := range a.Roles {
		if r == role {
			return a.Allow
		}
	}
	return false
}

// ErrConsoleAccess is returned, wrapped, for a console decision the policy
// could not make; the caller refuses.
var ErrConsoleAccess = errors.New("policy: console access")

// ConsoleGate answers ConsoleQuery against the engine's serving revision,
// preparing the query once per revision. A revision without the rule (an
// older bundle) grants nobody.
type ConsoleGate struct {
	engine *Engine
	mu     sync.Mutex
	rev    *revision
	query  rego.PreparedEvalQuery
	ok     bool // the revision defines the rule
}

// NewConsoleGate returns a gate over e.
func NewConsoleGate(e *Engine) *ConsoleGate { return &ConsoleGate{engine: e} }

var consoleRef = ast.MustParseRef(ConsoleQuery)

func (g *ConsoleGate) prepared(ctx context.Context) (*revision, rego.PreparedEvalQuery, bool, error) {
	rev := g.engine.live.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rev == rev {
		return rev, g.query, g.ok, nil
	}
	ok := len(rev.build.compiler.GetRulesExact(consoleRef)) > 0
	var q rego.PreparedEvalQuery
	if ok {
		var err error
		if q, err = rev.build.prepare(ctx, ast.NewBody(ast.NewExpr(ast.NewTerm(consoleRef)))); err != nil {
			return nil, q, false, fmt.Errorf("%w: prepare: %w", ErrConsoleAccess, err)
		}
	}
	g.rev, g.query, g.ok = rev, q, ok
	return rev, q, ok, nil
}

// Access decides whether id may use the console. Any failure (evaluation
// error, timeout, a result of the wrong shape) is an error and no access;
// an undefined rule is no access without error.
func (g *ConsoleGate) Access(ctx context.Context, id Identity) (ConsoleAccess, error) {
	rev, q, ok, err := g.prepared(ctx)
	if err != nil {
		return ConsoleAccess{}, err
	}
	if !ok {
		return ConsoleAccess{Revision: rev.hash}, nil
	}
	in := Input{Identity: id}
	ctx, cancel := context.WithTimeout(ctx, g.engine.opts.Timeout)
	defer cancel()
	rs, err := q.Eval(ctx, rego.EvalParsedInput(in.value()))
	switch {
	case err != nil:
		return ConsoleAccess{}, fmt.Errorf("%w: %w", ErrConsoleAccess, err)
	case len(rs) == 0:
		return ConsoleAccess{Revision: rev.hash}, nil
	case len(rs) > 1 || len(rs[0].Expressions) != 1:
		return ConsoleAccess{}, fmt.Errorf("%w: %w", ErrConsoleAccess, errAmbiguous)
	}
	obj, isObj := rs[0].Expressions[0].Value.(map[string]any)
	if !isObj {
		return ConsoleAccess{}, fmt.Errorf("%w: result is %T, not an object", ErrConsoleAccess, rs[0].Expressions[0].Value)
	}
	allow, isBool := obj["allow"].(bool)
	rolesRaw, isList := obj["roles"].([]any)
	if !isBool || !isList {
		return ConsoleAccess{}, fmt.Errorf("%w: result needs allow (boolean) and roles (list)", ErrConsoleAccess)
	}
	a := ConsoleAccess{Allow: allow, Revision: rev.hash}
	for _, r := range rolesRaw {
		s, isStr := r.(string)
		if !isStr {
			return ConsoleAccess{}, fmt.Errorf("%w: roles must be strings", ErrConsoleAccess)
		}
		a.Roles = append(a.Roles, s)
	}
	if !a.Allow {
		a.Roles = nil
	}
	return a, nil
}
