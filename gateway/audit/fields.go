package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Redacted replaces the value of a member that must never be written.
const Redacted = "[redacted]"

// secretKeyWords mark a member key as naming a secret wherever they appear in
// it (after lower-casing and dropping '-', '_' and '.'): "id_token",
// "Set-Cookie", "client_secret", "roomPasscode" are all redacted.
var secretKeyWords = [...]string{
	"token", "cookie", "passcode", "password", "passwd", "passphrase", "secret",
	"authorization", "credential", "privatekey", "apikey", "bearer", "csrf",
}

// reservedKeys are written by the log itself.
var reservedKeys = map[string]bool{"seq": true, "ts": true, "event": true, "prev": true, "hash": true, "sig": true}

// ErrReservedKey is returned by Record for a field named like one of the
// members the log writes itself (seq, ts, event, prev, hash, sig).
var ErrReservedKey = errors.New("audit: field key is reserved")

// ErrInvalidEvent is returned by Record for an event name that is not
// lower-case dotted words or that starts with "audit.".
var ErrInvalidEvent = errors.New("audit: invalid event name")

// ErrRecordTooLarge is returned by Record for a record over MaxRecordBytes.
var ErrRecordTooLarge = errors.New("audit: record too large")

func isSecretKey(key string) bool {
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == '-' || c == '_' || c == '.':
		default:
			b.WriteByte(c)
		}
	}
	k := b.String()
	for _, w := range secretKeyWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// credentialPattern finds secrets under innocent keys and inside longer
// text such as error messages: JWTs (three base64url segments, header
// starting "eyJ") and Authorization header values.
var credentialPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`)

// redactCredentials returns v with every credential replaced by Redacted,
// and whether it changed anything. The cheap checks keep the regexp off the
// hot path for ordinary values.
func redactCredentials(v string) (string, bool) {
	if !strings.Contains(v, "eyJ") && !containsFold(v, "bearer") && !containsFold(v, "basic") {
		return v, false
	}
	out := credentialPattern.ReplaceAllStringFunc(v, func(m string) string {
		if strings.HasPrefix(m, "eyJ") {
			return Redacted
		}
		scheme, _, _ := strings.Cut(m, " ")
		return scheme + " " + Redacted
	})
	return out, out != v
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == sub[0] && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// HashIdentity is how a member listed in Options.HashedFields is written:
// "sha256:" and the first 16 bytes of SHA-256 of the value, in hex. It is a
// pseudonym, not anonymity (anyone can hash a guessed address), chosen so an
// auditor can still find one person's records (`query --subject` hashes its
// argument too).
func HashIdentity(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// fieldEncoder turns zap fields into the members of one record, applying the
// redaction and hashing rules. It is safe for concurrent use.
type fieldEncoder struct {
	enc    zapcore.Encoder
	hashed map[string]bool // lower-cased keys
}

func newFieldEncoder(hashedFields []string) *fieldEncoder {
	hashed := make(map[string]bool, len(hashedFields))
	for _, k := range hashedFields {
		hashed[strings.ToLower(k)] = true
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		SkipLineEnding: true,
		EncodeTime: func(t time.Time, pe zapcore.PrimitiveArrayEncoder) {
			pe.AppendString(t.UTC().Format(time.RFC3339Nano))
		},
		EncodeDuration: zapcore.StringDurationEncoder,
	})
	return &fieldEncoder{enc: enc, hashed: hashed}
}

// encode returns the members (without braces) and the keys it redacted.
func (e *fieldEncoder) encode(fields []zap.Field) ([]byte, []string, error) {
	clean, redacted, err := e.sanitize(fields, true)
	if err != nil {
		return nil, nil, err
	}
	if len(clean) == 0 {
		return nil, redacted, nil
	}
	buf, err := e.enc.EncodeEntry(zapcore.Entry{}, clean)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode fields: %w", err)
	}
	defer buf.Free()
	b := buf.Bytes()
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, nil, fmt.Errorf("audit: encode fields: unexpected encoder output")
	}
	if len(b) > MaxRecordBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, len(b))
	}
	return bytes.Clone(b[1 : len(b)-1]), redacted, nil
}

// sanitize returns fields with secrets redacted and identity fields hashed.
// It copies the slice only when something changes.
func (e *fieldEncoder) sanitize(fields []zap.Field, top bool) ([]zap.Field, []string, error) {
	out := fields
	copied := false
	var redacted []string
	set := func(i int, f zap.Field) {
		if !copied {
			out = append([]zap.Field(nil), fields...)
			copied = true
		}
		out[i] = f
	}
	for i, f := range fields {
		if top && reservedKeys[strings.ToLower(f.Key)] {
			return nil, nil, fmt.Errorf("%w: %q", ErrReservedKey, f.Key)
		}
		switch {
		case f.Type == zapcore.SkipType:
		case f.Key != "" && isSecretKey(f.Key):
			set(i, zap.String(f.Key, Redacted))
			redacted = append(redacted, f.Key)
		case f.Key != "" && e.hashed[strings.ToLower(f.Key)]:
			v, err := e.hashedValue(f)
			if err != nil {
				return nil, nil, err
			}
			set(i, zap.String(f.Key, v))
		case f.Type == zapcore.StringType:
			if v, changed := redactCredentials(f.String); changed {
				set(i, zap.String(f.Key, v))
				redacted = append(redacted, f.Key)
			}
		case f.Type == zapcore.ObjectMarshalerType, f.Type == zapcore.ArrayMarshalerType,
			f.Type == zapcore.ReflectType, f.Type == zapcore.InlineMarshalerType,
			f.Type == zapcore.StringerType, f.Type == zapcore.ByteStringType, f.Type == zapcore.ErrorType:
			nf, keys, changed, err := e.sanitizeNested(f)
			if err != nil {
				return nil, nil, err
			}
			if changed {
				set(i, nf)
				redacted = append(redacted, keys...)
			}
		}
	}
	return out, redacted, nil
}

// sanitizeNested renders a structured field to JSON, walks it, and replaces
// the field by the cleaned JSON when anything had to change.
func (e *fieldEncoder) sanitizeNested(f zap.Field) (zap.Field, []string, bool, error) {
	m := zapcore.NewMapObjectEncoder()
	f.AddTo(m)
	var v any = m.Fields
	if f.Type != zapcore.InlineMarshalerType {
		v = m.Fields[f.Key]
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return f, nil, false, fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return f, nil, false, fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	var redacted []string
	tree, changed := e.clean(tree, &redacted)
	if f.Type == zapcore.InlineMarshalerType {
		obj, _ := tree.(map[string]any)
		for k := range obj {
			if reservedKeys[strings.ToLower(k)] {
				return f, nil, false, fmt.Errorf("%w: %q", ErrReservedKey, k)
			}
		}
		if !changed {
			return f, nil, false, nil
		}
		return zap.Inline(rawObject(obj)), redacted, true, nil
	}
	if !changed {
		return f, nil, false, nil
	}
	return zap.Any(f.Key, tree), redacted, true, nil
}

// clean walks a decoded JSON tree.
func (e *fieldEncoder) clean(v any, redacted *[]string) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		changed := false
		for k, child := range t {
			switch {
			case isSecretKey(k):
				t[k] = Redacted
				*redacted = append(*redacted, k)
				changed = true
			case e.hashed[strings.ToLower(k)]:
				if s, ok := child.(string); ok {
					t[k] = HashIdentity(s)
				} else {
					b, _ := json.Marshal(child)
					t[k] = HashIdentity(string(b))
				}
				changed = true
			default:
				nc, c := e.clean(child, redacted)
				if c {
					t[k] = nc
					changed = true
				}
			}
		}
		return t, changed
	case []any:
		changed := false
		for i, child := range t {
			if nc, c := e.clean(child, redacted); c {
				t[i] = nc
				changed = true
			}
		}
		return t, changed
	case string:
		if v, changed := redactCredentials(t); changed {
			*redacted = append(*redacted, "(value)")
			return v, true
		}
	}
	return v, false
}

func (e *fieldEncoder) hashedValue(f zap.Field) (string, error) {
	if f.Type == zapcore.StringType {
		return HashIdentity(f.String), nil
	}
	m := zapcore.NewMapObjectEncoder()
	f.AddTo(m)
	v := m.Fields[f.Key]
	if s, ok := v.(string); ok {
		return HashIdentity(s), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("audit: field %q: %w", f.Key, err)
	}
	return HashIdentity(string(b)), nil
}

// rawObject re-adds the members of a cleaned inline object.
type rawObject map[string]any

func (o rawObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if err := enc.AddReflected(k, o[k]); err != nil {
			return err
		}
	}
	return nil
}
