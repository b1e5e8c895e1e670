package e2eeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
)

// endpointAlarms is POST rooms/{room}/e2ee/alarms: a client reports an alarm it raised (docs/e2ee.md section
// 11), so that the operator sees it (metric e2ee_alarms_total, audit record e2ee.client_alarm). The report is
// the client's word: it changes nothing in the room, it is only counted and recorded.
const endpointAlarms = "alarms"

// Limits of an alarm report.
const (
	maxAlarmBytes  = 2 << 10
	maxAlarmDetail = 512
	// alarmBurst reports per caller and room, refilled one per alarmRefill: a client halts on its first alarm,
	// so an honest one sends a handful at most.
	alarmBurst  = 5
	alarmRefill = time.Minute
	// maxAlarmCallers bounds the rate limiter's memory; when it is full of recent callers, reports are refused.
	maxAlarmCallers = 10_000
)

// ClientAlarm is one report.
type ClientAlarm struct {
	// Kind is the alarm's kind as the client names it (docs/e2ee.md section 7.1), e.g. "clone".
	Kind string `json:"kind"`
	// Epoch is the client's roster head when it raised the alarm.
	Epoch uint64 `json:"epoch"`
	// Member is the credential hash (hex) of the member the alarm names, if any.
	Member string `json:"member,omitempty"`
	// Detail is the client's description, for the audit record.
	Detail string `json:"detail,omitempty"`
}

var (
	alarmKind = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	hexHash   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// errAlarm wraps every reason a report is malformed.
	errAlarm = errors.New("alarm report")
)

// ParseClientAlarm reads a report strictly where the fields are structured: one JSON object with only the known
// members, a kind of at most 32 lower-case letters, digits and underscores, a member that is a hex SHA-256 or
// absent, and a detail of at most 512 bytes. The detail is free text, partly chosen by others (the meeting page
// names the LiveKit identity that sent media in the clear), so it is not refused for what it contains: every
// character Go cannot print (control and format characters, line breaks, every space but U+0020, code points its
// Unicode tables do not know, invalid UTF-8) becomes a space. Refusing it would lose the alarm to whoever chose
// the text.
func ParseClientAlarm(b []byte) (ClientAlarm, error) {
	var a ClientAlarm
	if len(b) > maxAlarmBytes {
		return a, fmt.Errorf("%w: larger than %d bytes", errAlarm, maxAlarmBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return ClientAlarm{}, fmt.Errorf("%w: %w", errAlarm, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ClientAlarm{}, fmt.Errorf("%w: data after the object", errAlarm)
	}
	switch {
	case !alarmKind.MatchString(a.Kind):
		return ClientAlarm{}, fmt.Errorf("%w: kind must be 1-32 of a-z 0-9 _ starting with a letter", errAlarm)
	case a.Member != "" && !hexHash.MatchString(a.Member):
		return ClientAlarm{}, fmt.Errorf("%w: member must be 64 lower-case hex digits", errAlarm)
	case len(a.Detail) > maxAlarmDetail:
		return ClientAlarm{}, fmt.Errorf("%w: detail longer than %d bytes", errAlarm, maxAlarmDetail)
	}
	a.Detail = printable(a.Detail)
	return a, nil
}

// printable returns s with every rune unicode.IsPrint refuses, and every byte that is not UTF-8, replaced by a
// space: never longer than s, and nothing in it can break a log line or reorder the text around it.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var out strings.Builder
	out.Grow(len(s))
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if (r == utf8.RuneError && n == 1) || !unicode.IsPrint(r) {
			out.WriteByte(' ')
		} else {
			out.WriteString(s[:n])
		}
		s = s[n:]
	}
	return out.String()
}

// alarmLimiter is a token bucket per caller and room, in this node's memory.
type alarmLimiter struct {
	mu      sync.Mutex
	buckets map[string]*alarmBucket
}

type alarmBucket struct {
	tokens float64
	at     time.Time
}

// allow takes one token of key's bucket at now.
func (l *alarmLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*alarmBucket{}
	}
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxAlarmCallers {
			// Forget the callers whose buckets are full again: they are as good as new.
			for k, o := range l.buckets {
				if o.tokens+float64(now.Sub(o.at))/float64(alarmRefill) >= alarmBurst {
					delete(l.buckets, k)
				}
			}
			if len(l.buckets) >= maxAlarmCallers {
				return false
			}
		}
		b = &alarmBucket{tokens: alarmBurst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(alarmBurst, b.tokens+float64(now.Sub(b.at))/float64(alarmRefill))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// errRateLimited: the caller reported more alarms than an honest client can raise.
var errRateLimited = errors.New("e2eeapi: too many alarm reports")

// serveAlarm is POST rooms/{room}/e2ee/alarms. The caller must be one who may hold keys in the room (alarms
// are raised at registration too); the body is application/json, which browsers never send cross-site
// without a preflight the gateway does not grant, and cookie callers pass the same-origin check first.
func (h *Handler) serveAlarm(w http.ResponseWriter, r *http.Request, room string, id identity.Identity) error {
	ctx := r.Context()
	if err := h.mayRegister(r, room); err != nil {
		return err
	}
	if !h.alarms.allow(sessionKey(id)+"\n"+room, h.opts.Clock.Now()) {
		return errRateLimited
	}
	body, err := readBody(w, r, maxAlarmBytes)
	if err != nil {
		return err
	}
	a, err := ParseClientAlarm(body)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if err := audit.Write(ctx, h.opts.Audit, audit.E2EEClientAlarm(room, id.Subject, id.Issuer, a.Kind, a.Epoch, a.Member, a.Detail)); err != nil {
		// Not durable: not counted either, and the client may report again.
		return fmt.Errorf("%w: audit: %w", errUnavailable, err)
	}
	if h.opts.OnClientAlarm != nil {
		h.opts.OnClientAlarm(a.Kind)
	}
	h.log.Warn("client reported an e2ee alarm", zap.String("room", room), zap.String("kind", a.Kind), zap.Uint64("epoch", a.Epoch))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isJSON reports whether r's body is declared application/json.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
