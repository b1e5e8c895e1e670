package web

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/meetguard/meetguard/policies"
)

// TestCatalog_CoversEveryShippedPolicyMessage: each message of the shipped
// policy's data.json has a policy.<reason> key whose English is the very
// same text, so a guest sees it in their language; and texts English
// shares between keys translate alike (a page looking one up by its
// English must not depend on which key it finds).
func TestCatalog_CoversEveryShippedPolicyMessage(t *testing.T) {
	b, err := fs.ReadFile(policies.FS(), "data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Meetguard struct {
			Config struct {
				Messages map[string]string `json:"messages"`
			} `json:"config"`
		} `json:"meetguard"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	c := Default().Catalog()
	en := c.Keys("en")
	msgs := data.Meetguard.Config.Messages
	if len(msgs) == 0 {
		t.Fatal("data.json has no messages")
	}
	for code, text := range msgs {
		if got := en[PolicyKeyPrefix+code]; got != text {
			t.Errorf("%s%s = %q in en.json, want data.json's %q", PolicyKeyPrefix, code, got, text)
		}
	}
	for _, lang := range c.Languages() {
		seen := map[string]string{}
		for k, text := range en {
			tr := c.In(lang).T(k)
			if prev, ok := seen[text]; ok && prev != tr {
				t.Errorf("%s: %q translates both as %q and %q", lang, text, prev, tr)
			}
			seen[text] = tr
		}
	}
}

// TestPolicyMessage_TranslatedOnlyWhenItIsTheShippedText: a guest waiting
// for a host reads the shipped message in Vietnamese; a message a security
// team wrote in data.json is shown as written (never swapped for ours);
// a reason the catalog does not know shows the message; nothing ever
// shows a code.
func TestPolicyMessage_TranslatedOnlyWhenItIsTheShippedText(t *testing.T) {
	vi := Default().Catalog().In("vi")
	cases := []struct {
		reason, message, want string
	}{
		{"waiting_for_host", "Please wait, the meeting starts when a host joins.", "Vui lòng chờ, cuộc họp bắt đầu khi người chủ trì vào."},
		{"guest_lobby", "", "Vui lòng chờ, người chủ trì sẽ sớm cho bạn vào."},
		{"guest_lobby", "Xin chờ chị Lan mở cửa.", "Xin chờ chị Lan mở cửa."},
		{"guest_lobby", "Wait for Lan.", "Wait for Lan."},
		{"team_reason", "Ask the front desk.", "Ask the front desk."},
		{"team_reason", "Please wait, a host will let you in soon.", "Vui lòng chờ, người chủ trì sẽ sớm cho bạn vào."},
		{"team_reason", "", ""},
	}
	for _, c := range cases {
		if got := vi.Text(PolicyMessage(c.reason, c.message)); got != c.want {
			t.Errorf("PolicyMessage(%q, %q) in vi = %q, want %q", c.reason, c.message, got, c.want)
		}
	}
}
