package jitsi_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzForward: for any path and query, Forward refuses, or passes a
// request outside rooms without a token, or sends the admitted room's page
// or XMPP connection with exactly one token, for that room.
func FuzzForward(f *testing.F) {
	for _, s := range []string{
		"/meet/standup/xmpp-websocket?room=standup",
		"/meet/standup/http-bind?token=a&token=b&room=x",
		"/http-bind?room=standup",
		"/meet/standup",
		"/meet/board/xmpp-websocket",
		"/libs/app.js?x=1",
		"/meet/standup/xmpp-websocket?room=a;token=b",
	} {
		u, _ := url.Parse(s)
		f.Add(u.Path, u.RawQuery, true)
	}
	a := hsAdapter(f, nil)
	alice := person("alice", "standup", "participant")
	f.Fuzz(func(t *testing.T, path, rawQuery string, admitted bool) {
		in := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
		in.URL.Path, in.URL.RawQuery = path, rawQuery
		out := in.Clone(in.Context())
		out.URL = &url.URL{Scheme: "http", Host: "jitsi.internal", Path: path, RawQuery: rawQuery}
		p := &alice
		if !admitted {
			p = nil
		}
		if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, p); err != nil {
			return
		}
		q, qerr := url.ParseQuery(out.URL.RawQuery)
		if !admitted {
			if strings.Contains(out.URL.Path, "/xmpp-websocket") || strings.Contains(out.URL.Path, "/http-bind") {
				t.Fatalf("XMPP endpoint %q forwarded without admission", out.URL.Path)
			}
			if out.URL.RawQuery != rawQuery {
				t.Fatal("query changed outside a room")
			}
			return
		}
		switch out.URL.Path {
		case "/standup":
			if out.URL.RawQuery != rawQuery {
				t.Fatal("page query changed")
			}
		case "/xmpp-websocket", "/http-bind":
			if qerr != nil || len(q["token"]) != 1 || len(q["room"]) != 1 || q.Get("room") != "standup" {
				t.Fatalf("connection query %q", out.URL.RawQuery)
			}
			_, c := verifyStdlib(t, q.Get("token"), []byte(appSecret))
			if c["room"] != "standup" {
				t.Fatalf("token room %v", c["room"])
			}
		default:
			t.Fatalf("forwarded %q from %q", out.URL.Path, path)
		}
	})
}

// BenchmarkMint is the cost of one admission's room token (a fresh
// participant each time, so nothing is reused).
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{"HS256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			a := hsAdapter(b, nil)
			if alg == "RS256" {
				a = rsAdapter(b, nil)
			}
			p := person("alice", "standup", "participant")
			in := httptest.NewRequest(http.MethodGet, "http://gateway.test/meet/standup/xmpp-websocket?room=standup", nil)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				p.ParticipantID = "alice/" + strconv.Itoa(i)
				out := in.Clone(in.Context())
				if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkForwardReused is a BOSH poll of an admission whose token is
// still fresh.
func BenchmarkForwardReused(b *testing.B) {
	a := rsAdapter(b, nil)
	p := person("alice", "standup", "participant")
	in := httptest.NewRequest(http.MethodPost, "http://gateway.test/meet/standup/http-bind", nil)
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, &p); err != nil {
			b.Fatal(err)
		}
	}
}
