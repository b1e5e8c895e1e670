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
func (in *Input) value() ast.Value {
	return ast.NewObject(
		item("identity", ast.NewTerm(ast.NewObject(
			item("iss", str(in.Identity.Iss)),
			item("sub", str(in.Identity.Sub)),
			item("email", str(in.Identity.Email)),
			item("email_verified", ast.InternedTerm(in.Identity.EmailVerified)),
			item("name", str(in.Identity.Name)),
			item("groups", strs(in.Identity.Groups)),
			item("acr", str(in.Identity.ACR)),
			item("amr", strs(in.Identity.AMR)),
			item("auth_time", ast.InternedTerm(in.Identity.AuthTime)),
			item("via", str(in.Identity.Via)),
		))),
		item("room", ast.NewTerm(ast.NewObject(
			item("id", str(in.Room.ID)),
			item("exists", ast.InternedTerm(in.Room.Exists)),
			item("owner", str(in.Room.Owner)),
			item("capacity", ast.InternedTerm(in.Room.Capacity)),
			item("occupancy", ast.InternedTerm(in.Room.Occupancy)),
			item("locked", ast.InternedTerm(in.Room.Locked)),
			item("lobby_enabled", ast.InternedTerm(in.Room.LobbyEnabled)),
			item("host_present", ast.InternedTerm(in.Room.HostPresent)),
			item("passcode_required", ast.InternedTerm(in.Room.PasscodeRequired)),
			item("passcode_ok", ast.InternedTerm(in.Room.PasscodeOK)),
			item("e2ee_required", ast.InternedTerm(in.Room.E2EERequired)),
			item("tags", strs(in.Room.Tags)),
			item("banned", ast.InternedTerm(in.Room.Banned)),
		))),
		item("device", ast.NewTerm(ast.NewObject(
			item("key_registered", ast.InternedTerm(in.Device.KeyRegistered)),
			item("key_fingerprint", str(in.Device.KeyFingerprint)),
			item("pq", ast.InternedTerm(in.Device.PQ)),
		))),
		item("request", ast.NewTerm(ast.NewObject(
			item("time", str(in.Request.Time.Format(time.RFC3339Nano))),
			item("ip", str(in.Request.IP)),
			item("user_agent", str(in.Request.UserAgent)),
			item("method", str(in.Request.Method)),
			item("path", str(in.Request.Path)),
			item("origin", str(in.Request.Origin)),
		))),
		item("history", ast.NewTerm(ast.NewObject(
			item("window_seconds", ast.InternedTerm(in.History.WindowSeconds)),
			item("identity", counters(in.History.Identity)),
			item("ip", ast.NewTerm(ast.NewObject(
				item("join_attempts", ast.InternedTerm(in.History.IP.JoinAttempts)),
				item("join_failures", ast.InternedTerm(in.History.IP.JoinFailures)),
				item("passcode_failures", ast.InternedTerm(in.History.IP.PasscodeFailures)),
				item("trusted", ast.InternedTerm(in.History.IP.Trusted)),
				item("limited", ast.InternedTerm(in.History.IP.Limited)),
			))),
			item("room", ast.NewTerm(ast.NewObject(
				item("passcode_failures", ast.InternedTerm(in.History.Room.PasscodeFailures)),
				item("passcode_attack", ast.InternedTerm(in.History.Room.PasscodeAttack)),
			))),
		))),
	)
}

func item(key string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{inputKeys[key], v} }

// str makes a fresh term: request values are rarely in OPA's intern table,
// so looking them up first only costs time.
func str(s string) *ast.Term { return ast.StringTerm(s) }

func strs(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

func counters(c Counters) *ast.Term {
	return ast.NewTerm(ast.NewObject(
		item("join_attempts", ast.InternedTerm(c.JoinAttempts)),
		item("join_failures", ast.InternedTerm(c.JoinFailures)),
		item("passcode_failures", ast.InternedTerm(c.PasscodeFailures)),
	))
}
