package securityconsole

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

type noGate struct{}

type discard struct{}

func (discard) Record(context.Context, string, ...zap.Field) error { return nil }

func (noGate) Access(context.Context, policy.Identity) (policy.ConsoleAccess, error) {
	return policy.ConsoleAccess{}, nil
}

// BenchmarkWhatIfReplay replays 10,000 logged admission decisions (staff
// with and without MFA) under an MFA-for-all candidate, as the what-if
// page does: read from the index's log positions, re-decided with the
// policy replay code, grouped. decisions/s is the figure for the notes.
func BenchmarkWhatIfReplay(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	dir := b.TempDir()
	pdir := filepath.Join(dir, "policies")
	if err := policies.WriteTo(pdir); err != nil {
		b.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.Options{Dir: pdir, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	admission, err := os.ReadFile(filepath.Join(pdir, "admission.rego"))
	if err != nil {
		b.Fatal(err)
	}
	var files []policy.CandidateFile
	for _, name := range []string{"config_check.rego", "console.rego", "create_room.rego", "data.json"} {
		data, err := os.ReadFile(filepath.Join(pdir, name))
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, policy.CandidateFile{Path: name, Data: data})
	}
	files = append(files, policy.CandidateFile{Path: "admission.rego", Data: append(admission, "\ndeny contains \"mfa_required\" if not mfa\n"...)})
	cand, err := eng.Candidate(ctx, files, policy.CandidateOptions{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(dir, "audit.log")
	log, err := audit.Open(ctx, audit.Options{Path: path, SigningKey: key, Sync: audit.SyncAsync})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		amr := []string{"pwd"}
		if i%3 == 0 {
			amr = append(amr, "mfa")
		}
		sub := fmt.Sprintf("staff-%05d", i%2000)
		in := policy.Input{
			Identity: policy.Identity{Iss: "https://idp.example", Sub: sub, Name: "Staff " + sub, Email: sub + "@example.com", EmailVerified: true, Groups: []string{}, AMR: amr, Via: policy.ViaSession},
			Room:     policy.Room{ID: fmt.Sprintf("room-%02d", i%40), Exists: true, Owner: "hanna", Occupancy: 3, HostPresent: true, Tags: []string{}},
			Request:  policy.Request{Time: time.Now().UTC(), IP: "192.0.2.10", Method: "GET", Path: "/room/x"},
		}
		d := eng.Decide(ctx, in)
		outcome := audit.DecisionDeny
		if d.Allow {
			outcome = audit.DecisionAllow
		}
		if err := log.Record(ctx, audit.EventAdmissionDecision, zap.String(audit.FieldRoom, in.Room.ID), zap.String(audit.FieldSubject, sub),
			zap.String(audit.FieldIssuer, in.Identity.Iss), zap.String(audit.FieldDecision, outcome), zap.Strings(audit.FieldReasons, d.Reasons),
			zap.String(audit.FieldClientIP, "192.0.2.10"), zap.String(audit.FieldVia, "page"), zap.String(audit.FieldRole, d.Role),
			zap.String(audit.FieldPolicyRevision, d.Revision), zap.String(audit.FieldDecisionID, d.DecisionID),
			zap.Any(audit.FieldInput, in), zap.Any(audit.FieldResult, d)); err != nil {
			b.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Gate: noGate{}, Audit: discard{}, Files: func() ([]string, error) { return audit.LogFiles(path) }, Policy: eng})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Index(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var res *whatIfResult
	for b.Loop() {
		if res, err = c.replay(ctx, cand, n); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if res.Decisions != n || res.Changes == 0 {
		b.Fatalf("replayed %d decisions, %d changes", res.Decisions, res.Changes)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
