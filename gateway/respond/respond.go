// Package respond writes the gateway's own answers: short JSON errors for
// apps and small HTML pages for people. Messages are decided by the caller
// and never include internal error text.
package respond

import (
	"encoding/json"
	"html/template"
	"net/http"
)

// Error is the JSON body of every error the gateway itself returns.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// DeniedMessage is all a refused caller is told, whatever the reason.
const DeniedMessage = "This meeting is not available."

// Refusal is the JSON body of every refused join, whichever door it came
// through (the rooms API, the proxy, a ticket that does not hold): the
// same status, headers and bytes, so that the door tells a caller nothing
// the reason would not.
type Refusal struct {
	Status  string `json:"status"` // always "denied"
	Message string `json:"message"`
}

// Denied writes the one refusal: 403 {"status":"denied","message":msg},
// msg defaulting to DeniedMessage.
func Denied(w http.ResponseWriter, msg string) {
	if msg == "" {
		msg = DeniedMessage
	}
	JSON(w, http.StatusForbidden, Refusal{Status: "denied", Message: msg})
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// JSONError writes {"error": code, "message": msg}.
func JSONError(w http.ResponseWriter, status int, code, msg string) {
	JSON(w, status, Error{Error: code, Message: msg})
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · meetguard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d2733}
h1{font-size:1.4rem}.box{border:1px solid #d5dbe3;border-radius:8px;padding:1.5rem}a{color:#1a5fb4}</style>
</head><body><div class="box"><h1>{{.Title}}</h1><p>{{.Message}}</p>{{.Extra}}</div></body></html>
`))

// Page writes a small HTML page. extra is trusted HTML from the caller.
func Page(w http.ResponseWriter, status int, title, msg string, extra template.HTML) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = page.Execute(w, struct {
		Title, Message string
		Extra          template.HTML
	}{title, msg, extra})
}
