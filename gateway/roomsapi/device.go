package roomsapi

import (
	"net/http"
	"strings"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// deviceLabel is the short description of the client a host sees beside a
// knock ("Firefox on Linux", "API client"): enough to tell two knocks by
// one name apart, never the raw User-Agent (which the client writes, and
// which would fingerprint it to anyone who can see the lobby).
func deviceLabel(r *http.Request, id identity.Identity) string {
	ua := r.Header.Get("User-Agent")
	browser := firstMatch(ua, []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	})
	os := firstMatch(ua, []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	})
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case id.Via == identity.ViaBearer:
		return "API client"
	}
	return "Unknown browser"
}

func firstMatch(ua string, known []struct{ token, name string }) string {
	if len(ua) > 512 {
		ua = ua[:512]
	}
	for _, k := range known {
		if strings.Contains(ua, k.token) {
			return rooms.DisplayName(k.name)
		}
	}
	return ""
}
