package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputKeys holds the input's object keys as terms, built once: most are
// not in OPA's intern table, and allocating them per decision was a fifth of
// the conversion's cost. Read-only after package initialisation.
var inputKeys = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{
		"identity", "iss", "sub", "email", "email_verified", "name", "groups", "acr", "amr", "auth_time", "via",
		"room", "id", "exists", "owner", "capacity", "occupancy", "locked", "lobby_enabled", "host_present",
		"passcode_required", "passcode_ok", "e2ee_required", "tags", "banned",
		"device", "key_registered", "key_fingerprint", "pq",
		"request", "time", "ip", "user_agent", "method", "path", "origin",
		"history", "window_seconds", "join_attempts", "join_failures", "passcode_failures",
		"trusted", "limited", "passcode_attack",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// value converts the input to an OPA value directly. It is the hot path of
// every decision: going through encoding/json and back costs several times
// more. Its output must equal the JSON encoding of Input (a test checks), with
// nil lists as empty lists so that policies never see null.
//
// Its terms come from one block (terms), and empty strings and lists are
// OPA's shared interned terms: a join's input is otherwise about ninety
// small allocations, which the garbage collector pays for again. Nothing
// changes a term once built (OPA treats input as immutable), so sharing
// is safe.
func (in *Input) value() ast.Value {
	b := make(terms, 0, inputTerms+len(in.Identity.Groups)+len(in.Identity.AMR)+len(in.Room.Tags))
	return ast.NewObject(
		item("identity", b.of(ast.NewObject(
			item("iss", b.str(in.Identity.Iss)),
			item("sub", b.str(in.Identity.Sub)),
			item("email", b.str(in.Identity.Email)),
			item("email_verified", ast.InternedTerm(in.Identity.EmailVerified)),
			item("name", b.str(in.Identity.Name)),
			item("groups", b.strs(in.Identity.Groups)),
			item("acr", b.str(in.Identity.ACR)),
			item("amr", b.strs(in.Identity.AMR)),
			item("auth_time", ast.InternedTerm(in.Identity.AuthTime)),
			item("via", b.str(in.Identity.Via)),
		))),
		item("room", b.of(ast.NewObject(
			item("id", b.str(in.Room.ID)),
			item("exists", ast.InternedTerm(in.Room.Exists)),
			item("owner", b.str(in.Room.Owner)),
			item("capacity", ast.InternedTerm(in.Room.Capacity)),
			item("occupancy", ast.InternedTerm(in.Room.Occupancy)),
			item("locked", ast.InternedTerm(in.Room.Locked)),
			item("lobby_enabled", ast.InternedTerm(in.Room.LobbyEnabled)),
			item("host_present", ast.InternedTerm(in.Room.HostPresent)),
			item("passcode_required", ast.InternedTerm(in.Room.PasscodeRequired)),
			item("passcode_ok", ast.InternedTerm(in.Room.PasscodeOK)),
			item("e2ee_required", ast.InternedTerm(in.Room.E2EERequired)),
			item("tags", b.strs(in.Room.Tags)),
			item("banned", ast.InternedTerm(in.Room.Banned)),
		))),
		item("device", b.of(ast.NewObject(
			item("key_registered", ast.InternedTerm(in.Device.KeyRegistered)),
			item("key_fingerprint", b.str(in.Device.KeyFingerprint)),
			item("pq", ast.InternedTerm(in.Device.PQ)),
		))),
		item("request", b.of(ast.NewObject(
			item("time", b.str(in.Request.Time.Format(time.RFC3339Nano))),
			item("ip", b.str(in.Request.IP)),
			item("user_agent", b.str(in.Request.UserAgent)),
			item("method", b.str(in.Request.Method)),
			item("path", b.str(in.Request.Path)),
			item("origin", b.str(in.Request.Origin)),
		))),
		item("history", b.of(ast.NewObject(
			item("window_seconds", ast.InternedTerm(in.History.WindowSeconds)),
			item("identity", b.counters(in.History.Identity)),
			item("ip", b.of(ast.NewObject(
				item("join_attempts", ast.InternedTerm(in.History.IP.JoinAttempts)),
				item("join_failures", ast.InternedTerm(in.History.IP.JoinFailures)),
				item("passcode_failures", ast.InternedTerm(in.History.IP.PasscodeFailures)),
				item("trusted", ast.InternedTerm(in.History.IP.Trusted)),
				item("limited", ast.InternedTerm(in.History.IP.Limited)),
			))),
			item("room", b.of(ast.NewObject(
				item("passcode_failures", ast.InternedTerm(in.History.Room.PasscodeFailures)),
				item("passcode_attack", ast.InternedTerm(in.History.Room.PasscodeAttack)),
			))),
		))),
	)
}

// inputTerms is how many terms value() takes from its block besides the
// lists' elements: 15 strings, 3 lists and 8 objects. A wrong count costs
// only speed: terms grows like any slice, and terms already handed out
// stay where they are.
const inputTerms = 15 + 3 + 8

func item(key string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{inputKeys[key], v} }

// terms hands out one input's terms from a single allocation.
type terms []ast.Term

func (b *terms) of(v ast.Value) *ast.Term {
	*b = append(*b, ast.Term{Value: v})
	return &(*b)[len(*b)-1]
}

// str makes a fresh term: request values are rarely in OPA's intern table,
// so looking them up first only costs time. "" is, and free.
func (b *terms) str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	return b.of(ast.String(s))
}

func (b *terms) strs(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	elems := make([]*ast.Term, len(ss))
	for i, s := range ss {
		elems[i] = b.str(s)
	}
	return b.of(ast.NewArray(elems...))
}

func (b *terms) counters(c Counters) *ast.Term {
	return b.of(ast.NewObject(
		item("join_attempts", ast.InternedTerm(c.JoinAttempts)),
		item("join_failures", ast.InternedTerm(c.JoinFailures)),
		item("passcode_failures", ast.InternedTerm(c.PasscodeFailures)),
	))
}
