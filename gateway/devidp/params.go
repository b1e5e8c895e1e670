package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

var supportedScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

const (
	maxParam     = 1024 // state, nonce and friends; far above what any RP sends
	maxAudiences = 8
	maxFormBody  = 64 << 10
)

// oauthError is an error response of RFC 6749 §5.2 / §4.1.2.1.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errorf(code, format string, args ...any) *oauthError {
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// single returns the one value of a parameter. RFC 6749 §3.1 forbids
// repeating a parameter; accepting the first or last would let two parties
// that read the same request disagree about it.
func single(v url.Values, name string) (string, *oauthError) {
	vals := v[name]
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", errorf("invalid_request", "parameter %s is repeated", name)
	case len(vals[0]) > maxParam:
		return "", errorf("invalid_request", "parameter %s is too long", name)
	}
	return vals[0], nil
}

// singles reads several single-valued parameters and keeps the first fault,
// so a handler reads all it needs and checks once.
type singles struct {
	v   url.Values
	err *oauthError
}

// get is single(v, name), or "" once a fault has been kept.
func (in *singles) get(name string) string {
	if in.err != nil {
		return ""
	}
	v, e := single(in.v, name)
	in.err = e
	return v
}

// parseScopes keeps the supported scopes of a space-separated list, in order
// and without duplicates; unknown scopes are dropped as RFC 6749 §3.3 allows.
func parseScopes(raw string) []string {
	var out []string
	for _, s := range strings.Fields(raw) {
		if slices.Contains(supportedScopes, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// parseAudiences reads extra audiences from the space-separated "audience"
// parameter, which may also be repeated.
func parseAudiences(v url.Values) ([]string, *oauthError) {
	var out []string
	for _, raw := range v["audience"] {
		for _, a := range strings.Fields(raw) {
			if !printableASCII(a, 256) {
				return nil, errorf("invalid_target", "audience %q is not 1-256 printable ASCII characters", a)
			}
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if len(out) > maxAudiences {
		return nil, errorf("invalid_target", "at most %d audiences", maxAudiences)
	}
	return out, nil
}

// validPKCE reports whether s has the RFC 7636 §4.1 form of a code verifier;
// an S256 challenge is such a string of exactly 43 characters.
func validPKCE(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

func pkceMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// secretEqual compares secrets in constant time, including their length.
func secretEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// withParams returns base with params added to its query, keeping any query
// the registered URI already has.
func withParams(base string, params url.Values) string {
	u, err := url.Parse(base)
	if err != nil { // registered URIs were parsed at New
		return base
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, status, b)
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
