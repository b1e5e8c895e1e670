package demoapp

import (
	"net/http"

	"github.com/meetguard/meetguard/gateway/web"
)

// The app's pages come from the gateway's web layer (gateway/web): its
// style sheet and script are inlined and admitted by hash, so an injected
// script or style cannot run, and the script can only talk to this origin.

type roomPage struct {
	Room string
	Me   identity
	// Console links a host to the gateway's host console for the room.
	Console string
}

// render writes the page tmpl ("demo.index", "demo.room" or "message").
func render(w http.ResponseWriter, r *http.Request, status int, tmpl string, title web.Text, data any) {
	v := web.View{Template: tmpl, Title: title, Site: "meetguard demo", Data: data}
	if tmpl == "demo.room" {
		v.Script = "demoapp.js"
	}
	web.Default().Render(w, r, status, v)
}
