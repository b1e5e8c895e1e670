package redisstore

import (
	"embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file each, so that they read (and lint)
// as Lua. Every room script is clock.lua, room_prelude.lua, then its own
// file: the prelude documents the KEYS and ARGV every room script shares,
// and each file the ARGV of its own from 9. The rate-limit scripts share
// limit_prelude.lua the same way. begin_join.lua and facts.lua define a
// function each, so that start_join runs both in one script (one round
// trip per join).
//
// Time inside a script is Redis's (TIME, read once in clock.lua), so nodes
// with skewed clocks agree on every lease and expiry. Events are published
// inside the scripts: an event goes out if and only if its change
// happened.
//
//go:embed lua/*.lua
var luaFiles embed.FS

// luaSource returns the embedded script name (without .lua). A missing
// file is a build mistake that every test of this package trips over.
func luaSource(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("redisstore: missing embedded script: " + err.Error())
	}
	return string(b)
}

// roomSource is the clock and the room prelude (KEYS 1-6, ARGV 1-8).
func roomSource() string { return luaSource("clock") + luaSource("room_prelude") }

// limitSource is the rate-limit prelude with its KEYS and ARGV after the
// offsets ko and ao.
func limitSource(ko, ao int) string {
	return fmt.Sprintf("local KO, AO = %d, %d\n", ko, ao) + luaSource("limit_prelude")
}

// roomScript is a room script; tail, if any, follows its file (the call
// of the function the file defines).
func roomScript(name string, tail ...string) *redis.Script {
	return redis.NewScript(roomSource() + luaSource(name) + strings.Join(tail, ""))
}

func limitScript(name string, tail ...string) *redis.Script {
	return redis.NewScript(luaSource("clock") + limitSource(0, 0) + luaSource(name) + strings.Join(tail, ""))
}

var (
	putScript           = roomScript("put")
	roomViewScript      = roomScript("room_view")
	factsScript         = roomScript("facts", "return facts(ARGV[9])\n")
	admitScript         = roomScript("admit")
	touchScript         = roomScript("touch")
	leaveScript         = roomScript("leave")
	removeScript        = roomScript("remove")
	knockScript         = roomScript("knock")
	heartbeatScript     = roomScript("heartbeat")
	admitWaitingScript  = roomScript("admit_waiting")
	denyWaitingScript   = roomScript("deny_waiting")
	waitStatusScript    = roomScript("wait_status")
	lockScript          = roomScript("lock")
	suspendScript       = roomScript("suspend")
	setRoleScript       = roomScript("set_role")
	beginJoinScript     = limitScript("begin_join", "return begin_join(tonumber(ARGV[8]))\n")
	recordFailureScript = limitScript("record_failure")
	// startJoinScript is a room script (KEYS 1-6, ARGV 1-8) with the
	// rate-limit prelude after it (KEYS 7-9, ARGV 9-15).
	startJoinScript = redis.NewScript(roomSource() + limitSource(6, 8) + luaSource("begin_join") + luaSource("facts") +
		luaSource("start_join"))
	// passcodeBudgetScript reads without touching: it has no prelude.
	passcodeBudgetScript = redis.NewScript(luaSource("passcode_budget"))
)

var allScripts = []*redis.Script{
	putScript, roomViewScript, factsScript, admitScript, touchScript, leaveScript, removeScript, knockScript, heartbeatScript,
	admitWaitingScript, denyWaitingScript, waitStatusScript, lockScript, suspendScript, setRoleScript, beginJoinScript,
	recordFailureScript, startJoinScript, passcodeBudgetScript,
	e2eeSetScript, e2eeTakeScript, e2eeListScript, e2eeDeletePrefixScript, e2eeIncrScript,
}
