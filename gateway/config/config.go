// Package config loads and validates the gateway's YAML configuration.
//
// A config is read once into one typed struct, secrets are expanded from the
// environment (${VAR}) or read from *_file keys, and every problem is reported
// at once with the field's path and line, so that an operator fixes a config in
// one pass. Defaults are written beside each field and in
// docs/configuration.md. The package never logs a secret value.
package config

import (
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the address of the gateway's public listener. Default ":8443"
	// with TLS files, ":443" with tls.acme, ":8080" without.
	Listen string `yaml:"listen"`
	// PublicURL is the URL browsers use to reach the gateway. It decides cookie
	// flags (Secure and __Host- when https), redirect URIs and the assertion
	// issuer. Required.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies lists CIDRs whose X-Forwarded-* / Forwarded headers are
	// honoured. Default: none, so those headers are always stripped.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AllowedOrigins are origins (scheme://host[:port]) besides public_url's
	// whose pages may open WebSockets through the gateway and send it
	// state-changing requests with the session cookie. Default: none, only
	// public_url's own origin.
	AllowedOrigins []string `yaml:"allowed_origins"`

	Node      Node       `yaml:"node"`
	OIDC      OIDC       `yaml:"oidc"`
	Session   Session    `yaml:"session"`
	Upstreams []Upstream `yaml:"upstreams"`
	Policy    Policy     `yaml:"policy"`
	Store     Store      `yaml:"store"`
	Audit     Audit      `yaml:"audit"`
	Admin     Admin      `yaml:"admin"`
	TLS       TLS        `yaml:"tls"`
	Limits    Limits     `yaml:"limits"`
	Assertion Assertion  `yaml:"assertion"`
	Rooms     Rooms      `yaml:"rooms"`
	E2EE      E2EE       `yaml:"e2ee"`
	Log       Log        `yaml:"log"`
}

// Node names this gateway among several that share one store.
type Node struct {
	// ID names the node in every audit record, so that the audit logs of
	// all nodes verify chain by chain and read as one story (docs/audit.md).
	// 1-64 of A-Z a-z 0-9 . _ -, unique per node and stable across
	// restarts. Default: the host name (a Kubernetes pod's name).
	ID string `yaml:"id"`
}

// OIDC configures the identity provider.
type OIDC struct {
	// Issuer is the provider's issuer URL; discovery is read from it. Required.
	Issuer string `yaml:"issuer"`
	// ClientID is the gateway's client at the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret or ClientSecretFile: one of them is required.
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes requested at login. Default: openid, email, profile, offline_access.
	Scopes []string `yaml:"scopes"`
	// Audiences accepted in bearer tokens. Default: [client_id].
	Audiences []string `yaml:"audiences"`
	// AccessTokenType, when set, is the JWS header typ every bearer token
	// must carry ("at+jwt" for providers that type their access tokens,
	// RFC 9068). Default none. ID tokens are refused as bearer tokens
	// whatever this says.
	AccessTokenType string `yaml:"access_token_type"`
	// GroupsClaim names the claim that carries group membership. Default
	// "groups". Claims people edit themselves (name, nickname,
	// preferred_username, the other profile claims) are refused.
	GroupsClaim string `yaml:"groups_claim"`
	// SubjectClaim names the claim that identifies a person, in ID tokens
	// and bearer tokens alike; bans, rate limits and room ownership key on
	// it with the issuer. Default "" = sub. Set it when the provider's sub
	// differs per application or token type (Entra ID: oid). A token
	// without it is refused.
	SubjectClaim string `yaml:"subject_claim"`
	// BearerClients, when set, is the only clients (a bearer token's azp,
	// or client_id) whose tokens are accepted; default any client whose
	// token carries an accepted audience.
	BearerClients []string `yaml:"bearer_clients"`
	// KeyRefetchInterval is the least time between two key-set fetches caused
	// by an unknown kid, so bogus kids cannot hammer the provider. Default 30s.
	KeyRefetchInterval time.Duration `yaml:"key_refetch_interval"`
	// HTTPTimeout bounds every call to the provider. Default 10s.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
}

// Session configures browser sessions.
type Session struct {
	// Secret or SecretFile: at least 32 bytes that key the session cookie's
	// encryption. Required.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// TTL is the longest a session lives, refreshes included. Default 12h.
	TTL time.Duration `yaml:"ttl"`
	// MaxClaimAge is the oldest a session's claims (groups, email,
	// email_verified, amr) may be: older claims are refreshed, and a session
	// whose refresh brings no new ID token signs in again. Default 1h.
	MaxClaimAge time.Duration `yaml:"max_claim_age"`
}

// Upstream is one meeting server behind the gateway.
type Upstream struct {
	// Name identifies the upstream; it is the assertion's audience. Required.
	Name string `yaml:"name"`
	// URL is where requests are forwarded. Required, http or https.
	URL string `yaml:"url"`
	// Kind selects the adapter. Default "generic".
	Kind string `yaml:"kind"`
	// Prefix is the path prefix this upstream owns. Default "/".
	Prefix string `yaml:"prefix"`
	// Rooms tells which requests belong to which meeting room.
	Rooms UpstreamRooms `yaml:"rooms"`

	// The kind's own block (upstream_kinds.go); only the one matching Kind.
	LiveKit *LiveKit `yaml:"livekit"`
	Jitsi   *Jitsi   `yaml:"jitsi"`
	BBB     *BBB     `yaml:"bbb"`
}

// UpstreamRooms maps request paths to rooms.
type UpstreamRooms struct {
	// Path is a pattern such as /room/{room}; a request whose path is that
	// pattern or below it belongs to the room. Default "/room/{room}".
	Path string `yaml:"path"`
}

// Policy configures the admission policy.
type Policy struct {
	// Dir is a directory of Rego policies. Default: the shipped policies
	// embedded in the binary.
	Dir string `yaml:"dir"`
	// Bundle is an OPA bundle file (.tar.gz), instead of Dir.
	Bundle string `yaml:"bundle"`
	// BundleVerification, when set, refuses unsigned or badly signed bundles.
	BundleVerification BundleVerification `yaml:"bundle_verification"`
	// Query is the decision query. Default data.meetguard.admission.decision.
	Query string `yaml:"query"`
	// Timeout bounds one decision. Default 250ms: a storm of joins on a small machine queues
	// decisions, and a deadline that expires there refuses people the policy
	// would admit.
	Timeout time.Duration `yaml:"timeout"`
	// ShadowDir is an optional candidate policy evaluated beside the live one.
	ShadowDir string `yaml:"shadow_dir"`
	// MaskFields are JSON pointers into the policy input (e.g.
	// "/identity/email") removed from every input the security console
	// shows (decision page, what-if) and from OPA decision-log records.
	// The audit log keeps the input whole: replay needs it. Default none.
	MaskFields []string `yaml:"mask_fields"`
}

// BundleVerification configures signed-bundle checks.
type BundleVerification struct {
	// KeyFile is a PEM public key that signs bundles.
	KeyFile string `yaml:"key_file"`
}

// Store configures shared state.
type Store struct {
	// Kind is "memory" (default) or "redis".
	Kind  string `yaml:"kind"`
	Redis Redis  `yaml:"redis"`
}

// Redis configures the Redis store.
type Redis struct {
	// Addr is host:port. Required when store.kind is redis, unless
	// Sentinel names the primary instead.
	Addr         string   `yaml:"addr"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	Sentinel     Sentinel `yaml:"sentinel"`
	// ReplicaAckTimeout, when set, makes each join wait until a replica
	// has its admission (WAIT 1), up to this long, and fail closed (503)
	// if none does: no acknowledged admission is lost in a failover, at
	// the cost of a replication round trip per join. 0 (off) to 500ms.
	ReplicaAckTimeout time.Duration `yaml:"replica_ack_timeout"`
}

// Sentinel finds the Redis primary through Redis Sentinel and follows its
// failovers without a restart.
type Sentinel struct {
	// Master is the monitored primary's name (sentinel monitor NAME ...).
	Master string `yaml:"master"`
	// Addrs are the Sentinels' host:port; at least one.
	Addrs []string `yaml:"addrs"`
	// Password authenticates to the Sentinels (requirepass in
	// sentinel.conf); store.redis.password authenticates to Redis.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Audit configures the tamper-evident audit log.
type Audit struct {
	// Path of the audit log. Required for serve.
	Path string `yaml:"path"`
	// KeyFile holds the Ed25519 checkpoint key. Default: PATH.key, created
	// on first start with its public half at PATH.pub.
	KeyFile string `yaml:"key_file"`
	// TrustedKeyFiles are .pub files of earlier audit keys: after the key
	// is changed, the gateway continues a log whose last checkpoint one of
	// them signed. Default none: the gateway refuses to extend a log not
	// covered by a checkpoint of its own key.
	TrustedKeyFiles []string `yaml:"trusted_key_files"`
	// Stdout copies every record to standard output for a SIEM. Default false.
	Stdout bool `yaml:"stdout"`
	// PeerFiles are glob patterns (filepath.Match) of other nodes' audit
	// logs shipped to this node, e.g. "/var/log/meetguard/peers/*/audit.log*".
	// The security console's decisions index and rooms report read them
	// beside this node's log. Default none: this node's log only.
	PeerFiles []string `yaml:"peer_files"`
}

// Admin configures the health and metrics listener.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9090"; "" disables it.
	Listen string `yaml:"listen"`
}

// TLS configures the public listener's certificate: files (both or
// neither; reloaded on SIGHUP and when they change) or acme. See
// docs/operations.md for the TLS defaults (TLS 1.2+, X25519MLKEM768, h2).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ACME obtains and renews the certificate automatically. Exclusive
	// with cert_file.
	ACME ACME `yaml:"acme"`
}

// Limits bounds what one client can make the gateway do.
type Limits struct {
	// MaxHeaderBytes caps request headers. Default 32 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes caps request bodies forwarded upstream. Default 10 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a (non-WebSocket) request body. Default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// UpstreamDialTimeout bounds connecting to an upstream. Default 5s.
	UpstreamDialTimeout time.Duration `yaml:"upstream_dial_timeout"`
	// UpstreamResponseTimeout bounds waiting for upstream response headers.
	// Default 30s.
	UpstreamResponseTimeout time.Duration `yaml:"upstream_response_timeout"`
	// ShutdownTimeout bounds draining connections on SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Assertion configures the identity assertion sent to upstreams.
type Assertion struct {
	// KeyFile holds the Ed25519 signing key (PEM, PKCS#8). Default: a fresh
	// key per process start, which upstreams fetch from the JWKS endpoint.
	KeyFile string `yaml:"key_file"`
	// TTL of one assertion. Default 60s, at most 60s.
	TTL time.Duration `yaml:"ttl"`
}

// Rooms configures meeting rooms: defaults for new rooms, limits,
// lifetimes, rate limits, tickets, and rooms declared here (rooms.go).
type Rooms struct {
	// DefaultCapacity applies to rooms without their own. Default 300.
	DefaultCapacity int `yaml:"default_capacity"`
	// LobbyByDefault puts new rooms' guests in a waiting room. Default true.
	LobbyByDefault *bool `yaml:"lobby_by_default"`

	// The room state's limits and lifetimes; zero takes the default
	// written in gateway/rooms (Config) and docs/configuration.md.
	MaxCapacity      int              `yaml:"max_capacity"`
	EmptyRoomTTL     time.Duration    `yaml:"empty_room_ttl"`
	BanTTL           time.Duration    `yaml:"ban_ttl"`
	ParticipantLease time.Duration    `yaml:"participant_lease"`
	WaitTTL          time.Duration    `yaml:"wait_ttl"`
	KnockTTL         time.Duration    `yaml:"knock_ttl"`
	KnockHeartbeat   time.Duration    `yaml:"knock_heartbeat"`
	LobbyPerRoom     int              `yaml:"lobby_per_room"`
	LobbyPerIdentity int              `yaml:"lobby_per_identity"`
	RateLimits       rooms.RateLimits `yaml:"rate_limits"`

	// TicketKey or TicketKeyFile: at least 32 bytes that sign room tickets,
	// the same on every node. Required with store.kind redis; without it a
	// single node draws a random key at start.
	TicketKey     string `yaml:"ticket_key"`
	TicketKeyFile string `yaml:"ticket_key_file"`
	// TicketTTL is how long a ticket lasts. Default 5m, between 1s and 1h.
	TicketTTL time.Duration `yaml:"ticket_ttl"`

	// Permanent rooms exist from the start and never end (rooms.go).
	Permanent []PermanentRoom `yaml:"permanent"`
}

// Log configures the operational log.
type Log struct {
	// Format is "json" (default) or "console".
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// E2EE configures the end-to-end key exchange the gateway relays.
type E2EE struct {
	// KeyFile holds the Ed25519 key that signs participants' credentials
	// and roster epochs. Default: <audit.path>.e2ee.key, created on first
	// start with its public half beside it. Keep it apart from the audit
	// and assertion keys.
	KeyFile string `yaml:"key_file"`
	// AllowClassicKEM lets devices without ML-KEM (browsers today) use
	// DHKEM(X25519) instead of X-Wing. Default false.
	AllowClassicKEM bool `yaml:"allow_classic_kem"`
}
