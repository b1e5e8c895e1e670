package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors that callers branch on. Load failures are *LoadError values
// that match one of these with errors.Is.
var (
	// ErrInvalidPolicy: the policy does not parse, compile, type-check
	// against the input schema, stay within the allowed built-ins, or pass
	// its own tests.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrBundleSignature: bundle verification is configured and the bundle is
	// unsigned, names no key, or its signature or file hashes do not match.
	ErrBundleSignature = errors.New("bundle signature rejected")
	// ErrPolicySource: the policy directory or bundle file cannot be read.
	ErrPolicySource = errors.New("policy source unreadable")
	// ErrInvalidInput: a decision input document (e.g. an --input file) is
	// not valid JSON of the input schema's shape.
	ErrInvalidInput = errors.New("invalid policy input")
	// ErrInvalidOptions: Options are contradictory or malformed.
	ErrInvalidOptions = errors.New("invalid policy options")
)

// Problem is one thing wrong with a policy, located as precisely as the
// failing stage allows. Line and Column are 1-based; 0 means unknown.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
			if p.Column > 0 {
				fmt.Fprintf(&b, ":%d", p.Column)
			}
		}
		b.WriteString(": ")
	}
	if p.Code != "" {
		b.WriteString(p.Code)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError reports why a policy revision was refused. Stage is one of
// "read", "signature", "parse", "compile", "test", "prepare".
type LoadError struct {
	Source   string
	Stage    string
	Problems []Problem
	kind     error
	cause    error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s: %s failed", e.Source, e.Stage)
	switch len(e.Problems) {
	case 0:
		if e.cause != nil {
			fmt.Fprintf(&b, ": %v", e.cause)
		}
	case 1:
		b.WriteString(": ")
		b.WriteString(e.Problems[0].String())
	default:
		fmt.Fprintf(&b, " (%d problems):", len(e.Problems))
		for _, p := range e.Problems {
			b.WriteString("\n  ")
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// Unwrap exposes the sentinel kind (ErrInvalidPolicy, ErrBundleSignature,
// ErrPolicySource) and the underlying cause, if any.
func (e *LoadError) Unwrap() []error {
	errs := []error{e.kind}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// InputError locates a problem in a JSON document read from outside: an input
// file or an audit-log line. It matches ErrInvalidInput.
type InputError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	} else if e.File != "" {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *InputError) Unwrap() error { return ErrInvalidInput }
