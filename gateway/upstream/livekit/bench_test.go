package livekit_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
)

// BenchmarkForward is the adapter's cost per admitted signalling request:
// mint the access token and rewrite the request.
func BenchmarkForward(b *testing.B) {
	a := offlineAdapter(b, nil)
	p := person("alice", "standup", "participant")
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test/lk/room/standup/rtc?access_token=x&protocol=16&sdk=js", nil)
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWebhookVerify is the cost of verifying and parsing one webhook.
func BenchmarkWebhookVerify(b *testing.B) {
	a := offlineAdapter(b, nil)
	auth := signHook(b, jose.HS256, []byte(testSecret), hookClaims(joinedBody))
	h := a.Webhook()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(joinedBody))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkEndToEnd_GatewayToValidate is one client request through the
// real gateway (bearer ID token verified, admission, assertion, token
// minted) to a real livekit-server's /rtc/validate answering success. A
// new room each time, so nothing is reused from an earlier admission.
func BenchmarkEndToEnd_GatewayToValidate(b *testing.B) {
	e := startLKGateway(b, livekittest.Options{}, nil, nil)
	env := e.gw
	bearer := env.Bearer(b, "")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/lk/room/bench-"+strconv.Itoa(i)+"/rtc/validate?access_token=meetguard&protocol=16&sdk=js", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "success" {
			b.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
}

// BenchmarkDirectValidate is the same /rtc/validate straight at LiveKit
// with a pre-minted token, the floor the gateway adds to.
func BenchmarkDirectValidate(b *testing.B) {
	srv := livekittest.Start(b, livekittest.Options{})
	a := newAdapter(b, srv, nil)
	tok := mint(b, a, person("alice", "standup", "participant"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/rtc/validate?access_token=" + tok + "&protocol=16&sdk=js")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.StatusCode)
		}
	}
}
