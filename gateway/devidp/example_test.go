package devidp_test

import (
	"log"
	"net/http"

	"github.com/meetguard/meetguard/gateway/devidp"
)

// The provider is mounted, without stripping its prefix, at the issuer's
// path on the gateway's own listener.
func ExampleNew() {
	idp, err := devidp.New(devidp.Options{
		Issuer: "http://127.0.0.1:8080/.dev-idp",
		Clients: []devidp.Client{{
			ID:                     "meetguard",
			Secret:                 "dev-only-secret",
			RedirectURIs:           []string{"http://127.0.0.1:8080/.meetguard/callback"},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:8080/"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.dev-idp/", idp)
	// Scripts then get tokens with:
	//   curl -d user=alice@example.com http://127.0.0.1:8080/.dev-idp/dev/token
	_ = mux
}
