package devidp

import (
	"net/http"
	"net/url"

	"github.com/meetguard/meetguard/gateway/web"
)

// The pages come from the gateway's web layer (gateway/web): one inlined
// style sheet admitted by its hash and no script at all.

// pageCSSHash is the CSP source of the inlined style sheet.
var pageCSSHash = web.Default().StyleHash()

type loginPage struct {
	Client  string
	Action  string
	Request string
	Users   []User
}

// formAction allows forms to post only to us and (because browsers apply
// form-action to the redirect after a POST) to the relying party's origin.
func formAction(formTarget string) []string {
	if formTarget == "" {
		return nil
	}
	out := []string{"'self'"}
	if u, err := url.Parse(formTarget); err == nil && u.Host != "" {
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out
}

func (p *Provider) renderLogin(w http.ResponseWriter, r *http.Request, id string, req *authRequest) {
	web.Default().Render(w, r, http.StatusOK, web.View{
		Template: "devidp.login", Title: web.T("devidp.title"), Site: "meetguard dev IdP",
		FormAction: formAction(req.redirectURI),
		Data: loginPage{
			Client:  p.clients[req.clientID].Name,
			Action:  p.prefix + "/login",
			Request: id,
			Users:   p.users,
		},
	})
}

// message shows a plain page; it is how errors are reported when redirecting
// to the relying party would be unsafe (unknown client or redirect_uri).
// The development provider speaks English: its texts are protocol errors.
func (p *Provider) message(w http.ResponseWriter, status int, title, text string) {
	web.Default().Render(w, nil, status, web.View{
		Template: "message", Title: web.Literal(title), Site: "meetguard dev IdP",
		Data: web.Message{Text: web.Literal(text)},
	})
}
