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

// knockFacts are what a host sees beside a knock besides its device: the
// email domain in its ASCII form (so "kit.edu" spelt with a Kelvin sign
// shows as xn--…, never as a look-alike), and the verdict: staff when the
// policy vouches for the identity (its decision's member), else guest;
// mfa when the identity provider says the sign-in used several factors;
// unverified when it does not vouch for the address.
func knockFacts(id identity.Identity, member bool) (domain string, verdict []string) {
	if at := strings.LastIndexByte(id.Email, '@'); at >= 0 {
		email := identity.ASCIIEmail(id.Email)
		domain = strings.ToLower(email[strings.LastIndexByte(email, '@')+1:])
		// Not a name IDNA accepts: every other byte shows as '?', never
		// as written.
		domain = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
				return r
			}
			return '?'
		}, domain)
		if len(domain) > rooms.MaxEmailDomainLen {
			domain = domain[:rooms.MaxEmailDomainLen]
		}
	}
	if member {
		verdict = append(verdict, rooms.VerdictStaff)
	} else {
		verdict = append(verdict, rooms.VerdictGuest)
	}
	if multiFactor(id.AMR) {
		verdict = append(verdict, rooms.VerdictMFA)
	}
	if domain != "" && !id.EmailVerified {
		verdict = append(verdict, rooms.VerdictUnverified)
	}
	return domain, verdict
}

// multiFactor reads RFC 8176 authentication method references: "mfa"
// itself, or a knowledge factor together with a possession or inherence
// factor. (A policy may also count an acr value as MFA; the lobby list
// shows only what the identity provider's amr says.)
func multiFactor(amr []string) bool {
	var know, other bool
	for _, m := range amr {
		switch m {
		case "mfa":
			return true
		case "pwd", "pin", "kba":
			know = true
		case "otp", "hwk", "swk", "sms", "tel", "sc", "fpt", "face", "iris", "retina", "vbm", "pop":
			other = true
		}
	}
	return know && other
}
