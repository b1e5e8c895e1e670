package config

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"time"
)

// LiveKit configures an upstream of kind livekit. The gateway is the only
// holder of the API secret: it mints each admitted person's access token
// server-side and calls the room service to remove kicked participants.
type LiveKit struct {
	// APIKey is the LiveKit API key (the token's iss). Required.
	APIKey string `yaml:"api_key"`
	// APISecret or APISecretFile: the key's secret, at least 32 bytes.
	// Required.
	APISecret     string `yaml:"api_secret"`
	APISecretFile string `yaml:"api_secret_file"`
	// APIURL is where the gateway calls LiveKit's room service (Twirp).
	// Default: the upstream's url.
	APIURL string `yaml:"api_url"`
	// TokenTTL is the life of a minted access token. LiveKit checks it only
	// when a connection starts and refreshes tokens itself. Default 5m,
	// between 30s and 1h.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// HTTPTimeout bounds one room-service call. Default 10s.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
}

// Jitsi configures an upstream of kind jitsi (Prosody mod_auth_token or
// JaaS). Exactly one of AppSecret/AppSecretFile (HS256) or PrivateKeyFile
// (RS256) is set.
type Jitsi struct {
	// AppID is the token's iss (Prosody app_id / asap_accepted_issuers).
	// Required.
	AppID string `yaml:"app_id"`
	// Audience is the token's aud (asap_accepted_audiences). Default "jitsi".
	Audience string `yaml:"audience"`
	// Subject is the token's sub: the lowercase XMPP domain or tenant
	// (JaaS: the AppID). Required; "*" is refused.
	Subject string `yaml:"subject"`
	// AppSecret or AppSecretFile signs HS256 tokens; at least 32 bytes.
	AppSecret     string `yaml:"app_secret"`
	AppSecretFile string `yaml:"app_secret_file"`
	// PrivateKeyFile is a PEM RSA private key (PKCS#8 or PKCS#1, at least
	// 2048 bits) that signs RS256 tokens.
	PrivateKeyFile string `yaml:"private_key_file"`
	// KeyID is the kid header of RS256 tokens; Prosody fetches
	// <asap_key_server>/<sha256(kid)>.pem. Required with private_key_file.
	KeyID string `yaml:"key_id"`
	// TokenTTL is the life of a minted token. Default 5m, between 30s and 1h.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// Viewers says what happens to the policy's viewers, whom a Jitsi token
	// cannot hold to receive-only: "refuse" (default) or "member" (admitted
	// as ordinary members, who can publish).
	Viewers string `yaml:"viewers"`
}

// BBB configures an upstream of kind bbb (the BigBlueButton API).
type BBB struct {
	// Secret or SecretFile: the API shared secret (bbb-conf --secret), at
	// least 32 bytes. Required.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Checksum is the API checksum hash: sha256 (default) or sha512. SHA-1
	// is refused.
	Checksum string `yaml:"checksum"`
	// APIURL is the API endpoint. Default: the upstream's url +
	// /bigbluebutton/api.
	APIURL string `yaml:"api_url"`
	// GuestPolicy is sent with create. Default ALWAYS_ACCEPT: the gateway's
	// waiting room already decided, so BigBlueButton must not ask again.
	GuestPolicy string `yaml:"guest_policy"`
	// RedirectHosts are the hosts a join URL returned by the API may point
	// to. Default: the host of the upstream's url.
	RedirectHosts []string `yaml:"redirect_hosts"`
	// Lock are the lock settings sent with create.
	Lock BBBLock `yaml:"lock"`
	// HTTPTimeout bounds one API call. Default 10s.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
}

// BBBLock are BigBlueButton's lock settings for viewers.
type BBBLock struct {
	DisableCam         bool `yaml:"disable_cam"`
	DisableMic         bool `yaml:"disable_mic"`
	DisablePrivateChat bool `yaml:"disable_private_chat"`
	DisablePublicChat  bool `yaml:"disable_public_chat"`
	DisableNotes       bool `yaml:"disable_notes"`
	HideUserList       bool `yaml:"hide_user_list"`
}

const minUpstreamSecret = 32

// completeUpstreamKind fills the defaults of an upstream's kind block and
// validates it. Defaults are filled here rather than in applyDefaults so
// that every kind's rules live in one file.
func (l *loader) completeUpstreamKind(p string, u *Upstream) {
	blocks := []struct {
		kind string
		set  bool
	}{{"livekit", u.LiveKit != nil}, {"jitsi", u.Jitsi != nil}, {"bbb", u.BBB != nil}}
	has := false
	for _, b := range blocks {
		if b.set && b.kind != u.Kind {
			l.add(p+"."+b.kind, "is set but kind is %q (set kind: %s)", u.Kind, b.kind)
		}
		has = has || (b.set && b.kind == u.Kind)
	}
	if u.Kind != "generic" && !has {
		l.add(p+"."+u.Kind, "is required for kind %s", u.Kind)
		return
	}
	switch u.Kind {
	case "livekit":
		l.completeLiveKit(p+".livekit", u.LiveKit)
	case "jitsi":
		l.completeJitsi(p+".jitsi", u.Jitsi)
	case "bbb":
		l.completeBBB(p+".bbb", u.BBB, u.URL)
	}
}

func (l *loader) completeLiveKit(p string, c *LiveKit) {
	setDur(&c.TokenTTL, 5*time.Minute)
	setDur(&c.HTTPTimeout, 10*time.Second)
	if c.APIKey == "" {
		l.add(p+".api_key", "is required")
	}
	l.secretLength(p+".api_secret", c.APISecret, c.APISecretFile)
	if c.APIURL != "" {
		l.httpURL(p+".api_url", c.APIURL)
	}
	l.ttlRange(p+".token_ttl", c.TokenTTL)
}

func (l *loader) completeJitsi(p string, c *Jitsi) {
	if c.Audience == "" {
		c.Audience = "jitsi"
	}
	setDur(&c.TokenTTL, 5*time.Minute)
	if c.AppID == "" {
		l.add(p+".app_id", "is required")
	}
	switch {
	case c.Subject == "":
		l.add(p+".subject", "is required (the lowercase XMPP domain or tenant)")
	case strings.Contains(c.Subject, "*"):
		l.add(p+".subject", "must name one domain or tenant; a wildcard would let a token open rooms elsewhere")
	case c.Subject != strings.ToLower(c.Subject):
		l.add(p+".subject", "must be lowercase: Prosody compares it lowercased")
	}
	hasSecret := c.AppSecret != "" || c.AppSecretFile != ""
	switch {
	case hasSecret && c.PrivateKeyFile != "":
		l.add(p+".private_key_file", "set either app_secret (HS256) or private_key_file (RS256), not both")
	case hasSecret:
		l.secretLength(p+".app_secret", c.AppSecret, c.AppSecretFile)
		if c.KeyID != "" {
			l.add(p+".key_id", "is only used with private_key_file")
		}
	case c.PrivateKeyFile != "":
		if c.KeyID == "" {
			l.add(p+".key_id", "is required with private_key_file (Prosody finds the public key by it)")
		}
		if _, err := os.Stat(c.PrivateKeyFile); err != nil {
			l.add(p+".private_key_file", "cannot read key file: %v", errors.Unwrap(err))
		}
	default:
		l.add(p+".app_secret", "is required (or set app_secret_file, or private_key_file for RS256)")
	}
	l.ttlRange(p+".token_ttl", c.TokenTTL)
	if c.Viewers == "" {
		c.Viewers = "refuse"
	}
	if c.Viewers != "refuse" && c.Viewers != "member" {
		l.add(p+".viewers", "must be refuse or member")
	}
}

func (l *loader) completeBBB(p string, c *BBB, upstreamURL string) {
	if c.Checksum == "" {
		c.Checksum = "sha256"
	}
	if c.GuestPolicy == "" {
		c.GuestPolicy = "ALWAYS_ACCEPT"
	}
	setDur(&c.HTTPTimeout, 10*time.Second)
	if c.APIURL == "" && upstreamURL != "" {
		c.APIURL = strings.TrimSuffix(upstreamURL, "/") + "/bigbluebutton/api"
	}
	if len(c.RedirectHosts) == 0 {
		if u, err := url.Parse(upstreamURL); err == nil && u.Host != "" {
			c.RedirectHosts = []string{u.Host}
		}
	}
	l.secretLength(p+".secret", c.Secret, c.SecretFile)
	switch strings.ToLower(c.Checksum) {
	case "sha256", "sha512":
		c.Checksum = strings.ToLower(c.Checksum)
	case "sha1", "sha-1":
		l.add(p+".checksum", "sha1 is refused (collisions are practical); use sha256 or sha512, which bbb-web accepts since 2.6")
	default:
		l.add(p+".checksum", "must be sha256 or sha512")
	}
	switch c.GuestPolicy {
	case "ALWAYS_ACCEPT", "ASK_MODERATOR", "ALWAYS_DENY", "ALWAYS_ACCEPT_AUTH":
	default:
		l.add(p+".guest_policy", "must be ALWAYS_ACCEPT, ASK_MODERATOR, ALWAYS_DENY or ALWAYS_ACCEPT_AUTH")
	}
	if c.APIURL != "" {
		l.httpURL(p+".api_url", c.APIURL)
	}
	for i, h := range c.RedirectHosts {
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			l.add(idx(p+".redirect_hosts", i), "must be a host or host:port")
		}
	}
}

func (l *loader) secretLength(path, value, file string) {
	switch {
	case value == "" && file == "":
		l.add(path, "is required (or set %s_file)", lastKey(path))
	case value != "" && len(value) < minUpstreamSecret:
		l.add(secretPath(file, path), "must be at least %d bytes", minUpstreamSecret)
	}
}

func (l *loader) httpURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		l.add(path, "must be an absolute http or https URL")
		return
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		l.add(path, "must not carry user info, query or fragment")
	}
}

func (l *loader) ttlRange(path string, d time.Duration) {
	if d < 30*time.Second || d > time.Hour {
		l.add(path, "must be between 30s and 1h")
	}
}

// readUpstreamSecretFiles resolves the *_file variants of the kind blocks'
// secrets, with the same rules as readSecretFiles.
func (l *loader) readUpstreamSecretFiles(c *Config) {
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		p := idx("upstreams", i)
		if u.LiveKit != nil {
			l.readSecretFile(p+".livekit.api_secret", &u.LiveKit.APISecret, u.LiveKit.APISecretFile)
		}
		if u.Jitsi != nil {
			l.readSecretFile(p+".jitsi.app_secret", &u.Jitsi.AppSecret, u.Jitsi.AppSecretFile)
		}
		if u.BBB != nil {
			l.readSecretFile(p+".bbb.secret", &u.BBB.Secret, u.BBB.SecretFile)
		}
	}
}

func (l *loader) readSecretFile(path string, value *string, ref string) {
	if ref == "" {
		return
	}
	filePath := path + "_file"
	if *value != "" {
		l.add(filePath, "set either %s or %s, not both", lastKey(path), lastKey(filePath))
		return
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		l.add(filePath, "cannot read secret file %s: %v", ref, reason(err))
		return
	}
	*value = strings.TrimRight(string(b), "\r\n")
	if *value == "" {
		l.add(filePath, "secret file %s is empty", ref)
	}
}
