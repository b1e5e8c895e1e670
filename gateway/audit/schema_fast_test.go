package audit

import (
	"math/rand/v2"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestFieldsMatch_AgreesWithFullCheck: the allocation-free fast path of
// CheckFields accepts exactly the records the full check accepts. Random
// key lists per event mix required, optional, undocumented and repeated
// keys, with skipped fields in between.
func TestFieldsMatch_AgreesWithFullCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	accepted := 0
	for _, spec := range schema {
		pool := append(append(append([]string{}, spec.Required...), spec.Optional...), "bogus", FieldRoom, FieldSig)
		for range 400 {
			var fields []zap.Field
			var keys []string
			// Half the cases start from the exact required set, so that
			// many are well-formed.
			if rng.IntN(2) == 0 {
				for _, k := range spec.Required {
					fields = append(fields, zap.String(k, "v"))
					keys = append(keys, k)
				}
			}
			for range rng.IntN(4) {
				switch rng.IntN(5) {
				case 0:
					fields = append(fields, zap.Skip())
				case 1: // drop one
					if len(fields) > 0 {
						j := rng.IntN(len(fields))
						fields = append(fields[:j:j], fields[j+1:]...)
					}
				default:
					k := pool[rng.IntN(len(pool))]
					fields = append(fields, zap.String(k, "v"))
				}
			}
			keys = keys[:0]
			for _, f := range fields {
				if f.Type != zapcore.SkipType {
					keys = append(keys, f.Key)
				}
			}
			fast := fieldsMatch(spec.Event, fields)
			full := CheckEvent(spec.Event, keys) == nil
			if fast != full {
				t.Fatalf("%s %v: fast path says %v, full check %v", spec.Event, keys, fast, full)
			}
			if full {
				accepted++
			}
		}
	}
	if accepted < len(schema)*50 {
		t.Fatalf("only %d well-formed cases: the generator does not reach the accepting path", accepted)
	}
	if fieldsMatch("made.up", nil) {
		t.Fatal("an undocumented event passed the fast path")
	}
	if fieldsMatch(EventLogout, []zap.Field{zap.Inline(rawObject{FieldSubject: "a", FieldIssuer: "i", FieldClientIP: "ip"})}) {
		t.Fatal("inline fields must take the full check")
	}
}
