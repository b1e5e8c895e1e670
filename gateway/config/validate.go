package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meetguard/meetguard/gateway/audit"
)

// Complete fills defaults and validates a config built in code (meetguard
// dev builds one), with the same rules as a file.
func Complete(c *Config) error {
	c.applyDefaults()
	l := &loader{lines: map[string]int{}}
	l.validate(c)
	if len(l.errs) > 0 {
		return l.errs
	}
	return nil
}

func (c *Config) applyDefaults() {
	c.applyTLSDefaults()
	if c.Node.ID == "" {
		// A host name that is not a valid id is reported by validate,
		// which asks for node.id.
		c.Node.ID, _ = os.Hostname()
	}
	if c.Listen == "" {
		c.Listen = ":8080"
		if c.TLS.CertFile != "" {
			c.Listen = ":8443"
		}
	}
	if len(c.OIDC.Scopes) == 0 {
		c.OIDC.Scopes = []string{"openid", "email", "profile", "offline_access"}
	}
	if len(c.OIDC.Audiences) == 0 && c.OIDC.ClientID != "" {
		c.OIDC.Audiences = []string{c.OIDC.ClientID}
	}
	if c.OIDC.GroupsClaim == "" {
		c.OIDC.GroupsClaim = "groups"
	}
	setDur(&c.OIDC.KeyRefetchInterval, 30*time.Second)
	setDur(&c.OIDC.HTTPTimeout, 10*time.Second)
	setDur(&c.Session.TTL, 12*time.Hour)
	setDur(&c.Session.MaxClaimAge, time.Hour)
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Kind == "" {
			u.Kind = "generic"
		}
		if u.Prefix == "" {
			u.Prefix = "/"
		}
		if u.Rooms.Path == "" {
			u.Rooms.Path = "/room/{room}"
		}
	}
	if c.Policy.Query == "" {
		c.Policy.Query = "data.meetguard.admission.decision"
	}
	setDur(&c.Policy.Timeout, 250*time.Millisecond)
	if c.Store.Kind == "" {
		c.Store.Kind = "memory"
	}
	if c.Audit.KeyFile == "" && c.Audit.Path != "" {
		c.Audit.KeyFile = c.Audit.Path + ".key"
	}
	if c.E2EE.KeyFile == "" && c.Audit.Path != "" {
		c.E2EE.KeyFile = c.Audit.Path + ".e2ee.key"
	}
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = 32 << 10
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = 10 << 20
	}
	setDur(&c.Limits.ReadHeaderTimeout, 10*time.Second)
	setDur(&c.Limits.ReadTimeout, 60*time.Second)
	setDur(&c.Limits.IdleTimeout, 120*time.Second)
	setDur(&c.Limits.UpstreamDialTimeout, 5*time.Second)
	setDur(&c.Limits.UpstreamResponseTimeout, 30*time.Second)
	setDur(&c.Limits.ShutdownTimeout, 30*time.Second)
	setDur(&c.Assertion.TTL, 60*time.Second)
	if c.Rooms.DefaultCapacity == 0 {
		c.Rooms.DefaultCapacity = 300
	}
	if c.Rooms.LobbyByDefault == nil {
		t := true
		c.Rooms.LobbyByDefault = &t
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (l *loader) validate(c *Config) {
	if err := audit.ValidNodeID(c.Node.ID); err != nil {
		l.add("node.id", "%v (the default is the host name; set node.id)", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		l.add("listen", "must be host:port (%v)", err)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			l.add("admin.listen", "must be host:port (%v)", err)
		}
	}
	pub := l.absURL("public_url", c.PublicURL, true)
	if pub != nil && pub.Path != "" && pub.Path != "/" {
		l.add("public_url", "must not have a path: the gateway owns its whole origin")
	}
	for i, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.Contains(o, "*") {
			l.add(idx("allowed_origins", i), "must be an origin such as https://app.example.com (scheme and host, no path or wildcard)")
		}
	}
	for i, cidr := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			l.add(idx("trusted_proxies", i), "must be a CIDR such as 10.0.0.0/8")
		}
	}

	iss := l.absURL("oidc.issuer", c.OIDC.Issuer, true)
	if iss != nil && iss.Scheme != "https" && !isLoopback(iss.Hostname()) {
		l.add("oidc.issuer", "must be https (plain http is allowed only on loopback)")
	}
	if c.OIDC.ClientID == "" {
		l.add("oidc.client_id", "is required")
	}
	if c.OIDC.ClientSecret == "" && c.OIDC.ClientSecretFile == "" {
		l.add("oidc.client_secret", "is required (or set oidc.client_secret_file)")
	}
	if !contains(c.OIDC.Scopes, "openid") {
		l.add("oidc.scopes", "must include openid")
	}
	l.validateClaims(c)

	if c.Session.Secret == "" && c.Session.SecretFile == "" {
		l.add("session.secret", "is required (or set session.secret_file)")
	} else if c.Session.Secret != "" && len(c.Session.Secret) < 32 {
		l.add(secretPath(c.Session.SecretFile, "session.secret"), "must be at least 32 bytes")
	}
	if c.Session.MaxClaimAge < time.Minute || c.Session.MaxClaimAge > c.Session.TTL {
		l.add("session.max_claim_age", "must be between 1m and session.ttl")
	}
	if c.Session.TTL < time.Minute {
		l.add("session.ttl", "must be at least 1m")
	}

	if len(c.Upstreams) == 0 {
		l.add("upstreams", "at least one upstream is required")
	}
	names := map[string]bool{}
	for i, u := range c.Upstreams {
		p := idx("upstreams", i)
		if u.Name == "" {
			l.add(p+".name", "is required")
		} else if names[u.Name] {
			l.add(p+".name", "duplicate upstream name %q", u.Name)
		}
		names[u.Name] = true
		if uu := l.absURL(p+".url", u.URL, true); uu != nil && uu.Scheme != "http" && uu.Scheme != "https" {
			l.add(p+".url", "must be http or https")
		}
		switch u.Kind {
		case "generic", "livekit", "jitsi", "bbb":
			l.completeUpstreamKind(p, &c.Upstreams[i])
		default:
			l.add(p+".kind", "unknown kind %q (want generic, livekit, jitsi or bbb)", u.Kind)
		}
		if !strings.HasPrefix(u.Prefix, "/") {
			l.add(p+".prefix", "must start with /")
		}
		if _, err := ParseRoomPattern(u.Rooms.Path); err != nil {
			l.add(p+".rooms.path", "%v", err)
		}
	}

	if c.Policy.Dir != "" && c.Policy.Bundle != "" {
		l.add("policy.bundle", "set either policy.dir or policy.bundle, not both")
	}
	if c.Policy.Timeout > 5*time.Second {
		l.add("policy.timeout", "must be at most 5s")
	}
	for i, m := range c.Policy.MaskFields {
		if !strings.HasPrefix(m, "/") || len(m) < 2 || strings.Contains(m, "//") || strings.HasSuffix(m, "/") {
			l.add(fmt.Sprintf("policy.mask_fields[%d]", i), "%q must be a JSON pointer such as /identity/email", m)
		}
	}
	for i, g := range c.Audit.PeerFiles {
		if _, err := filepath.Match(g, ""); err != nil || g == "" {
			l.add(fmt.Sprintf("audit.peer_files[%d]", i), "%q is not a glob pattern", g)
		}
	}
	switch c.Store.Kind {
	case "memory":
	case "redis":
		validateRedis(l, c.Store.Redis)
	default:
		l.add("store.kind", "must be memory or redis")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		l.add("tls", "set both cert_file and key_file, or neither")
	}
	l.validateTLS(c)
	if c.Assertion.TTL > 60*time.Second || c.Assertion.TTL < time.Second {
		l.add("assertion.ttl", "must be between 1s and 60s")
	}
	if c.Limits.MaxHeaderBytes < 4<<10 {
		l.add("limits.max_header_bytes", "must be at least 4096")
	}
	if c.Rooms.DefaultCapacity < 1 {
		l.add("rooms.default_capacity", "must be at least 1")
	}
	l.validateRooms(c)
	if c.Log.Format != "json" && c.Log.Format != "console" {
		l.add("log.format", "must be json or console")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.add("log.level", "must be debug, info, warn or error")
	}
}

func (l *loader) absURL(path, raw string, required bool) *url.URL {
	if raw == "" {
		if required {
			l.add(path, "is required")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		l.add(path, "must be an absolute URL")
		return nil
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		l.add(path, "must not carry user info, query or fragment")
		return nil
	}
	return u
}

func secretPath(file, path string) string {
	if file != "" {
		return path + "_file"
	}
	return path
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func idx(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// MaxReplicaAckTimeout is redisstore.MaxReplicaAckTimeout (WAIT blocks
// the Redis connection, whose read timeout is 1 s); config does not import
// the store, and a test in gateway/app keeps the two equal.
const MaxReplicaAckTimeout = 500 * time.Millisecond

// validateRedis checks that store.redis names one Redis: an address, or a
// Sentinel-monitored primary, never both (which would win is a guess).
func validateRedis(l *loader, r Redis) {
	if r.ReplicaAckTimeout < 0 || r.ReplicaAckTimeout > MaxReplicaAckTimeout {
		l.add("store.redis.replica_ack_timeout", "must be between 0 (off) and %v", MaxReplicaAckTimeout)
	}
	sn := r.Sentinel
	switch {
	case sn.Master == "" && len(sn.Addrs) == 0 && sn.Password == "":
		if r.Addr == "" {
			l.add("store.redis.addr", "is required when store.kind is redis (or set store.redis.sentinel)")
		}
		return
	case r.Addr != "":
		l.add("store.redis.addr", "set either addr or sentinel, not both")
	}
	if sn.Master == "" {
		l.add("store.redis.sentinel.master", "is required with store.redis.sentinel")
	}
	if len(sn.Addrs) == 0 {
		l.add("store.redis.sentinel.addrs", "is required with store.redis.sentinel: at least one host:port")
	}
	for i, a := range sn.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			l.add("store.redis.sentinel.addrs["+strconv.Itoa(i)+"]", "must be host:port")
		}
	}
}
