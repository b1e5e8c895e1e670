// Package reload puts a changed configuration file in force without a
// restart (SIGHUP): it loads and validates the new file exactly as
// `meetguard config validate` does, works out what changed, applies what
// can change under live connections (the request path's settings, the
// upstream list, limits, the policy bundle), and says in one log line and
// one audit record what changed and what needs a restart.
//
// A file that does not validate changes nothing: the old configuration
// keeps serving, and the log line and the config.reload_rejected record
// carry the same problems `config validate` prints.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
)

// Gateway takes the request path's new settings (gateway.Gateway.Reload).
type Gateway interface {
	Reload(cfg *config.Config) error
}

// Policy reloads the policy bundle from where it was loaded
// (policy.Engine.Reload); the engine writes its own audit record.
type Policy interface {
	Reload(ctx context.Context) error
}

// Options configures a Reloader.
type Options struct {
	// Path is the configuration file; Lookup resolves its ${VAR}s
	// (os.LookupEnv).
	Path   string
	Lookup func(string) (string, bool)
	// Config is the configuration serving now, as loaded from Path.
	Config  *config.Config
	Gateway Gateway
	// Policy, if set, is reloaded on every Reload.
	Policy Policy
	Audit  audit.Recorder
	Logger *zap.Logger
}

// Reloader applies configuration reloads one at a time.
type Reloader struct {
	o        Options
	mu       sync.Mutex
	cur      *config.Config
	revision string
}

// New returns a Reloader for the configuration serving now.
func New(o Options) (*Reloader, error) {
	if o.Path == "" || o.Config == nil || o.Gateway == nil || o.Audit == nil {
		return nil, errors.New("reload: Path, Config, Gateway and Audit are required")
	}
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	rev, err := fileRevision(o.Path)
	if err != nil {
		return nil, err
	}
	return &Reloader{o: o, cur: o.Config, revision: rev}, nil
}

// Revision names the configuration in force: "cfg-" and the start of the
// SHA-256 of the file it was loaded from.
func (r *Reloader) Revision() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revision
}

// Result is what one successful reload did.
type Result struct {
	Revision, Previous string
	// Changed are the settings now in force with new values; Restart
	// those that changed in the file but take effect only after a
	// restart. Both are dotted paths (upstreams by name), never values.
	Changed, Restart []string
}

// Reload loads the file again and applies it. An error means the file was
// refused and nothing changed; it carries `config validate`'s messages.
// A policy that fails to reload is the engine's to report (its own
// record); the configuration reload still stands.
func (r *Reloader) Reload(ctx context.Context) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rev, err := fileRevision(r.o.Path)
	if err == nil {
		var next *config.Config
		if next, err = config.LoadFile(r.o.Path, r.o.Lookup); err == nil {
			return r.apply(ctx, rev, next)
		}
	}
	problem := problems(r.o.Path, err)
	r.o.Logger.Warn("configuration reload rejected; the old configuration keeps serving",
		zap.String("revision", rev), zap.String("current_revision", r.revision), zap.String("error", problem))
	if aerr := r.o.Audit.Record(ctx, audit.EventConfigReloadRejected, zap.String(audit.FieldRevision, rev),
		zap.String(audit.FieldCurrentRevision, r.revision), zap.String(audit.FieldError, problem)); aerr != nil {
		r.o.Logger.Error("audit config reload rejected", zap.Error(aerr))
	}
	return Result{}, fmt.Errorf("%w: %s", ErrRejected, problem)
}

// ErrRejected wraps every refused reload.
var ErrRejected = errors.New("configuration reload rejected")

func (r *Reloader) apply(ctx context.Context, rev string, next *config.Config) (Result, error) {
	live, changed, restart := plan(r.cur, next)
	if len(changed) > 0 {
		if err := r.o.Gateway.Reload(live); err != nil {
			// Validated configs build; if one does not, say so and keep
			// the old one, as for any refused file.
			problem := err.Error()
			r.o.Logger.Warn("configuration reload rejected; the old configuration keeps serving",
				zap.String("revision", rev), zap.String("error", problem))
			_ = r.o.Audit.Record(ctx, audit.EventConfigReloadRejected, zap.String(audit.FieldRevision, rev),
				zap.String(audit.FieldCurrentRevision, r.revision), zap.String(audit.FieldError, problem))
			return Result{}, fmt.Errorf("%w: %s", ErrRejected, problem)
		}
	}
	res := Result{Revision: rev, Previous: r.revision, Changed: changed, Restart: restart}
	r.cur, r.revision = live, rev
	if r.o.Policy != nil {
		if err := r.o.Policy.Reload(ctx); err != nil {
			r.o.Logger.Warn("policy reload on SIGHUP rejected; last good revision keeps serving", zap.Error(err))
		}
	}
	r.o.Logger.Info("configuration reloaded", zap.String("revision", res.Revision), zap.String("previous_revision", res.Previous),
		zap.Strings("changed", nonNil(res.Changed)), zap.Strings("restart_required", nonNil(res.Restart)))
	fields := []zap.Field{zap.String(audit.FieldRevision, res.Revision), zap.String(audit.FieldPreviousRevision, res.Previous),
		zap.Strings(audit.FieldChanged, nonNil(res.Changed))}
	if len(res.Restart) > 0 {
		fields = append(fields, zap.Strings(audit.FieldRestartRequired, res.Restart))
	}
	if err := r.o.Audit.Record(ctx, audit.EventConfigReload, fields...); err != nil {
		r.o.Logger.Error("audit config reload", zap.Error(err))
	}
	return res, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func fileRevision(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	sum := sha256.Sum256(b)
	return "cfg-" + hex.EncodeToString(sum[:4]), nil
}

// problems is `config validate`'s report of err on one line: each problem
// as FILE:line N: field: problem, separated by "; ".
func problems(path string, err error) string {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return err.Error()
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, path+":"+e.Error())
	}
	return strings.Join(out, "; ")
}

// Settings applied in place. Everything else a reload reports as needing a
// restart: it was built into a long-lived part at start (listener, server
// timeouts, the authenticator, the stores, the audit log, keys, adapters).
var liveLimits = []string{"limits.max_body_bytes", "limits.read_timeout", "limits.upstream_dial_timeout", "limits.upstream_response_timeout"}

// liveUpstreamFields are an upstream's settings the gateway's routing
// rebuilds; kind, rooms.path and adapter settings were built into the
// adapters and the rooms API.
var liveUpstreamFields = []string{"url", "prefix"}

// plan returns the configuration to put in force (cur with every live
// change of next), and which settings changed live and which need a
// restart.
func plan(cur, next *config.Config) (live *config.Config, changed, restart []string) {
	l := *cur
	for _, p := range diff(cur, next) {
		switch {
		case p == "trusted_proxies":
			l.TrustedProxies = next.TrustedProxies
			changed = append(changed, p)
		case p == "allowed_origins":
			l.AllowedOrigins = next.AllowedOrigins
			changed = append(changed, p)
		case slices.Contains(liveLimits, p):
			setField(&l.Limits, &next.Limits, strings.TrimPrefix(p, "limits."))
			changed = append(changed, p)
		case strings.HasPrefix(p, "upstreams"):
			// Upstreams are judged together below.
		default:
			restart = append(restart, p)
		}
	}
	up, upRestart := planUpstreams(cur.Upstreams, next.Upstreams)
	if len(upRestart) > 0 {
		restart = append(restart, upRestart...)
	} else if len(up) > 0 {
		l.Upstreams = next.Upstreams
		changed = append(changed, up...)
	}
	slices.Sort(changed)
	slices.Sort(restart)
	return &l, changed, restart
}

// planUpstreams: the upstream list changes in place when every change is
// one the routing rebuilds (url, prefix, a new or removed generic
// upstream); else the whole list waits for a restart, so that routes and
// adapters never disagree.
func planUpstreams(cur, next []config.Upstream) (changed, restart []string) {
	byName := func(us []config.Upstream) map[string]config.Upstream {
		m := map[string]config.Upstream{}
		for _, u := range us {
			m[u.Name] = u
		}
		return m
	}
	a, b := byName(cur), byName(next)
	var all []string
	for n := range a {
		all = append(all, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			all = append(all, n)
		}
	}
	slices.Sort(all)
	for _, n := range all {
		ou, inOld := a[n]
		nu, inNew := b[n]
		at := "upstreams[" + n + "]"
		switch {
		case !inOld || !inNew:
			u := nu
			if !inNew {
				u = ou
			}
			if u.Kind == "" || u.Kind == "generic" {
				changed = append(changed, at)
			} else {
				restart = append(restart, at)
			}
		default:
			for _, p := range diff(ou, nu) {
				if slices.Contains(liveUpstreamFields, p) {
					changed = append(changed, at+"."+p)
				} else {
					restart = append(restart, at+"."+p)
				}
			}
		}
	}
	if len(changed) == 0 && len(restart) == 0 && !reflect.DeepEqual(cur, next) {
		changed = append(changed, "upstreams") // the same upstreams in another order
	}
	return changed, restart
}

// setField copies the field with yaml tag name from src to dst (structs of
// the same type).
func setField(dst, src any, name string) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range d.NumField() {
		if tag, _, _ := strings.Cut(d.Type().Field(i).Tag.Get("yaml"), ","); tag == name {
			d.Field(i).Set(s.Field(i))
		}
	}
}

// diff lists the dotted yaml paths of the leaves that differ between two
// values of one struct type. Lists and maps are compared whole (upstreams
// are handled by name in planUpstreams). Values never leave this function:
// paths only, so secrets are never logged.
func diff(a, b any) []string {
	var out []string
	walkDiff("", reflect.ValueOf(a), reflect.ValueOf(b), &out)
	return out
}

func walkDiff(prefix string, a, b reflect.Value, out *[]string) {
	if a.Kind() == reflect.Pointer {
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, prefix)
			}
			return
		}
		walkDiff(prefix, a.Elem(), b.Elem(), out)
		return
	}
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, prefix)
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		walkDiff(p, a.Field(i), b.Field(i), out)
	}
}
