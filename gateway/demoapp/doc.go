// Package demoapp is the demo meeting app that `meetguard dev` puts behind
// the gateway: a page per room at /room/{name} that shows who the gateway
// says you are and, over a WebSocket at /room/{name}/ws, who else is in the
// room, with a simple chat.
//
// It knows nothing about logins. It believes only the identity headers the
// gateway sets (X-Meetguard-User, -Email, -Role, -Room) and, when configured,
// checks the gateway's signed X-Meetguard-Assertion against the gateway's
// JWKS, refusing requests whose assertion is missing, invalid or disagrees
// with the headers or the room. It must never take identity from anything a
// client sends, and must never be reachable except through the gateway: the
// headers it trusts are only trustworthy because the gateway strips any
// incoming copies.
package demoapp
