// Command evident records, logs and verifies supply-chain evidence.
//
// Run "evident -h" for the list of commands and "evident COMMAND -h" for
// each one. Exit status: 0 ok, 1 a check failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand. run returns a *usageError for bad usage (exit
// 2) and any other error for a failed operation or check (exit 1).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch: its output streams and environment.
type env struct {
	stdin          io.Reader // what evident run's command reads
	stdout, stderr io.Writer
	getenv         func(string) string
}

// usageError is bad usage: msg, and for a bad flag the command's short
// usage.
type usageError struct{ msg, usage, cmd string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// commands returns the commands, in the order -h lists them. (A function:
// demo runs commands itself.)
func commands() []command {
	return []command{
		{"demo", "tell the whole story on embedded defaults, in under a minute", runDemo},
		{"serve", "run the server (embedded defaults: bbolt store, generated dev keys)", runServe},
		{"log", "read and verify the log: checkpoint, get, proof, consistency, watch, fsck", runLog},
		{"tsa", "run the RFC 3161 timestamp authority alone", runTSA},
		{"timestamp", "get or verify a trusted RFC 3161 timestamp on a file", runTimestamp},
		{"run", "run a CI step, record and sign its in-toto link, timestamp and log it", runRun},
		{"attest", "sign any in-toto predicate (SLSA provenance, SBOM…) about files, timestamp and log it", runAttest},
		{"submit", "timestamp and log in-toto links and DSSE envelopes signed elsewhere", runSubmit},
		{"verify", "verify a supply chain offline: TUF trust, layout, bundles, in-toto rules", runVerify},
		{"bundle", "fetch the bundles of logged links by artifact or index, for offline verification", runBundle},
		{"layout", "write, sign and check in-toto layouts", runLayout},
		{"tuf", "publish and rotate layouts and trust roots through TUF; mirror and read them", runTUF},
		{"backup", "take a checked backup of a running server's store", runBackup},
	}
}

const topUsage = `evident records CI steps as signed in-toto links, countersigns them with an
RFC 3161 timestamp and appends them to a Merkle transparency log, so that they
can be verified offline long after the signing certificates expired.

Usage: evident COMMAND [flags] [args]

Commands:
%s
Run "evident help COMMAND" (or "evident COMMAND -h") for a command's flags
and examples, "evident version" for the version.
Exit status: 0 ok, 1 a check failed, 2 bad usage.
`

func main() { os.Exit(evidentMain()) }

// evidentMain runs the command line of the process and returns its exit
// status (the script tests run it as the evident command).
func evidentMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) > 1 && args[0] == "help" {
		// "evident help CMD [SUB]" is "evident CMD [SUB] -h".
		return run(ctx, e, append(args[1:], "-h"))
	}
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(e.stdout, version())
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		var list strings.Builder
		for _, c := range commands() {
			fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary) // "timestamp" is the longest name
		}
		w := e.stdout
		code := 0
		if len(args) == 0 {
			w, code = e.stderr, 2
		}
		fmt.Fprintf(w, topUsage, list.String())
		return code
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(e, c.run(ctx, e, args[1:]))
		}
	}
	fmt.Fprintf(e.stderr, "evident: error: unknown command %q (run evident -h)\n", args[0])
	return 2
}

func exitCode(e *env, err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		fmt.Fprintf(e.stderr, "evident: %v\n", err)
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "evident: error: %s\n", humanize(err))
		if ue.usage != "" {
			fmt.Fprintf(e.stderr, "%s\nRun \"evident help %s\" for every flag.\n", ue.usage, ue.cmd)
		}
		return 2
	default:
		fmt.Fprintf(e.stderr, "evident: error: %s\n", humanize(err))
		return 1
	}
}

// newFlags returns a flag set for a command; see parse. usage is the
// command's help text, whose "Usage:" lines are also the short usage a bad
// flag prints.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	flagSets.Store(fs, &flagSet{env: e, usage: usage})
	return fs
}

// parse parses flags, which may come before, between or after the
// positional arguments ("--" ends the flags), then fills every flag left
// unset that the environment names (see envFlags). -h prints the usage and
// the visible flags to stdout; a bad flag is a usage error that carries the
// short usage. The positional arguments are then fs.Args().
func parse(fs *flag.FlagSet, args []string) error {
	info := lookupFlagSet(fs)
	defer flagSets.Delete(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(info.env.stdout, fs, info.usage)
				return err
			}
			return &usageError{msg: err.Error(), usage: shortUsage(info.usage), cmd: fs.Name()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return err
	}
	return applyEnv(fs, info)
}
