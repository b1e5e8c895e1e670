package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file each, so that they read (and lint)
// as Lua. Every room script is room_prelude.lua followed by its own file:
// the prelude documents the KEYS and ARGV every room script shares, and
// each file the ARGV of its own from 9. The rate-limit scripts share
// limit_prelude.lua the same way.
//
// Time inside a script is Redis's (TIME), so nodes with skewed clocks agree
// on every lease and expiry. Events are published inside the scripts: an
// event goes out if and only if its change happened.
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

func roomScript(name string) *redis.Script {
	return redis.NewScript(luaSource("room_prelude") + luaSource(name))
}

func limitScript(name string) *redis.Script {
	return redis.NewScript(luaSource("limit_prelude") + luaSource(name))
}

var (
	putScript           = roomScript("put")
	roomViewScript      = roomScript("room_view")
	factsScript         = roomScript("facts")
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
	beginJoinScript     = limitScript("begin_join")
	recordFailureScript = limitScript("record_failure")
	// passcodeBudgetScript reads without touching: it has no prelude.
	passcodeBudgetScript = redis.NewScript(luaSource("passcode_budget"))
)

var allScripts = []*redis.Script{
	putScript, roomViewScript, factsScript, admitScript, touchScript, leaveScript, removeScript, knockScript, heartbeatScript,
	admitWaitingScript, denyWaitingScript, waitStatusScript, lockScript, suspendScript, setRoleScript, beginJoinScript,
	recordFailureScript, passcodeBudgetScript,
	e2eeSetScript, e2eeTakeScript, e2eeListScript, e2eeDeletePrefixScript, e2eeIncrScript,
}
