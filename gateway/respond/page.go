package respond

import (
	"net/http"

	"github.com/meetguard/meetguard/gateway/web"
)

// Page writes the gateway's small HTML page (title, a sentence, an
// optional link or button) in r's language, from the web layer's one
// design, with its security headers.
func Page(w http.ResponseWriter, r *http.Request, status int, title web.Text, m web.Message) {
	web.Default().Render(w, r, status, web.View{
		Template: "message", Title: title, Data: m,
		// Sign-out's POST ends at the identity provider's origin, which
		// form-action would refuse on the redirect.
		AnyFormTarget: m.Form != nil,
	})
}
