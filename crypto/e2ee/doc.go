// Package e2ee is meetguard's end-to-end key exchange: gateway-signed credentials that bind an identity to device
// keys, a gateway-signed hash chain of roster epochs, sender keys sealed to every member with HPKE (X-Wing by
// default), SFrame keys derived from them, and a security code over the chain head.
//
// It has two sides. The Authority runs in the gateway: it issues nonces and credentials, signs roster epochs and
// relays sealed keys, and it must never hold, derive or log a base key or an SFrame key. The Client runs in a
// participant (a bot, a recorder, a test, the `meetguard e2ee join` command): it verifies every credential,
// every roster epoch and every bundle, and refuses — halts with an alarm — whatever an honest gateway would never
// send. Neither side speaks HTTP: the gateway maps the Authority's methods to endpoints, and a Transport carries
// the client's calls (package e2eehttp holds the HTTP binding both sides share). The Authority keeps its state in
// an e2eestore.Store; this package never talks to a database itself. docs/e2ee.md is the specification.
package e2ee
