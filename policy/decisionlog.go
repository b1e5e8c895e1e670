package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// DecisionRecord is one decision in OPA's decision-log format, so existing
// OPA log tooling can read it. Input has the configured fields removed
// (listed in Erased, as OPA does).
type DecisionRecord struct {
	DecisionID string                `json:"decision_id"`
	Path       string                `json:"path"` // e.g. "meetguard/admission/decision"
	Input      any                   `json:"input,omitempty"`
	Result     any                   `json:"result,omitempty"` // the policy's own result; absent on error
	Erased     []string              `json:"erased,omitempty"`
	Bundles    map[string]BundleInfo `json:"bundles"`
	Timestamp  time.Time             `json:"timestamp"`
	Metrics    map[string]any        `json:"metrics"`
	Error      string                `json:"error,omitempty"`
	// Decision is what the gateway acts on: Result checked and normalised,
	// or the fail-closed policy_error decision.
	Decision Decision `json:"-"`
}

// BundleInfo names the revision a decision was made under.
type BundleInfo struct {
	Revision string `json:"revision"`
}

func (e *Engine) record(q queryRef, id, rev string, input, raw ast.Value, d Decision, err error, start time.Time, elapsed time.Duration) DecisionRecord {
	rec := DecisionRecord{
		DecisionID: id,
		Path:       q.path,
		Bundles:    map[string]BundleInfo{BundleName: {Revision: rev}},
		Timestamp:  start.UTC(),
		Metrics:    map[string]any{"timer_rego_query_eval_ns": elapsed.Nanoseconds()},
		Decision:   d,
	}
	if in, jerr := ast.JSON(input); jerr == nil {
		rec.Input, rec.Erased = maskInput(in, e.mask)
	}
	if raw != nil {
		if res, jerr := ast.JSON(raw); jerr == nil {
			rec.Result = res
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	return rec
}

// maskPath is a parsed JSON pointer into the input.
type maskPath []string

// parseMasks accepts RFC 6901 JSON pointers relative to the input, with or
// without OPA's leading "/input".
func parseMasks(fields []string) ([]maskPath, error) {
	out := make([]maskPath, 0, len(fields))
	for _, f := range fields {
		p, err := parseMaskPath(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseMaskPath(f string) (maskPath, error) {
	if !strings.HasPrefix(f, "/") {
		return nil, fmt.Errorf("%w: mask field %q must be a JSON pointer such as /identity/email", ErrInvalidOptions, f)
	}
	parts := strings.Split(f[1:], "/")
	if parts[0] == "input" {
		parts = parts[1:]
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: mask field %q would remove the whole input", ErrInvalidOptions, f)
	}
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("%w: mask field %q has an empty segment", ErrInvalidOptions, f)
		}
		// ~1 before ~0, as RFC 6901 section 4 says.
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func (p maskPath) String() string {
	var b strings.Builder
	b.WriteString("/input")
	for _, s := range p {
		b.WriteString("/")
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// maskInput removes masked fields from a JSON-shaped input in place and
// lists what it removed.
func maskInput(in any, masks []maskPath) (any, []string) {
	var erased []string
	for _, m := range masks {
		obj, ok := in.(map[string]any)
		for _, seg := range m[:len(m)-1] {
			if !ok {
				break
			}
			obj, ok = obj[seg].(map[string]any)
		}
		if !ok {
			continue
		}
		last := m[len(m)-1]
		if _, present := obj[last]; present {
			delete(obj, last)
			erased = append(erased, m.String())
		}
	}
	return in, erased
}
