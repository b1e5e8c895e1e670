package securityconsole

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// roomView is the rooms page's form.
type roomView struct {
	Room, Since, Until, TZ string
	Markdown, JSON         string // export links
}

// serveRoom is the story of one meeting, as `meetguard audit report`
// tells it, with each person's display name and email; ?format=markdown
// or json downloads it.
func (c *Console) serveRoom(q *call) {
	vals := q.r.URL.Query()
	room := vals.Get("room")
	v := c.base(q, "rooms")
	rv := &roomView{Room: room, Since: vals.Get("since"), Until: vals.Get("until"), TZ: vals.Get("tz")}
	v.Room = rv
	if room == "" {
		c.render(q, http.StatusOK, web.T("security.rooms_title"), v)
		return
	}
	if rooms.ValidateRoomID(room) != nil {
		c.badRequest(q, "rooms", errRoom)
		return
	}
	_, dq, err := parseFilter(vals, c.o.Now())
	if err != nil {
		c.badRequest(q, "rooms", err)
		return
	}
	files, err := c.o.Files()
	if err != nil {
		c.unavailable(q, err)
		return
	}
	rep, err := audit.BuildReport(q.r.Context(), files, audit.ReportOptions{Room: room, Since: dq.Since, Until: dq.Until})
	if err != nil {
		c.unavailable(q, err)
		return
	}
	rep.Integrity = "see the Integrity check of the audit log (meetguard audit verify)"
	switch q.r.URL.Query().Get("format") {
	case "markdown":
		var b bytes.Buffer
		if err := rep.WriteMarkdown(&b); err != nil {
			c.unavailable(q, err)
			return
		}
		download(q.w, "text/markdown; charset=utf-8", "meeting-"+room+".md", b.Bytes())
		return
	case "json":
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			c.unavailable(q, err)
			return
		}
		download(q.w, "application/json", "meeting-"+room+".json", append(b, '\n'))
		return
	}
	exp := vals
	exp.Del("format")
	exp.Set("format", "markdown")
	rv.Markdown = Prefix + "rooms?" + exp.Encode()
	exp.Set("format", "json")
	rv.JSON = Prefix + "rooms?" + exp.Encode()
	v.Report = rep
	c.render(q, http.StatusOK, web.T("security.room_title", room), v)
}

type roomError struct{}

func (roomError) Error() string { return "room: 1-64 of A-Z a-z 0-9 . _ -, not starting with a dot" }

var errRoom = roomError{}

// download writes an export as an attachment. The room id is already
// restricted to characters safe in a file name.
func download(w http.ResponseWriter, contentType, name string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(name, `"`, "")+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", web.CSP{}.String())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
