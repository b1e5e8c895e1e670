// Command meetguard is the meeting security gateway: one binary whose
// subcommands run the gateway (serve, dev) and the tools that security teams
// and auditors use beside it (config, policy, audit, e2ee).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand. It returns the process exit code so that tests
// can drive the CLI without exiting.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

func commands() map[string]command {
	return map[string]command{
		"version": runVersion,
		"audit":   runAudit,
		"serve":   runServe,
		"dev":     runDev,
		"config":  runConfig,
		"policy":  runPolicy,
		"e2ee":    runE2EE,
		// Hidden: the Go roles of bench/peers.sh.
		"bench": runBench,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(ctx, nil, stdout, stderr)
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "meetguard: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if wantsHelp(args[1:]) {
		// Asked-for help is output, not an error: it goes to stdout and
		// succeeds, whichever flag set or group printed it.
		if code := cmd(ctx, args[1:], stdout, stdout); code != exitUsage {
			return code
		}
		return exitOK
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// wantsHelp reports a -h/--help flag before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: meetguard <command> [flags]

commands:
  dev               run the whole product on 127.0.0.1 with built-in identity provider and demo meeting app
  serve             run the gateway from a config file
  config validate   check a config file and name every bad field
  policy            test, check, eval, fmt and replay admission policies
  audit             verify, query, tail and report on the audit log
  e2ee              end-to-end key tools (headless client)
  version           print the version, commit and Go version (also --version)
`)
}
