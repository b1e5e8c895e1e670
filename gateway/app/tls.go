package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/crypto/acme/autocert"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/certs"
	"github.com/meetguard/meetguard/gateway/config"
)

// ListenerTLS is what the public listener serves with, built from tls.*.
type ListenerTLS struct {
	Config *tls.Config // nil: plain HTTP
	// PlainListen and Plain serve ACME HTTP-01 and the https redirect.
	PlainListen string
	Plain       http.Handler
	// files are the certificate files when tls.cert_file is set: Reload
	// reads them again.
	files *certs.Files
}

// Reload reads the certificate files again (SIGHUP); ACME renews by
// itself and plain HTTP has nothing to reload.
func (l *ListenerTLS) Reload(trigger string) {
	if l != nil && l.files != nil {
		l.files.Reload(trigger)
	}
}

// TLSOptions are test switches for NewListenerTLS.
type TLSOptions struct {
	// NoWatch leaves file changes unwatched, so a test can tell a SIGHUP
	// reload from a file-change one.
	NoWatch bool
	// Audit records every certificate-file reload that changed the serving
	// certificate or was rejected (tls.reload, tls.reload_rejected).
	Audit audit.Recorder
}

// auditReload is the certificate files' OnReload: what changed, or why the
// new pair was refused and which certificate keeps serving.
func auditReload(rec audit.Recorder, log *zap.Logger) func(certs.Reload) {
	return func(r certs.Reload) {
		var fact audit.Fact
		switch {
		case r.Err != nil:
			fact = audit.TLSReloadRejected(r.Trigger, r.Err.Error(), r.OldSerial, r.OldNotAfter)
		case r.Changed():
			fact = audit.TLSReloaded(r.Trigger, r.NewSerial, r.OldSerial, r.NotAfter, r.OldNotAfter)
		default:
			return // the same certificate again: nothing changed
		}
		if rec == nil {
			return
		}
		if err := audit.Write(context.Background(), rec, fact); err != nil {
			log.Error("audit tls certificate reload", zap.Error(err))
		}
	}
}

// NewListenerTLS loads the certificate files (and, until ctx ends, watches
// them) or sets up ACME. Any error stops the start, naming the tls.* field.
// Certificate files reload when they change and on Reload; ACME renews by
// itself.
func NewListenerTLS(ctx context.Context, cfg *config.Config, log *zap.Logger, o TLSOptions) (*ListenerTLS, error) {
	switch {
	case cfg.TLS.ACME.Enabled:
		a := cfg.TLS.ACME
		var cache autocert.Cache
		if a.CacheDir == "" && cfg.Store.Kind == "redis" {
			// Replicas share the account and certificates.
			rc := redis.NewClient(&redis.Options{Addr: cfg.Store.Redis.Addr, Password: cfg.Store.Redis.Password, DB: cfg.Store.Redis.DB})
			context.AfterFunc(ctx, func() { _ = rc.Close() })
			cache = certs.NewRedisCache(rc, "meetguard:acme:")
		} else {
			dc, err := certs.DirCache(a.CacheDir)
			if err != nil {
				return nil, fmt.Errorf("tls.acme.cache_dir: %w", err)
			}
			cache = dc
		}
		client := &http.Client{Timeout: 30 * time.Second}
		if a.CAFile != "" {
			pool, err := config.CertPool(a.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.acme.ca_file: %w", err)
			}
			client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}
		}
		m, err := certs.NewACME(ctx, certs.ACMEOptions{
			DirectoryURL: a.DirectoryURL, Email: a.Email, Hosts: a.Domains, Cache: cache,
			RenewBefore: a.RenewBefore, HTTPClient: client, Logger: log.Named("acme"),
		})
		if err != nil {
			return nil, fmt.Errorf("tls.acme.directory_url: %w", err)
		}
		lt := &ListenerTLS{Config: certs.ServerConfig(m.GetCertificate, true)}
		if a.HTTPListen != "" {
			lt.PlainListen, lt.Plain = a.HTTPListen, m.HTTPHandler()
		}
		log.Info("tls: acme", zap.String("directory", a.DirectoryURL), zap.Strings("domains", a.Domains), zap.Bool("http_01", a.HTTPListen != ""))
		return lt, nil
	case cfg.TLS.CertFile != "":
		f, err := certs.NewFiles(certs.FileOptions{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, Logger: log.Named("tls"),
			OnReload: auditReload(o.Audit, log)})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		if !o.NoWatch {
			go func() {
				if err := f.Watch(ctx); err != nil && ctx.Err() == nil {
					log.Warn("tls certificate watch stopped; SIGHUP still reloads", zap.Error(err))
				}
			}()
		}
		log.Info("tls: certificate files", zap.String("serial", f.Serial()))
		return &ListenerTLS{Config: certs.ServerConfig(f.GetCertificate, false), files: f}, nil
	}
	return &ListenerTLS{}, nil
}
