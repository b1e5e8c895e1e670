// Package reqpath turns a request's raw path into the one canonical path that
// the gateway both decides on and forwards.
//
// Path-confusion attacks work when the proxy and the upstream read one path
// two ways (/room/a/..%2f..%2fadmin is "inside room a" to one and "/admin" to
// the other). So this package never guesses: anything that two parsers could
// read differently (encoded slashes or backslashes, dot-segments, ';' path
// parameters, control bytes, encoded percent signs) is refused, and the only
// normalisation done is collapsing repeated slashes.
package reqpath

import (
	"errors"
	"strings"
)

// ErrRejected is wrapped by every refusal; the message says why.
var ErrRejected = errors.New("request path rejected")

type rejection string

func (r rejection) Error() string        { return string(ErrRejected.Error() + ": " + string(r)) }
func (r rejection) Is(target error) bool { return target == ErrRejected }

// MaxLen bounds a path; longer ones are refused rather than truncated.
const MaxLen = 4096

// Canonical validates an escaped request path (URL.EscapedPath or the
// request-target) and returns its canonical escaped form.
func Canonical(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if len(escaped) > MaxLen {
		return "", rejection("too long")
	}
	if escaped[0] != '/' {
		return "", rejection("must start with /")
	}
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", rejection("control byte")
		case c >= 0x80:
			return "", rejection("raw non-ASCII byte")
		case c == '\\':
			return "", rejection("backslash")
		case c == ';':
			return "", rejection("path parameter (;)")
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", rejection("malformed percent-encoding")
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			switch {
			case d == '/' || d == '\\':
				return "", rejection("encoded slash")
			case d == '%':
				return "", rejection("encoded percent sign")
			case d == '.':
				return "", rejection("encoded dot")
			case d == ';':
				return "", rejection("encoded path parameter")
			case d < 0x20 || d == 0x7f:
				return "", rejection("encoded control byte")
			}
			b.WriteString(escaped[i : i+3])
			i += 2
		case c == '/':
			if b.Len() > 0 && strings.HasSuffix(b.String(), "/") {
				continue // collapse //
			}
			b.WriteByte('/')
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	for seg := range strings.SplitSeq(out, "/") {
		if seg == "." || seg == ".." {
			return "", rejection("dot-segment")
		}
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
