// Package policy decides room admission by evaluating meetguard's Rego bundle
// with an embedded OPA engine.
//
// An Engine compiles each policy revision once (parse, schema type-check
// against the published input schema, restricted built-ins, the bundle's own
// tests), prepares the decision queries, and swaps revisions atomically on
// reload. Each decision is one evaluation of a prepared query under a
// deadline, carrying its reasons, its decision id and the content hash of the
// revision that made it.
//
// The package must never admit on doubt: any evaluation error, timeout,
// undefined or ambiguous result becomes a deny with reason "policy_error". It
// must never let policy code reach the network or read the host environment,
// and it must never replace a serving revision with one that failed to load.
// It does not know about HTTP, sessions or the audit log; the gateway passes
// verified facts in and records what comes out.
package policy
