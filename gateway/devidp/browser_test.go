package devidp

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"go.uber.org/zap/zaptest"
	"golang.org/x/oauth2"
)

// TestBrowser_LoginReachesRelyingParty signs in through the login page in a
// real Chromium. It proves the page's CSP lets the form post and the
// redirect to the relying party's (other) origin through, which browsers
// check and Go's HTTP client does not.
func TestBrowser_LoginReachesRelyingParty(t *testing.T) {
	if testing.Short() {
		t.Skip("real-browser test skipped in -short mode")
	}
	browsertest.Path(t)
	codes := make(chan string, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" && r.URL.Query().Get("state") == "browser-state" {
			codes <- r.URL.Query().Get("code")
		}
		_, _ = w.Write([]byte("relying party"))
	}))
	defer rp.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/.dev-idp"
	idp, err := New(Options{
		Issuer:  issuer,
		Clients: []Client{{ID: "gateway", Secret: testSecret, RedirectURIs: []string{rp.URL + "/callback"}}},
		Logger:  zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: idp}}
	srv.Start()
	defer srv.Close()

	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: "gateway", ClientSecret: testSecret, Endpoint: prov.Endpoint(),
		RedirectURL: rp.URL + "/callback", Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()

	tctx, cancel := context.WithTimeout(browsertest.Start(t), 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx,
		chromedp.Navigate(cfg.AuthCodeURL("browser-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("bn"))),
		chromedp.Click(`button[value="bob"]`, chromedp.NodeVisible)); err != nil {
		t.Fatalf("login page: %v", err)
	}
	var code string
	select {
	case code = <-codes:
	case <-tctx.Done():
		t.Fatal("the browser never reached the relying party's callback")
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: "gateway"}).Verify(ctx, rawID)
	if err != nil || idt.Subject != "bob" || idt.Nonce != "bn" {
		t.Fatalf("ID token %+v, err %v; want bob with nonce", idt, err)
	}
}
