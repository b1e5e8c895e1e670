package e2eehttp

import (
	"github.com/meetguard/meetguard/crypto/e2ee"

	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

func bearer(r *http.Request) error {
	r.Header.Set("Authorization", "Bearer t")
	return nil
}

func newTestTransport(t *testing.T, h http.HandlerFunc, configure func(*Options)) *Transport {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	opts := Options{Gateway: srv.URL, Room: "standup", Authorize: bearer}
	if configure != nil {
		configure(&opts)
	}
	tr, err := NewTransport(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// answerError is how a gateway answers an Authority error (gateway/e2eeapi does exactly this).
func answerError(w http.ResponseWriter, err error) {
	status, code := ErrorStatus(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": err.Error()})
}

// TestTransport_EverySentinelSurvivesTheWire: each refusal of the Authority, answered as ErrorStatus says,
// reaches the client as the same sentinel.
func TestTransport_EverySentinelSurvivesTheWire(t *testing.T) {
	var current atomic.Value
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		answerError(w, fmt.Errorf("wrapped: %w", current.Load().(error)))
	}, nil)
	for _, e := range httpErrors {
		current.Store(e.err)
		_, err := tr.Roster(context.Background(), 3)
		var he *Error
		if !errors.Is(err, e.err) || !errors.As(err, &he) || he.Status != e.status || he.Code != e.code || he.Op != EndpointRoster {
			t.Errorf("%v came back as %v", e.err, err)
		}
	}
	for _, tc := range []struct {
		err    error
		status int
	}{{context.Canceled, 503}, {errors.New("disk on fire"), 500}} {
		if status, _ := ErrorStatus(tc.err); status != tc.status {
			t.Errorf("ErrorStatus(%v) = %d, want %d", tc.err, status, tc.status)
		}
	}
}

// TestTransport_StatusesAloneMapAsDocumented: a gateway (or a proxy before it) that sends no error code
// still leaves the client able to tell "not admitted yet" and "epoch moved on".
func TestTransport_StatusesAloneMapAsDocumented(t *testing.T) {
	var status atomic.Int32
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>nope</html>", int(status.Load()))
	}, nil)
	ctx := context.Background()
	cases := []struct {
		status int
		call   func() error
		want   error
	}{
		{403, func() error { _, err := tr.Roster(ctx, 0); return err }, e2ee.ErrNotMember},
		{404, func() error { _, err := tr.Roster(ctx, 0); return err }, e2ee.ErrNoRoster},
		{409, func() error { _, err := tr.SealedKeys(ctx, 2); return err }, e2ee.ErrStaleEpoch},
		{409, func() error { return tr.PostCommit(ctx, 2, []byte{1}) }, e2ee.ErrConflict},
		{409, func() error { _, err := tr.KeyPackages(ctx, 2); return err }, e2ee.ErrStaleEpoch},
		{429, func() error { return tr.PostKeyPackage(ctx, []byte{1}) }, e2ee.ErrRateLimited},
		{403, func() error { _, err := tr.SealedKeys(ctx, 2); return err }, nil},
		{500, func() error { _, err := tr.Roster(ctx, 0); return err }, nil},
	}
	for i, tc := range cases {
		status.Store(int32(tc.status))
		err := tc.call()
		var he *Error
		if !errors.As(err, &he) || he.Status != tc.status {
			t.Errorf("case %d: %v", i, err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("case %d: HTTP %d is %v, want %v", i, tc.status, err, tc.want)
		}
		if tc.want == nil && errors.Unwrap(err) != nil {
			t.Errorf("case %d: HTTP %d mapped to %v", i, tc.status, errors.Unwrap(err))
		}
	}
}

// TestTransport_GatewayCannotDecideClientStates tries to make a client believe it raised an alarm, was
// removed or halted, through error codes and messages: none of it matches.
func TestTransport_GatewayCannotDecideClientStates(t *testing.T) {
	var code atomic.Value
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, `{"error":%q,"message":"e2ee: alarm\u001b[2J\nremoved"}`, code.Load())
	}, nil)
	for _, c := range []string{"alarm", "removed", "halted", "not_registered", "no_key", "fork", "gap", "undecryptable"} {
		code.Store(c)
		_, err := tr.Roster(context.Background(), 1)
		for _, state := range []error{e2ee.ErrAlarm, e2ee.ErrHalted, e2ee.ErrRemoved, e2ee.ErrNotRegistered, e2ee.ErrNoKey, e2ee.ErrGap, e2ee.ErrUndecryptable} {
			if errors.Is(err, state) {
				t.Errorf("code %q made the client see %v", c, state)
			}
		}
		if strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Errorf("control characters from the gateway reach the error text: %q", err.Error())
		}
	}
}

func TestNewTransport_RefusesUnsafeGateways(t *testing.T) {
	cases := []struct {
		gateway string
		ok      bool
	}{
		{"https://meet.example.com", true},
		{"https://meet.example.com/", true},
		{"http://127.0.0.1:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080", true},
		{"http://meet.example.com", false},
		{"http://10.0.0.1", false},
		{"ftp://meet.example.com", false},
		{"https://user:pw@meet.example.com", false},
		{"https://meet.example.com/app", false},
		{"https://meet.example.com?x=1", false},
		{"meet.example.com", false},
		{"", false},
	}
	for _, tc := range cases {
		_, err := NewTransport(Options{Gateway: tc.gateway, Room: "r", Authorize: bearer})
		if (err == nil) != tc.ok {
			t.Errorf("gateway %q: %v", tc.gateway, err)
		}
	}
	if _, err := NewTransport(Options{Gateway: "https://m.example", Room: "r"}); err == nil {
		t.Error("no Authorize accepted")
	}
}

// TestTransport_RequestsAndLimits checks what the transport sends and that it reads no more than its cap.
func TestTransport_RequestsAndLimits(t *testing.T) {
	var seen atomic.Value
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Content-Type") + " " + r.Header.Get("Authorization"))
		switch {
		case strings.HasSuffix(r.URL.Path, "/keys"):
			_, _ = w.Write(make([]byte, 2048))
		case strings.HasSuffix(r.URL.Path, "/nonce"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/authority"):
			_, _ = w.Write(make([]byte, 31))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}, func(o *Options) { o.MaxResponseBytes = 1024 })
	ctx := context.Background()
	if err := tr.PostCommit(ctx, 5, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if got := seen.Load(); got != "POST /.meetguard/api/v1/rooms/standup/e2ee/commits?epoch=5 application/octet-stream Bearer t" {
		t.Errorf("sent %q", got)
	}
	if _, err := tr.SealedKeys(ctx, 5); err == nil || !strings.Contains(err.Error(), "larger than 1024") {
		t.Errorf("oversized answer: %v", err)
	}
	if _, err := tr.Challenge(ctx); !errors.Is(err, e2ee.ErrMalformed) {
		t.Errorf("empty challenge: %v", err)
	}
	if _, err := tr.AuthorityKey(ctx); !errors.Is(err, e2ee.ErrMalformed) {
		t.Errorf("31-byte authority key: %v", err)
	}
}

// TestTransport_WaitRepeatsLongPollsUntilAChange: 204s (the gateway's wait ended) are repeated; a version
// at or below the one asked about is not a change.
func TestTransport_WaitRepeatsLongPollsUntilAChange(t *testing.T) {
	var polls atomic.Int32
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") != "41" || r.URL.Query().Get("wait") == "" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		switch polls.Add(1) {
		case 1, 2:
			w.WriteHeader(http.StatusNoContent)
		case 3:
			_, _ = w.Write(binary.BigEndian.AppendUint64(nil, 41))
		default:
			_, _ = w.Write(binary.BigEndian.AppendUint64(nil, 42))
		}
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := tr.Wait(ctx, 41)
	if err != nil || v != 42 || polls.Load() != 4 {
		t.Fatalf("Wait = %d, %v after %d polls", v, err, polls.Load())
	}
}

func FuzzParseWaitResponse(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint64(nil, 7))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseWaitResponse(b)
		if err != nil {
			return
		}
		if len(b) != 8 || binary.BigEndian.Uint64(b) != v {
			t.Fatalf("%x parsed as %d", b, v)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":"stale_epoch","message":"e2ee: epoch is no longer current: 3, head is 4"}`))
	f.Add([]byte(`<html>502</html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg := parseErrorBody(b)
		for _, s := range []string{code, msg} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\n\r\x7f") || len(s) > 256+4 {
				t.Fatalf("unclean text %q from %q", s, b)
			}
		}
		for _, state := range []error{e2ee.ErrAlarm, e2ee.ErrHalted, e2ee.ErrRemoved} {
			if errors.Is(classify(EndpointRoster, 409, code), state) {
				t.Fatalf("code %q maps to %v", code, state)
			}
		}
	})
}

// TestTransport_SendsTheGatewaysRenewalOfItsTicket: a ticket set once by Authorize (an app that joined once) is
// replaced by the gateway's renewal on every later request, renewal after renewal; a ticket Authorize changes
// (the app joined again) is sent as it is; and an answer whose header is no ticket is ignored.
func TestTransport_SendsTheGatewaysRenewalOfItsTicket(t *testing.T) {
	var got []string
	var answer atomic.Value
	answer.Store("")
	var held atomic.Value
	held.Store("joined")
	tr := newTestTransport(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(TicketHeader))
		if a := answer.Load().(string); a != "" {
			w.Header().Set(TicketHeader, a)
		}
		w.WriteHeader(http.StatusNoContent)
	}, func(o *Options) {
		o.Authorize = func(r *http.Request) error {
			r.Header.Set(TicketHeader, held.Load().(string))
			return nil
		}
	})
	step := func(renew string) {
		t.Helper()
		answer.Store(renew)
		if _, _, err := tr.do(context.Background(), http.MethodGet, EndpointWait, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	step("renewed1")
	step("renewed2")
	step("not a ticket, ignored")
	step(strings.Repeat("A", maxTicketLen+1))
	step("")
	held.Store("joined-again")
	step("")
	want := []string{"joined", "renewed1", "renewed2", "renewed2", "renewed2", "joined-again"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tickets sent %q, want %q", got, want)
	}
}
