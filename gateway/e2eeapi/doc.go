// Package e2eeapi serves meetguard's end-to-end key exchange over HTTP: the endpoints under
// /.meetguard/api/v1/rooms/{room}/e2ee/ (docs/e2ee.md section 11) in front of one crypto/e2ee Authority per
// room and meeting instance. It binds each registered device key to the caller's verified identity and room
// admission, keeps the roster chain in step with the rooms store (kicks, bans, leaves, lapsed leases, locks),
// tells the admission policy whether a caller's device key is registered, and writes every registration,
// epoch and refused message to the audit log.
//
// It must never take an identity, display name or role from a request body, never serve anything to a caller
// that is not a member of the room (waiting-room callers included), never return a credential whose
// registration it could not audit, and never hold, log or store a base key or an SFrame key: it only relays
// them HPKE-sealed, like the Authority it fronts.
package e2eeapi
