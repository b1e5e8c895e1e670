package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/demoapp"
	"github.com/meetguard/meetguard/gateway/devidp"
	"github.com/meetguard/meetguard/gateway/web"
)

// devIdPPrefix is where the development provider is mounted on the
// gateway's own listener, so a browser needs one origin only.
const devIdPPrefix = "/.dev-idp"

// runDev runs the whole product on loopback: the gateway, a development
// OpenID provider, the demo meeting app as upstream, the shipped policies,
// an in-memory store and an audit file.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address (loopback only)")
	auditPath := fs.String("audit", "", "audit log file (default: a file in a fresh temp directory); its public key is written to FILE.pub")
	policyDir := fs.String("policy", "", "policy directory to use instead of the shipped policies (hot-reloaded)")
	up := fs.String("upstream", "demo", "meeting servers behind the gateway: demo (the demo app), or livekit (the demo app and a LiveKit server with the end-to-end encrypted meeting page)")
	lkServer := fs.String("livekit-server", defaultLiveKitServer(), "livekit-server binary that --upstream livekit starts on loopback (default $"+envLiveKitServer+" or the path .ci/run installs to)")
	lkURL := fs.String("livekit-url", "", "with --upstream livekit: a running LiveKit server to use instead of starting one (needs --livekit-key and --livekit-secret; its webhook must point at the gateway)")
	lkKey := fs.String("livekit-key", "", "API key of --livekit-url")
	lkSecret := fs.String("livekit-secret", "", "API secret of --livekit-url (at least 32 bytes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *up != "demo" && *up != "livekit":
		fmt.Fprintf(stderr, "meetguard dev: --upstream: %q is neither demo nor livekit\n", *up)
		return 2
	case *up != "livekit" && *lkURL != "":
		fmt.Fprintln(stderr, "meetguard dev: --livekit-url needs --upstream livekit")
		return 2
	case *lkURL != "" && (*lkKey == "" || len(*lkSecret) < 32):
		fmt.Fprintln(stderr, "meetguard dev: --livekit-url needs --livekit-key and a --livekit-secret of at least 32 bytes")
		return 2
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard dev: --listen: %v\n", err)
		return 2
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		// The development provider lets anyone become anyone.
		fmt.Fprintln(stderr, "meetguard dev: --listen must be a loopback address such as 127.0.0.1:8080")
		return 2
	}
	logger, flushLog, _ := newLogger(config.Log{Format: "console", Level: "info"}, stderr)
	defer flushLog()
	o := devOptions{listen: *listen, audit: *auditPath, policyDir: *policyDir, stdout: stdout, logger: logger}
	if *up == "livekit" {
		o.livekit = &devLiveKitOptions{server: *lkServer, url: *lkURL, key: *lkKey, secret: *lkSecret}
	}
	if err := dev(ctx, o); err != nil {
		fmt.Fprintf(stderr, "meetguard dev: %v\n", err)
		return 1
	}
	return 0
}

type devOptions struct {
	listen    string
	audit     string
	policyDir string
	// upstreamURL, when set, replaces the demo meeting app as the one
	// upstream (meetguard bench gateway).
	upstreamURL string
	stdout      io.Writer
	logger      *zap.Logger
	// ready is told the base URL once the gateway serves (tests).
	ready func(base string)
	// livekit adds a LiveKit upstream (--upstream livekit).
	livekit *devLiveKitOptions
	// users replace the development provider's demo users; adminListen
	// and store set the admin listener and the rooms store
	// (meetguard bench gateway: the soak needs many identities, metrics
	// and optionally Redis).
	users         []devidp.User
	adminListen   string
	store         config.Store
	policyTimeout time.Duration
}

// devLiveKitOptions say which LiveKit server to use: one to start from server, or the one at url.
type devLiveKitOptions struct {
	server, url, key, secret string
}

func dev(ctx context.Context, o devOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.listen, err)
	}
	base := "http://" + ln.Addr().String()

	upstreamURL := o.upstreamURL
	if upstreamURL == "" {
		// The demo meeting app listens on its own loopback port; only the
		// gateway talks to it.
		appLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo app: %w", err)
		}
		appHandler, err := demoapp.New(demoapp.Options{
			Logger:           o.logger.Named("demoapp"),
			AssertionJWKSURL: base + "/.well-known/meetguard/jwks.json", AssertionIssuer: base, AssertionAudience: "demo",
			OriginPatterns: []string{ln.Addr().String()},
		})
		if err != nil {
			return fmt.Errorf("demo app: %w", err)
		}
		demo := &http.Server{Handler: appHandler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = demo.Serve(appLn) }()
		defer demo.Close()
		upstreamURL = "http://" + appLn.Addr().String()
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	clientSecret := hex.EncodeToString(secret[:16])
	idp, err := devidp.New(devidp.Options{
		Issuer: base + devIdPPrefix,
		Clients: []devidp.Client{{
			ID: "meetguard-dev", Secret: clientSecret,
			RedirectURIs:           []string{base + "/.meetguard/callback"},
			PostLogoutRedirectURIs: []string{base + "/.meetguard/logged-out"},
		}},
		Users:  o.users,
		Logger: o.logger.Named("devidp"),
	})
	if err != nil {
		return fmt.Errorf("dev identity provider: %w", err)
	}

	auditPath := o.audit
	if auditPath == "" {
		dir, err := os.MkdirTemp("", "meetguard-dev-")
		if err != nil {
			return err
		}
		auditPath = filepath.Join(dir, "audit.log")
	}
	var lk *devLiveKit
	if o.livekit != nil {
		if o.livekit.url != "" {
			lk = &devLiveKit{url: o.livekit.url, key: o.livekit.key, secret: o.livekit.secret, stop: func() {}}
		} else if lk, err = startLiveKit(ctx, o.livekit.server, base, filepath.Dir(auditPath)); err != nil {
			return err
		}
		defer lk.stop()
	}
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: base,
		OIDC: config.OIDC{
			Issuer: idp.Issuer(), ClientID: "meetguard-dev", ClientSecret: clientSecret,
			Scopes: []string{"openid", "email", "profile", "groups", "offline_access"},
		},
		Session:   config.Session{Secret: hex.EncodeToString(secret)},
		Upstreams: []config.Upstream{{Name: "demo", URL: upstreamURL, Rooms: config.UpstreamRooms{Path: "/room/{room}"}}},
		Policy:    config.Policy{Dir: o.policyDir, Timeout: o.policyTimeout},
		Audit:     config.Audit{Path: auditPath, KeyFile: auditPath + ".key"},
		// The room the banner points at; others are created through the
		// rooms API.
		Rooms: config.Rooms{Permanent: []config.PermanentRoom{{ID: "demo"}}},
		Log:   config.Log{Format: "console"},
		Admin: config.Admin{Listen: o.adminListen},
		Store: o.store,
	}
	if cfg.Store.Kind == "redis" {
		// One node, but the Redis store insists on a shared ticket key.
		ticketKey := make([]byte, 32)
		_, _ = rand.Read(ticketKey)
		cfg.Rooms.TicketKey = hex.EncodeToString(ticketKey)
	}
	if lk != nil {
		u, room := liveKitConfig(lk)
		cfg.Upstreams = append(cfg.Upstreams, u)
		cfg.Rooms.Permanent = append(cfg.Rooms.Permanent, room)
	}
	if err := config.Complete(cfg); err != nil {
		return fmt.Errorf("dev config: %w", err)
	}

	if o.stdout != nil {
		printBanner(o.stdout, base, auditPath, idp)
		if lk != nil {
			fmt.Fprintf(o.stdout, "End-to-end encrypted LiveKit meeting (LiveKit at %s): open %s%s in two Chromium windows\n(one private), sign in as different users, and compare the security code.\n\n", lk.url, base, web.MeetingPath(liveKitRoom))
		}
	}
	return runGateway(ctx, cfg, app.Deps{
		Logger:   o.logger,
		Listener: ln,
		// The gateway reaches the provider on its own listener.
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Mount:      map[string]http.Handler{devIdPPrefix + "/": idp},
		// A record that drifts from docs/audit.md fails here first.
		StrictAudit: true,
		Started: func(string) {
			if o.ready != nil {
				o.ready(base)
			}
		},
	}, "")
}

func printBanner(w io.Writer, base, auditPath string, idp *devidp.Provider) {
	fmt.Fprintf(w, "\nmeetguard dev is running. Open %s/room/demo in a browser.\n", base)
	fmt.Fprintf(w, "Host console (sign in as Alice): %s%s\n\n", base, web.ConsolePath("demo"))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  demo user\temail\tgroups\tMFA")
	for _, u := range idp.Users() {
		mfa := "no"
		if u.MFA() {
			mfa = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", u.Name, u.Email, strings.Join(u.Groups, ","), mfa)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nA token for scripts (dev only):\n  curl -s -d user=alice@example.com %s | jq -r .access_token\n", idp.DevTokenURL())
	fmt.Fprintf(w, "Then: curl -H \"Authorization: Bearer $TOKEN\" %s/room/demo\n", base)
	fmt.Fprintf(w, "\nAudit log: %s (public key %s.pub)\n  meetguard audit verify --key %s.pub %s\n\n", auditPath, auditPath, auditPath, auditPath)
}
