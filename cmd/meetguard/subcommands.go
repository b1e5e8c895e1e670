package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// Exit codes shared by every subcommand group.
const (
	exitOK    = 0
	exitUsage = 2
)

// dispatch runs one subcommand of a group (meetguard audit verify ...):
// help prints the usage and succeeds, no or an unknown subcommand prints it
// and fails with exitUsage.
func dispatch(ctx context.Context, group, usage string, subs map[string]command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	sub, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "meetguard %s: unknown command %q\n\n%s", group, args[0], usage)
		return exitUsage
	}
	return sub(ctx, args[1:], stdout, stderr)
}

// newFlagSet is a flag set for one subcommand ("meetguard audit verify")
// that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterspersed lets flags follow positional arguments
// (query FILE --room R), as people type them; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
