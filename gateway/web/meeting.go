package web

import "net/http"

// MeetingSuffix follows a room's API path in its meeting page's URL,
// served by the end-to-end key API (gateway/e2eeapi) beside the room's
// key exchange.
const MeetingSuffix = "/meeting"

// MeetingPath is the stable URL of room's end-to-end encrypted meeting
// page.
func MeetingPath(room string) string { return ConsolePrefix + room + MeetingSuffix }

// Meeting is the data of the "meeting" page, the browser side of the
// end-to-end keys for LiveKit rooms (static/meeting.js, built from
// web/src/meeting).
type Meeting struct {
	// Room is the room id.
	Room string
	// AuthorityKey is the e2ee authority's public key (hex), pinned by the
	// page for every credential and roster it verifies.
	AuthorityKey string
	// SignalPath is the room's LiveKit signalling path on this gateway
	// (e.g. /lk/room/standup); the page starts by itself when it is set.
	SignalPath string
	// Subject and Issuer are the signed-in identity the page's credential
	// must name (the client refuses one that names anybody else).
	Subject, Issuer string
	// Who is the signed-in person's name or email, for "Signed in as".
	Who string
	// Worker is LiveKit's E2EE worker source; Render fills it in.
	Worker string
}

// AutoStart reports whether the page joins by itself.
func (m Meeting) AutoStart() bool { return m.SignalPath != "" }

// meetingWorker is the static file with LiveKit's E2EE worker.
const meetingWorker = "e2ee-worker.js"

// RenderMeeting writes the meeting page. Its CSP adds, to what every page
// with a script gets, a worker from a blob: URL only (the worker source
// is data in the page, so no other script can be started as a worker),
// the camera and microphone streams as media, and connect, the media
// server's origins when the page reaches it directly (tests; in a
// deployment LiveKit is signalled through the gateway, which is 'self').
func (p *Pages) RenderMeeting(w http.ResponseWriter, r *http.Request, m Meeting, connect []string) {
	src, ok := p.assets[meetingWorker]
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	m.Worker = src.body
	p.Render(w, r, http.StatusOK, View{
		Template: "meeting", Title: T("meeting.title"), Script: "meeting.js", Data: m,
		Workers: []string{"blob:"}, Media: []string{"mediastream:", "blob:"}, Connect: connect,
	})
}
