package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigBytes bounds a config file; a larger one is a mistake, not a config.
const maxConfigBytes = 1 << 20

// FieldError is one problem with one field.
type FieldError struct {
	Path string // e.g. "oidc.issuer" or "upstreams[0].url"
	Line int    // 0 when the field is absent from the file
	Msg  string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Errors is every problem found in one config, in file order.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// ErrInvalid is wrapped by every error that means "this config is wrong", as
// opposed to "this config could not be read".
var ErrInvalid = errors.New("invalid config")

// Is lets callers test errors.Is(err, ErrInvalid).
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// LoadFile reads, expands, decodes, fills defaults and validates a config.
// Environment lookups go through getenv so tests need no process state.
func LoadFile(path string, getenv func(string) (string, bool)) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("read config: %s is larger than %d bytes", path, maxConfigBytes)
	}
	return Parse(data, getenv)
}

// Parse is LoadFile for bytes already in memory.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{{Path: "(file)", Line: yamlErrLine(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var cfg Config
	l := &loader{lines: map[string]int{}, getenv: getenv}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		// Every problem at once: an unset ${VAR}, an unknown field or a
		// value of the wrong type does not stop the checks of the rest.
		l.walk(root, reflect.TypeOf(cfg), "")
		if err := root.Decode(&cfg); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return nil, append(l.errs, FieldError{Path: "(file)", Msg: err.Error()}).sortedCopy()
			}
			for _, m := range te.Errors {
				line := yamlErrLine(errors.New(m))
				l.errs = append(l.errs, FieldError{Path: l.pathAt(line), Line: line, Msg: trimLine(m)})
			}
		}
	}
	l.readSecretFiles(&cfg)
	cfg.applyDefaults()
	l.validate(&cfg)
	l.checkFiles(&cfg)
	if len(l.errs) > 0 {
		return nil, l.sorted()
	}
	return &cfg, nil
}

type loader struct {
	lines  map[string]int
	getenv func(string) (string, bool)
	errs   Errors
}

// add records a problem, unless the field (or its *_file twin) already
// has one: an unset ${VAR} or an unreadable secret file should be reported
// once, not again as "is required".
func (l *loader) add(path, format string, args ...any) {
	for _, e := range l.errs {
		if e.Path == path || e.Path == path+"_file" || e.Path+"_file" == path {
			return
		}
	}
	l.errs = append(l.errs, FieldError{Path: path, Line: l.lines[path], Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) sorted() Errors { return l.errs.sortedCopy() }

// sortedCopy orders problems by line; those without a line (absent
// fields) come last, in the order found.
func (es Errors) sortedCopy() Errors {
	out := append(Errors(nil), es...)
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return out
}

// pathAt finds the field declared on a line, for decoder errors that only
// carry a line number.
func (l *loader) pathAt(line int) string {
	best := "(file)"
	for p, ln := range l.lines {
		if ln == line && (best == "(file)" || len(p) > len(best)) {
			best = p
		}
	}
	return best
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// walk records the line of every field, rejects keys the struct does not
// have, and expands ${VAR} inside scalars. Expanding per scalar, after
// parsing, means an environment value can never inject YAML structure.
func (l *loader) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.AliasNode:
		l.errs = append(l.errs, FieldError{Path: orFile(path), Line: n.Line, Msg: "YAML aliases are not supported"})
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := ref[2 : len(ref)-1]
			v, ok := l.getenv(name)
			if !ok {
				l.errs = append(l.errs, FieldError{Path: orFile(path), Line: n.Line, Msg: fmt.Sprintf("environment variable %s is not set", name)})
			}
			return v
		})
		if n.Tag == "!!str" || n.Style != 0 {
			return
		}
		// An unquoted scalar was typed before expansion; let the decoder
		// re-resolve it (a port from ${PORT} should become an int).
		n.Tag = ""
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			if t.Kind() == reflect.Map {
				for i := 0; i+1 < len(n.Content); i += 2 {
					l.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
				}
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			l.lines[p] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				l.errs = append(l.errs, FieldError{Path: p, Line: k.Line, Msg: "unknown field"})
				continue
			}
			l.walk(v, f.Type, p)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			l.lines[p] = c.Line
			l.walk(c, t.Elem(), p)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orFile(path string) string {
	if path == "" {
		return "(file)"
	}
	return path
}

var lineRef = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	m := lineRef.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func trimLine(msg string) string {
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "line ") {
		return msg[i+2:]
	}
	return msg
}

// readSecretFiles resolves the *_file variants. Setting both the value and
// the file is an error: which one wins would be a guess.
func (l *loader) readSecretFiles(c *Config) {
	pairs := []struct {
		path       string
		value, ref *string
	}{
		{"oidc.client_secret", &c.OIDC.ClientSecret, &c.OIDC.ClientSecretFile},
		{"session.secret", &c.Session.Secret, &c.Session.SecretFile},
		{"store.redis.password", &c.Store.Redis.Password, &c.Store.Redis.PasswordFile},
		{"store.redis.sentinel.password", &c.Store.Redis.Sentinel.Password, &c.Store.Redis.Sentinel.PasswordFile},
		{"rooms.ticket_key", &c.Rooms.TicketKey, &c.Rooms.TicketKeyFile},
	}
	for _, p := range pairs {
		if *p.ref == "" {
			continue
		}
		filePath := p.path + "_file"
		if *p.value != "" {
			l.add(filePath, "set either %s or %s, not both", lastKey(p.path), lastKey(filePath))
			continue
		}
		b, err := os.ReadFile(*p.ref)
		if err != nil {
			l.add(filePath, "cannot read secret file %s: %v", *p.ref, reason(err))
			continue
		}
		*p.value = strings.TrimRight(string(b), "\r\n")
		if *p.value == "" {
			l.add(filePath, "secret file %s is empty", *p.ref)
		}
	}
	l.readUpstreamSecretFiles(c)
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
