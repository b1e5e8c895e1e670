// Package certs provides the public listener's TLS: certificate files that
// reload in place (on SIGHUP and when the files change), certificates
// obtained and renewed by ACME, and the server TLS settings both share.
//
// It must never let a bad new certificate replace a good one: a reload that
// fails keeps the last good certificate serving and reports why.
package certs
