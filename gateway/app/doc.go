// Package app builds the whole gateway from a validated config: the audit
// log, the policy engine, the room and session stores, the OpenID Connect
// authenticator, the assertion signer, the upstream adapters, the rooms
// API, the e2ee API, readiness checks and the listener's TLS. It is the one
// place where those parts are wired together: `meetguard serve`,
// `meetguard dev` and every test harness build the gateway with New, so a
// part is configured the same way wherever it runs.
//
// It never parses flags, handles signals or exits the process; that is
// cmd/meetguard's job. An App keeps its parts as fields so that a reload
// (SIGHUP) can reach the ones that change while the process runs: the
// policy engine and the certificate files today.
package app
