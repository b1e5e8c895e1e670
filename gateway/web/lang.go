package web

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// LangParam is the query parameter that overrides Accept-Language
// (?lang=vi), for a person whose browser asks for a language they do not
// want.
const LangParam = "lang"

// maxAcceptLanguage bounds the header the matcher parses.
const maxAcceptLanguage = 512

// Text is something a page shows: a catalog key with its arguments, or a
// verbatim string that was decided elsewhere (a policy's user message,
// which the policy localises itself).
type Text struct {
	Key     string
	Args    []any
	Literal string
	// Reason is the policy reason code a Literal is the policy's message
	// for (see PolicyMessage).
	Reason string
}

// T is the catalog text key with args.
func T(key string, args ...any) Text { return Text{Key: key, Args: args} }

// Literal is s shown as it is.
func Literal(s string) Text { return Text{Literal: s} }

// PolicyKeyPrefix + a policy reason code is the catalog key of the
// shipped policy's message for that reason (policies/data.json's
// messages), in every language.
const PolicyKeyPrefix = "policy."

// PolicyMessage is the message a policy decision gave with its first
// reason code. A page shows the catalog's policy.<reason> text in its
// language when the message is the shipped English one for that reason
// (or empty); a message a security team wrote themselves in data.json is
// shown exactly as written.
func PolicyMessage(reason, message string) Text { return Text{Literal: message, Reason: reason} }

// Catalog holds every language's messages. English is the fallback: a key
// a language lacks is shown in English, never as the key.
type Catalog struct {
	tags     []language.Tag // English first
	matcher  language.Matcher
	messages map[string]map[string]string // tag → key → text
	// english maps each English text back to its key, so a text decided
	// elsewhere in English (an API message shared with JSON callers, a
	// policy's default message) is still shown in the page's language.
	english map[string]string
}

// LoadCatalog reads messages/*.json from fsys: one flat JSON object of
// key → text per language, named by its BCP 47 tag. messages/en.json is
// required.
func LoadCatalog(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "messages/*.json")
	if err != nil {
		return nil, fmt.Errorf("web: messages: %w", err)
	}
	c := &Catalog{messages: map[string]map[string]string{}}
	for _, name := range names {
		tag, err := language.Parse(strings.TrimSuffix(path.Base(name), ".json"))
		if err != nil {
			return nil, fmt.Errorf("web: %s: not a language tag: %w", name, err)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		c.messages[tag.String()] = m
		c.tags = append(c.tags, tag)
	}
	i := slices.Index(c.tags, language.English)
	if i < 0 {
		return nil, fmt.Errorf("web: messages/en.json missing")
	}
	c.tags[0], c.tags[i] = c.tags[i], c.tags[0]
	c.matcher = language.NewMatcher(c.tags)
	c.english = map[string]string{}
	for k, v := range c.messages["en"] {
		c.english[v] = k
	}
	return c, nil
}

// Languages are the catalog's languages, English first.
func (c *Catalog) Languages() []string {
	out := make([]string, len(c.tags))
	for i, t := range c.tags {
		out[i] = t.String()
	}
	return out
}

// Keys are the English catalog's keys.
func (c *Catalog) Keys(lang string) map[string]string { return c.messages[lang] }

// Match picks the catalog language for an explicit choice (may be empty)
// and an Accept-Language header: the choice when the catalog has it, else
// the best match of the header, else English.
func (c *Catalog) Match(choice, acceptLanguage string) string {
	if choice != "" {
		if t, err := language.Parse(choice); err == nil {
			if _, i, conf := c.matcher.Match(t); conf != language.No {
				return c.tags[i].String()
			}
		}
	}
	if len(acceptLanguage) > maxAcceptLanguage {
		acceptLanguage = acceptLanguage[:maxAcceptLanguage]
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return c.tags[0].String()
	}
	if _, i, conf := c.matcher.Match(tags...); conf != language.No {
		return c.tags[i].String()
	}
	return c.tags[0].String()
}

// For is the translator for r: ?lang= if the catalog has it, else
// Accept-Language, else English.
func (c *Catalog) For(r *http.Request) Translator {
	choice := ""
	if r != nil && r.URL != nil {
		choice = r.URL.Query().Get(LangParam)
	}
	al := ""
	if r != nil {
		al = r.Header.Get("Accept-Language")
	}
	return c.In(c.Match(choice, al))
}

// In is the translator for a catalog language.
func (c *Catalog) In(lang string) Translator {
	if _, ok := c.messages[lang]; !ok {
		lang = c.tags[0].String()
	}
	return Translator{lang: lang, c: c}
}

// Translator speaks one language of a catalog.
type Translator struct {
	lang string
	c    *Catalog
}

// Lang is the language's BCP 47 tag, for <html lang>.
func (t Translator) Lang() string { return t.lang }

// T is key's text in this language (English if it lacks one) with args
// formatted in.
func (t Translator) T(key string, args ...any) string {
	s, ok := t.c.messages[t.lang][key]
	if !ok || s == "" {
		s, ok = t.c.messages["en"][key]
	}
	if !ok {
		// A template or caller names a key no catalog has: a build
		// mistake the package tests catch. Show nothing rather than a code.
		return ""
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Text renders x: its key translated, or its literal (translated too
// when it is exactly an English text of the catalog).
func (t Translator) Text(x Text) string {
	if x.Key == "" && x.Reason != "" {
		key := PolicyKeyPrefix + x.Reason
		if en, ok := t.c.messages["en"][key]; ok && (x.Literal == "" || x.Literal == en) {
			return t.T(key)
		}
	}
	if x.Key == "" {
		if k, ok := t.c.english[x.Literal]; ok {
			return t.T(k)
		}
		return x.Literal
	}
	return t.T(x.Key, x.Args...)
}
