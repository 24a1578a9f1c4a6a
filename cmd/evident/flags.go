package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/evident-dev/evident/log/logclient"
)

// envFlags are the flags every command reads from the environment when
// they are not given: one name per concept, so that a CI job sets them once.
var envFlags = map[string]string{
	"server":      "EVIDENT_SERVER",
	"tuf-root":    "EVIDENT_TUF_ROOT",
	"tuf":         "EVIDENT_TUF",
	"log-key":     "EVIDENT_LOG_KEY",
	"tsa":         "EVIDENT_TSA",
	"tsa-roots":   "EVIDENT_TSA_ROOTS",
	"signing-key": "EVIDENT_SIGNING_KEY",
	"cert":        "EVIDENT_CERT",
	"repo":        "EVIDENT_TUF_REPO",
	"keys":        "EVIDENT_TUF_KEYS",
}

// flagSet is what parse needs to know about a flag set beyond the flag
// package: the command's environment and help, its hidden aliases (old
// names kept for scripts) and the flags the environment must not set.
type flagSet struct {
	env     *env
	usage   string
	aliases map[string]string // old name → name
	noEnv   map[string]bool
}

// flagSets maps each *flag.FlagSet from newFlags to its flagSet until it is
// parsed.
var flagSets sync.Map

func lookupFlagSet(fs *flag.FlagSet) *flagSet {
	if v, ok := flagSets.Load(fs); ok {
		return v.(*flagSet)
	}
	panic("evident: flag set " + fs.Name() + " not made by newFlags")
}

// hidden is the usage of flags that -h does not list.
const hidden = "\x00hidden"

// alias makes old a hidden synonym of the flag name, for scripts written
// before the flag was renamed.
func alias(fs *flag.FlagSet, old, name string) {
	fs.Var(fs.Lookup(name).Value, old, hidden)
	info := lookupFlagSet(fs)
	if info.aliases == nil {
		info.aliases = map[string]string{}
	}
	info.aliases[old] = name
}

// noEnv keeps the environment from setting the flag name: for a flag that
// would make an offline command go online.
func noEnv(fs *flag.FlagSet, name string) {
	info := lookupFlagSet(fs)
	if info.noEnv == nil {
		info.noEnv = map[string]bool{}
	}
	info.noEnv[name] = true
}

// applyEnv sets every flag of envFlags that the command line left unset and
// the environment names.
func applyEnv(fs *flag.FlagSet, info *flagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if n, ok := info.aliases[f.Name]; ok {
			set[n] = true
		}
	})
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name, ok := envFlags[f.Name]
		if !ok || set[f.Name] || info.noEnv[f.Name] || err != nil {
			return
		}
		if v := info.env.getenv(name); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usagef("$%s: %v", name, serr)
			}
		}
	})
	return err
}

// printHelp writes a command's help and its visible flags.
func printHelp(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, strings.TrimLeft(usage, "\n"))
	vis := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == hidden {
			return
		}
		u := f.Usage
		if env, ok := envFlags[f.Name]; ok && !lookupFlagSet(fs).noEnv[f.Name] {
			u += " ($" + env + ")"
		}
		vis.Var(f.Value, f.Name, u)
		vis.Lookup(f.Name).DefValue = f.DefValue
		n++
	})
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	vis.SetOutput(w)
	vis.PrintDefaults()
}

// shortUsage is the "Usage:" lines of a command's help.
func shortUsage(usage string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimLeft(usage, "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	v := "evident (devel)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v = "evident " + bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v + " " + bi.GoVersion
}

var (
	reMerkleRoot = regexp.MustCompile(`calculated root:\s*\[[0-9 ]*\]\s*does not match expected root:\s*\[[0-9 ]*\]`)
	reASN1       = regexp.MustCompile(`(x509: malformed [a-z ]+|asn1: (structure|syntax) error: .*$)`)
	reTime       = regexp.MustCompile(`parsing time ("(?:[^"\\]|\\.)*") as "[^"]*"(: cannot parse "(?:[^"\\]|\\.)*" as "[^"]*"|: [a-z ]+)?`)
)

// humanize turns an error into one line a person can act on: library text
// (Merkle root dumps, ASN.1 structure errors, Go time layouts) is said in
// words, and a context repeated by several layers is said once. A split
// view keeps both checkpoints, which are the evidence.
func humanize(err error) string {
	var split *logclient.SplitViewError
	if errors.As(err, &split) {
		return err.Error()
	}
	s := err.Error()
	s = reMerkleRoot.ReplaceAllString(s, "the proof leads to another root hash than the checkpoint's")
	s = reASN1.ReplaceAllString(s, "not DER of the expected kind (a wrong or damaged file?)")
	s = reTime.ReplaceAllString(s, "bad time $1: want RFC 3339, e.g. 2026-11-25T10:00:00Z")
	parts := strings.Split(strings.Join(strings.Fields(s), " "), ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

// subUsage is the help of one subcommand of cmd: its lines in the
// command's help (the line that starts with "  SUB" and the more indented
// lines after it), as a usage of its own, then a pointer to the whole help.
func subUsage(full, cmd, sub string) string {
	var lines []string
	in := false
	for _, l := range strings.Split(full, "\n") {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		switch {
		case indent == 2 && (strings.HasPrefix(l[2:], sub+" ") || l[2:] == sub):
			in = true
			use, desc, _ := strings.Cut(strings.TrimSpace(l[2:]), "   ")
			lines = append(lines, "Usage: evident "+cmd+" "+use)
			if desc = strings.TrimSpace(desc); desc != "" {
				lines = append(lines, "  "+desc)
			}
		case in && indent > 2:
			lines = append(lines, "  "+strings.TrimSpace(l))
		default:
			in = false
		}
	}
	if len(lines) == 0 {
		return full
	}
	return "\n" + strings.Join(lines, "\n") + "\n\n(evident help " + cmd + " tells the whole story.)\n"
}

// listFlag collects a repeated flag, in order.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parseTime parses an RFC 3339 flag value; empty is def.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("bad time %q: want RFC 3339, e.g. 2026-11-25T10:00:00Z", s)
	}
	return t, nil
}

// deref is *p, or "" for a flag the subcommand does not have.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
