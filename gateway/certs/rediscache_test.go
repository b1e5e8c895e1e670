package certs

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/acme/autocert"

	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
)

func TestRedisCache_GetPutDelete(t *testing.T) {
	ctx := context.Background()
	c := NewRedisCache(redistest.Start(t).Client(t), "meetguard:acme:")
	if _, err := c.Get(ctx, "meet.example.test"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("empty cache: %v, want ErrCacheMiss", err)
	}
	if err := c.Put(ctx, "meet.example.test", []byte("pem")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Get(ctx, "meet.example.test"); err != nil || string(b) != "pem" {
		t.Fatalf("get: %q %v", b, err)
	}
	if err := c.Delete(ctx, "meet.example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "meet.example.test"); !errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("after delete: %v, want ErrCacheMiss", err)
	}
}

func TestACME_ReplicasShareCertificatesThroughRedis(t *testing.T) {
	lnA, portA := listen(t)
	lnB, _ := listen(t)
	// The CA validates only replica A: replica B can serve a certificate
	// only by finding A's in the shared cache.
	p := startPebble(t, pebbleOptions{TLSPort: portA, HTTPPort: freePort(t), ValiditySeconds: 7776000})
	rc := redistest.Start(t).Client(t)
	replica := func() *ACME {
		a, err := NewACME(context.Background(), ACMEOptions{
			DirectoryURL: p.DirectoryURL, Hosts: []string{acmeHost},
			Cache: NewRedisCache(rc, "meetguard:acme:"), HTTPClient: p.Client,
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	serveTLS(t, lnA, replica().GetCertificate, true)
	serveTLS(t, lnB, replica().GetCertificate, true)
	serial := func(addr string) string {
		resp, err := client(p, addr).Get("https://" + acmeHost + "/")
		if err != nil {
			t.Fatalf("HTTPS via %s: %v", addr, err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
	}
	a := serial(lnA.Addr().String())
	if b := serial(lnB.Addr().String()); b != a {
		t.Fatalf("replica B serves %s, replica A %s: not shared", b, a)
	}
}
