// Package respond writes the gateway's own answers: short JSON errors for
// apps and small HTML pages for people. Messages are decided by the caller
// and never include internal error text.
package respond

import (
	"encoding/json"
	"net/http"
)

// Error is the JSON body of every error the gateway itself returns.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// DeniedMessage is all a refused caller is told, whatever the reason (its
// translations are the web catalog's "refusal.message").
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
