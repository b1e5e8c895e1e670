package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/respond"
)

// ServerOptions configures Serve.
type ServerOptions struct {
	Config  *config.Config
	Gateway *Gateway
	// Listener, when set, is used instead of listening on Config.Listen
	// (tests and meetguard dev pass one bound to 127.0.0.1:0).
	Listener net.Listener
	// Metrics is served on the admin listener.
	Metrics prometheus.Gatherer
	Logger  *zap.Logger
	// Started is called with the public address once listening.
	Started func(addr string)
	// Mount serves handlers beside the gateway by path prefix, outside its
	// authentication (meetguard dev mounts its identity provider here); see
	// Gateway.Mount.
	Mount map[string]http.Handler
	// TLS, when set, serves the public listener over TLS with it (its
	// GetCertificate supplies reloadable or ACME certificates). Without
	// it, tls.cert_file is read once.
	TLS *tls.Config
	// PlainListen and PlainHandler serve plain HTTP beside the public
	// listener: ACME HTTP-01 challenges and a redirect to https.
	PlainListen  string
	PlainHandler http.Handler
}

// Serve runs the public listener (and the admin listener when configured)
// until ctx ends, then drains: it stops accepting, closes live upgraded
// connections, and waits up to limits.shutdown_timeout for requests.
func Serve(ctx context.Context, opts ServerOptions) error {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Listen, err)
		}
	}
	if len(opts.Mount) > 0 {
		if err := opts.Gateway.Mount(opts.Mount); err != nil {
			_ = ln.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:           opts.Gateway,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 3)
	go func() {
		var err error
		switch {
		case opts.TLS != nil:
			srv.TLSConfig = opts.TLS
			err = srv.ServeTLS(ln, "", "")
		case cfg.TLS.CertFile != "":
			err = srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		default:
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	log.Info("gateway listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", opts.TLS != nil || cfg.TLS.CertFile != ""))
	if opts.Started != nil {
		opts.Started(ln.Addr().String())
	}

	if opts.PlainHandler != nil && opts.PlainListen != "" {
		pln, err := net.Listen("tcp", opts.PlainListen)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen tls.acme.http_listen %s: %w", opts.PlainListen, err)
		}
		plain := &http.Server{
			Handler:           opts.PlainHandler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    8 << 10,
		}
		servers = append(servers, plain)
		go func() { errc <- plain.Serve(pln) }()
		log.Info("acme http-01 listening", zap.String("addr", pln.Addr().String()))
	}
	if cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen admin %s: %w", cfg.Admin.Listen, err)
		}
		admin := &http.Server{
			Handler:           opts.Gateway.AdminHandler(opts.Metrics),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		}
		servers = append(servers, admin)
		go func() { errc <- admin.Serve(aln) }()
		log.Info("admin listening", zap.String("addr", aln.Addr().String()))
	}

	select {
	case err := <-errc:
		for _, s := range servers {
			_ = s.Close()
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining connections", zap.Duration("timeout", cfg.Limits.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
	defer cancel()
	// Hijacked connections are invisible to Shutdown; close them ourselves
	// so clients reconnect to another node instead of hanging.
	closed := opts.Gateway.Live().CloseAll()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	opts.Gateway.Close(sctx)
	log.Info("shutdown complete", zap.Int("live_connections_closed", closed))
	return errors.Join(errs...)
}

// AdminHandler serves the admin listener: liveness, readiness with each
// check's detail (a rejected policy reload's file, line and problem; the
// audit log's or the store's error), and Prometheus metrics when gatherer
// is set. Serve it only on loopback or a private network.
func (g *Gateway) AdminHandler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		g.serveReady(w, true)
	})
	return mux
}
