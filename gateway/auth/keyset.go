package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// errUnknownKey means the token's kid is not in the provider's key set, even
// after the fetch the rate limit allowed.
var errUnknownKey = errors.New("token signed by an unknown key")

// errBadSignature means a key the token names (or, without kid, every key)
// does not verify its signature: a forgery or a corrupted token.
var errBadSignature = errors.New("token signature does not verify")

// keySet verifies JWS signatures against the provider's JWKS. Unlike
// go-oidc's RemoteKeySet it rate-limits refetches caused by unknown kids:
// otherwise every request with a made-up kid would make the gateway call the
// IdP.
type keySet struct {
	url         string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration
	clock       func() time.Time
	// onFailure, if set, is told of each failed refetch.
	onFailure func()

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	lastFetch time.Time
	fetches   int // for tests and metrics
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jwt must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	known := false
	for attempt := 0; attempt < 2; attempt++ {
		for _, key := range k.candidates(kid) {
			known = true
			if payload, err := jws.Verify(key); err == nil {
				return payload, nil
			}
		}
		if attempt == 0 && !k.refetch(ctx) {
			break
		}
	}
	if known {
		return nil, errBadSignature
	}
	return nil, errUnknownKey
}

func (k *keySet) candidates(kid string) []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if key.Use == "enc" {
			continue
		}
		if kid == "" || key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// refetch loads the key set unless one was loaded within minInterval. It
// reports whether new keys were loaded. The lock is held across the fetch
// so a burst of unknown kids makes one request, not one each.
func (k *keySet) refetch(ctx context.Context) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock()
	if !k.lastFetch.IsZero() && now.Sub(k.lastFetch) < k.minInterval {
		return false
	}
	k.lastFetch = now
	k.fetches++
	keys, err := fetchJWKS(ctx, k.client, k.url)
	if err != nil {
		if k.onFailure != nil {
			k.onFailure()
		}
		return false
	}
	k.keys = keys
	return true
}

func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	return set.Keys, nil
}
