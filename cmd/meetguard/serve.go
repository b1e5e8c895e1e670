package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/config"
	reloadpkg "github.com/meetguard/meetguard/gateway/reload"
)

func runServe(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "meetguard serve: --config is required")
		return 2
	}
	applyGCDefault(os.LookupEnv)
	cfg, err := config.LoadFile(*path, os.LookupEnv)
	if err != nil {
		// The same report as `config validate`, so an operator fixes the
		// config in one pass whichever command found it.
		printConfigProblems(stderr, "serve", *path, err)
		return 2
	}
	logger, flushLog, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard serve: %v\n", err)
		return 2
	}
	defer flushLog()
	applyMemoryLimit(logger, memlimit.FromCgroup)
	if err := runGateway(ctx, cfg, app.Deps{Logger: logger}, *path); err != nil {
		logger.Error("gateway stopped", zap.Error(err))
		return 1
	}
	return 0
}

// defaultGCPercent is the collector's target for a served gateway when the
// GOGC environment variable is not set: the next collection starts when
// the heap has grown by 200 % of what the last one kept, not Go's 100 %.
// A join allocates about 60 KiB, nearly all of it inside the policy
// engine, and at 200 % the collector's CPU per join halves (BenchmarkJoin's
// gc-cpu-µs/join, 99 → 48 µs, medians of 5 alternating runs at load 4,
// p=0.008; the figure is unreliable on a busier machine). The price is a
// heap goal of three times the live heap instead of two
// (docs/performance.md), which applyMemoryLimit bounds in a container.
// GOGC and GOMEMLIMIT, read by the Go runtime itself, still decide when
// set.
const defaultGCPercent = 200

// applyGCDefault sets defaultGCPercent unless the environment sets GOGC.
func applyGCDefault(lookup func(string) (string, bool)) {
	if _, set := lookup("GOGC"); set {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}

// memoryLimitRatio is the share of a container's memory limit the Go
// runtime aims to stay under when GOMEMLIMIT is not set. At GOGC=200 the
// heap may grow to three times what the last collection kept before the
// next one starts; in a container that headroom must not reach the
// kernel's limit, where the process is killed and every meeting it
// carries drops. Under the soft limit the collector runs earlier instead.
// The rest is left for goroutine stacks, buffers outside the heap and the
// runtime itself.
const memoryLimitRatio = 0.9

// applyMemoryLimit sets the runtime's soft memory limit to
// memoryLimitRatio of the limit limit reports (the cgroup's, in
// production) unless GOMEMLIMIT is set or AUTOMEMLIMIT=off; AUTOMEMLIMIT=R
// picks another ratio. Without a limit (no cgroup memory controller, or
// "max") nothing changes.
func applyMemoryLimit(log *zap.Logger, limit memlimit.Provider) {
	before := debug.SetMemoryLimit(-1)
	got, err := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(limit))
	switch {
	case err != nil:
		// Not in a container with a memory limit, or it cannot be read:
		// the runtime's own default (no soft limit) stands.
		log.Debug("memory limit not set from the cgroup", zap.Error(err))
	case got != before:
		log.Info("memory limit set from the cgroup", zap.Int64("gomemlimit_bytes", got), zap.Float64("ratio", memoryLimitRatio))
	}
}

// runConfig is `meetguard config validate --config FILE`.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(stderr, "usage: meetguard config validate --config FILE")
		return 2
	}
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "meetguard config validate: --config is required")
		return 2
	}
	cfg, err := config.LoadFile(*path, os.LookupEnv)
	if err != nil {
		printConfigProblems(stderr, "config validate", *path, err)
		return 1
	}
	for _, w := range config.Warnings(cfg) {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// printConfigProblems writes every problem of a config that did not load,
// one a line as FILE:line N: field: problem, then how many; or the one
// reason the file could not be read.
func printConfigProblems(w io.Writer, cmd, path string, err error) {
	var errs config.Errors
	if !errors.As(err, &errs) {
		fmt.Fprintf(w, "meetguard %s: %v\n", cmd, err)
		return
	}
	for _, e := range errs {
		fmt.Fprintf(w, "%s:%s\n", path, e.Error())
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(errs))
}

// newLogger is the process's logger, writing to w. The gateway's
// per-request lines (logger "access": the access line, refusals) are batched in a 256 KiB buffer:
// one write syscall per line cost the proxy a quarter of its throughput
// (docs/performance.md). Every other line, and any access line at warn or
// above, is written at once together with what the buffer holds, so an
// error is never left behind a batch; the buffer is also written every
// second and by the returned flush, which callers run at shutdown.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, func(), error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if c.Format == "console" {
		dev := zap.NewDevelopmentEncoderConfig()
		dev.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(dev)
	}
	buf := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: time.Second}
	core := batchedAccessCore{Core: zapcore.NewCore(enc, buf, level), out: buf}
	flush := func() { _ = buf.Stop() }
	return zap.New(core), flush, nil
}

// batchedAccessCore writes through a buffer and flushes it after every
// entry except the access log's ordinary lines.
type batchedAccessCore struct {
	zapcore.Core
	out zapcore.WriteSyncer
}

func (c batchedAccessCore) With(fields []zapcore.Field) zapcore.Core {
	return batchedAccessCore{Core: c.Core.With(fields), out: c.out}
}

func (c batchedAccessCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c batchedAccessCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(e, fields)
	if e.LoggerName == "access" && e.Level < zapcore.WarnLevel {
		return err
	}
	return errors.Join(err, c.out.Sync())
}

// runGateway builds the gateway from a validated config and serves until
// ctx ends. SIGHUP reloads the certificate files, and the configuration
// file at configPath (request-path settings, upstreams, limits) with the
// policy; meetguard dev has no file ("") and reloads the policy only.
func runGateway(ctx context.Context, cfg *config.Config, deps app.Deps, configPath string) error {
	deps.Version = version
	a, err := app.New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close(context.Background()) }()
	reload := a.Reload
	if configPath != "" {
		rl, err := reloadpkg.New(reloadpkg.Options{Path: configPath, Lookup: os.LookupEnv, Config: cfg, Gateway: a.Gateway, Policy: a.Policy,
			Audit: a.Audit, Logger: deps.Logger.Named("reload")})
		if err != nil {
			return err
		}
		reload = func(ctx context.Context) error {
			a.TLS.Reload("signal")
			_, err := rl.Reload(ctx)
			return err
		}
	}
	// Each part logs and audits its own outcome.
	stop := onHangup(ctx, func(ctx context.Context) { _ = reload(ctx) })
	defer stop()
	return a.Serve(ctx)
}

// onHangup calls reload on every SIGHUP until ctx ends or stop is called.
func onHangup(ctx context.Context, reload func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(ctx)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
