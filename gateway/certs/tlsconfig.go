package certs

import (
	"crypto/tls"

	"golang.org/x/crypto/acme"
)

// ServerConfig returns the public listener's TLS settings around a
// certificate source. The defaults are deliberate and documented in
// docs/operations.md:
//   - TLS 1.2 at least; TLS 1.3 is negotiated whenever the client offers it.
//   - CurvePreferences is left nil so Go's default list applies, which puts
//     the hybrid post-quantum X25519MLKEM768 first (recorded traffic stays
//     confidential even against a future quantum adversary).
//   - ALPN offers h2 then http/1.1: HTTP/2 for pages and API calls. Go's
//     server does not advertise extended CONNECT, so browsers open
//     WebSockets over HTTP/1.1, which the gateway's upgrade path needs.
//   - withACME adds the acme-tls/1 protocol so the listener answers
//     TLS-ALPN-01 challenges itself.
func ServerConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), withACME bool) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if withACME {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		NextProtos:     protos,
	}
}
