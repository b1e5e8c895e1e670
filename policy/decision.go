package policy

import (
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Roles a decision may grant.
const (
	RoleHost        = "host"
	RoleParticipant = "participant"
	RoleViewer      = "viewer"
)

// ReasonPolicyError is the reason on every decision the engine had to make
// itself because the policy could not: evaluation error, timeout, undefined
// or ambiguous result, or a result of the wrong shape.
const ReasonPolicyError = "policy_error"

// policyErrorMessage is what a person is told when the policy failed. It
// says nothing about the room.
const policyErrorMessage = "This meeting is not available right now. Please try again later."

// maxTTLSeconds bounds how long a decision may be relied on.
const maxTTLSeconds = 7 * 24 * 3600

// Decision is the policy's answer for one admission. Exactly one of three
// outcomes: Allow (enter now, with Role), Lobby (wait for a host; Role is what
// the person would get), or neither (turned away). UserMessage is the only
// thing the person may be told; Reasons are stable codes for logs and audit.
type Decision struct {
	Allow bool `json:"allow"`
	Lobby bool `json:"lobby"`
	// Member is the policy's word that the identity belongs to the
	// organisation (staff or host), whatever the outcome: a non-member's
	// refusal counts against its address (rate limits), a member's does
	// not.
	Member      bool           `json:"member"`
	Role        string         `json:"role"`
	Reasons     []string       `json:"reasons"`
	UserMessage string         `json:"user_message"`
	TTLSeconds  int            `json:"ttl_seconds"`
	Obligations map[string]any `json:"obligations,omitempty"`
	DecisionID  string         `json:"decision_id"`
	Revision    string         `json:"revision"`
}

// A decision's outcome as one word, the same words admission records use
// (gateway/audit's Decision* constants).
const (
	OutcomeAllow = "allow"
	OutcomeLobby = "lobby"
	OutcomeDeny  = "deny"
)

// Outcome names which of the three outcomes d is.
func (d Decision) Outcome() string {
	switch {
	case d.Allow:
		return OutcomeAllow
	case d.Lobby:
		return OutcomeLobby
	}
	return OutcomeDeny
}

// policyError is the fail-closed decision.
func policyError() Decision {
	return Decision{Reasons: []string{ReasonPolicyError}, UserMessage: policyErrorMessage}
}

var errNotDecision = errors.New("result is not a decision")

// decisionKeys are a decision's keys as terms, built once: none is in OPA's
// intern table, and making them per decision cost 16 of its allocations.
// Read-only after package initialisation.
var decisionKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{"allow", "lobby", "member", "role", "user_message", "reasons", "ttl_seconds", "obligations"} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// decisionKey is the term for key, made afresh for a key not in
// decisionKeys.
func decisionKey(key string) *ast.Term {
	if t, ok := decisionKeys[key]; ok {
		return t
	}
	return ast.StringTerm(key)
}

// decodeDecision checks the policy's result strictly: a result that is not
// exactly a decision is an error, which the engine turns into a deny. Unknown
// keys are ignored so that policies may carry extra detail.
func decodeDecision(v ast.Value) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("%w: %s, not an object", errNotDecision, ast.ValueName(v))
	}
	var d Decision
	var err error
	if d.Allow, err = boolField(obj, "allow", true); err != nil {
		return Decision{}, err
	}
	if d.Lobby, err = boolField(obj, "lobby", false); err != nil {
		return Decision{}, err
	}
	if d.Member, err = boolField(obj, "member", false); err != nil {
		return Decision{}, err
	}
	if d.Role, err = stringField(obj, "role"); err != nil {
		return Decision{}, err
	}
	if d.UserMessage, err = stringField(obj, "user_message"); err != nil {
		return Decision{}, err
	}
	if t := obj.Get(decisionKey("reasons")); t != nil {
		arr, ok := t.Value.(*ast.Array)
		if !ok {
			return Decision{}, fmt.Errorf("%w: reasons is %s, not an array", errNotDecision, ast.ValueName(t.Value))
		}
		d.Reasons = make([]string, 0, arr.Len())
		for i := range arr.Len() {
			s, ok := arr.Elem(i).Value.(ast.String)
			if !ok {
				return Decision{}, fmt.Errorf("%w: reasons[%d] is %s, not a string", errNotDecision, i, ast.ValueName(arr.Elem(i).Value))
			}
			d.Reasons = append(d.Reasons, string(s))
		}
	}
	if t := obj.Get(decisionKey("ttl_seconds")); t != nil {
		n, ok := t.Value.(ast.Number)
		if !ok {
			return Decision{}, fmt.Errorf("%w: ttl_seconds is %s, not a number", errNotDecision, ast.ValueName(t.Value))
		}
		i, ok := n.Int()
		if !ok || i < 0 || i > maxTTLSeconds {
			return Decision{}, fmt.Errorf("%w: ttl_seconds %s is not a whole number of seconds between 0 and %d", errNotDecision, n, maxTTLSeconds)
		}
		d.TTLSeconds = i
	}
	if t := obj.Get(decisionKey("obligations")); t != nil {
		o, ok := t.Value.(ast.Object)
		if !ok {
			return Decision{}, fmt.Errorf("%w: obligations is %s, not an object", errNotDecision, ast.ValueName(t.Value))
		}
		m, err := ast.JSON(o)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: obligations: %w", errNotDecision, err)
		}
		d.Obligations, _ = m.(map[string]any)
	}

	switch {
	case d.Allow && d.Lobby:
		return Decision{}, fmt.Errorf("%w: allow and lobby are both true", errNotDecision)
	case d.Allow || d.Lobby:
		if !validRole(d.Role) {
			return Decision{}, fmt.Errorf("%w: role %q is not host, participant or viewer", errNotDecision, d.Role)
		}
	default:
		// Nobody turned away holds a role, whatever the policy wrote.
		d.Role = ""
	}
	return d, nil
}

func validRole(r string) bool {
	return r == RoleHost || r == RoleParticipant || r == RoleViewer
}

func boolField(obj ast.Object, key string, required bool) (bool, error) {
	t := obj.Get(decisionKey(key))
	if t == nil {
		if required {
			return false, fmt.Errorf("%w: %s is missing", errNotDecision, key)
		}
		return false, nil
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("%w: %s is %s, not a boolean", errNotDecision, key, ast.ValueName(t.Value))
	}
	return bool(b), nil
}

func stringField(obj ast.Object, key string) (string, error) {
	t := obj.Get(decisionKey(key))
	if t == nil {
		return "", nil
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%w: %s is %s, not a string", errNotDecision, key, ast.ValueName(t.Value))
	}
	return string(s), nil
}
