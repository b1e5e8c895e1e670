package audit

import (
	"encoding/json"
	"strings"
)

// Person is how a report names a subject: the display name and email the
// identity provider gave for it.
type Person struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// notePerson learns a subject's name and email from an admission
// decision's input or a login.
func (r *Report) notePerson(e *Entry) {
	if r.People == nil {
		r.People = map[string]Person{}
	}
	switch e.Event {
	case EventAdmissionDecision:
		raw, ok := e.Get(FieldInput)
		if !ok {
			return
		}
		var in struct {
			Identity struct {
				Sub   string `json:"sub"`
				Name  string `json:"name"`
				Email string `json:"email"`
			} `json:"identity"`
		}
		if json.Unmarshal(raw, &in) != nil || in.Identity.Name == "" && in.Identity.Email == "" {
			return
		}
		sub := e.Str(FieldSubject)
		p := r.People[sub]
		if in.Identity.Name != "" {
			p.Name = in.Identity.Name
		}
		if in.Identity.Email != "" {
			p.Email = in.Identity.Email
		}
		r.People[sub] = p
	case EventLoginSuccess:
		if email := e.Str(FieldEmail); email != "" {
			sub := e.Str(FieldSubject)
			p := r.People[sub]
			p.Email = email
			r.People[sub] = p
		}
	}
}

// Named is subject with its display name and email beside it:
// "Alice Example <alice@example.com> (u-123)"; the subject alone when the
// log names nobody for it.
func (r *Report) Named(subject string) string {
	p, ok := r.People[subject]
	if !ok || p.Name == "" && p.Email == "" || subject == "" {
		return subject
	}
	var b strings.Builder
	b.WriteString(p.Name)
	if p.Email != "" && p.Email != subject {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("<" + p.Email + ">")
	}
	if b.Len() == 0 {
		return subject
	}
	b.WriteString(" (" + subject + ")")
	return b.String()
}
