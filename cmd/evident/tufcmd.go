package main

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/sigstore/sigstore/pkg/signature"
)

const tufUsage = `
Usage: evident tuf SUBCOMMAND [flags]

Publishes and rotates layouts and trust roots through a TUF repository, and
reads it as verifiers do.

Publishing (--repo DIR, default evident-data/tuf; --keys DIR, default
evident-data/tuf-keys, holding root-*.pem, targets.pem, snapshot.pem,
timestamp.pem — keep root and targets offline in production):
  init [--root-keys N] [--root-threshold T]   create a repository and its keys
  trust add --kind K --name N --file F [--start TIME]
  trust retire --kind K --name N [--end TIME]
  trust rotate --kind K --name OLD --new-name NEW --file F
                      K is functionary-ca, tsa (root PEM), log (note verifier key) or layout-key (public key PEM)
  delegate --project P --key PUB.pem [--key …] [--threshold N]
                      let P's release managers sign layouts/P/…
  publish-layout --project P --name N --file LAYOUT [--key KEY.pem …]
                      publish the next version (a delegated project needs its release managers' keys)
  rotate-key ROLE [--count N] [--threshold T]
                      new keys for root, targets, snapshot or timestamp; a root rotation is
                      signed by the old and the new keys; old key files are kept as *.retired-*
  status [--json]     versions and expiries, and what expires soon

Reading (--tuf-root FILE: a root.json obtained out of band; --tuf URL or --tuf-mirror DIR):
  mirror --out DIR    copy a consistent snapshot for an air-gapped verifier, and verify the copy
  get TARGET          print a verified target, e.g. trusted_root.json
  get --format sigstore-trusted-root [--intermediates-from BUNDLE …] [trusted_root.json]
                      print the trust root as a Sigstore TrustedRoot (functionary CAs, with the
                      intermediates of the bundles' signers, and TSAs), for Sigstore verifiers
  layout --project P --name N [--at TIME]   print the layout current at TIME (default: latest)
  --tuf-at TIME       judge expiry at TIME instead of now: for a mirror that has since expired,
                      an explicit choice that is printed on stderr

Examples:
  evident tuf init --repo repo --keys keys --root-keys 3 --root-threshold 2
  evident tuf trust add --kind functionary-ca --name spire-2026 --file upstream-root.pem
  evident tuf publish-layout --project acme --name release --file root.layout --key rm-alice.pem
  evident tuf mirror --tuf http://127.0.0.1:8080/tuf --tuf-root root.json --out mirror/
`

func runTUF(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, strings.TrimLeft(tufUsage, "\n"))
		if len(args) == 0 {
			return usagef("tuf needs a subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	if sub == "trust" {
		if len(args) == 0 {
			return usagef("tuf trust needs add, retire or rotate")
		}
		sub, args = "trust "+args[0], args[1:]
	}
	fs := newFlags(e, "tuf "+sub, tufUsage)
	repoDir := fs.String("repo", filepath.Join("evident-data", "tuf"), "repository `directory`")
	keysDir := fs.String("keys", filepath.Join("evident-data", "tuf-keys"), "keys `directory`")
	asJSON := fs.Bool("json", false, "machine-readable output")
	var (
		kind, name, file, newName, project, at, out, root, url, mirror *string
		count, threshold                                               *int
		keys                                                           multiFlag
	)
	format, intermediates := new(string), multiFlag{} // get --format sigstore-trusted-root
	str := func(p **string, flag, def, help string) { *p = fs.String(flag, def, help) }
	switch sub {
	case "init":
		count = fs.Int("root-keys", 1, "number of root keys")
		threshold = fs.Int("root-threshold", 1, "root keys that must sign")
	case "trust add", "trust retire", "trust rotate":
		str(&kind, "kind", "", "functionary-ca, tsa, log or layout-key")
		str(&name, "name", "", "the item's name")
		str(&file, "file", "", "the item: PEM, or the log's note verifier key")
		str(&newName, "new-name", "", "rotate: the new item's name")
		str(&at, "start", "", "add: valid from (RFC 3339; default now)")
		if sub == "trust retire" {
			str(&at, "end", "", "retire: valid until (RFC 3339; default now)")
		}
	case "delegate":
		str(&project, "project", "", "project name")
		fs.Var(&keys, "key", "a release manager's public key `PEM` (repeat)")
		threshold = fs.Int("threshold", 1, "release managers that must sign")
	case "publish-layout":
		str(&project, "project", "", "project name")
		str(&name, "name", "", "layout name")
		str(&file, "file", "", "the signed in-toto layout")
		fs.Var(&keys, "key", "a release manager's private key `PEM` (repeat; delegated projects)")
	case "rotate-key":
		count = fs.Int("count", 1, "number of new keys")
		threshold = fs.Int("threshold", 1, "new keys that must sign")
	case "status":
	case "mirror", "get", "layout":
		str(&root, "tuf-root", "", "trusted root.json `file`, obtained out of band")
		str(&url, "tuf", "", "repository `URL`, e.g. http://127.0.0.1:8080/tuf")
		str(&mirror, "tuf-mirror", "", "mirror `directory` (instead of --tuf)")
		str(&at, "tuf-at", "", "judge metadata expiry at this RFC 3339 time instead of now")
		str(&out, "out", "", "mirror: output `directory`")
		str(&project, "project", "", "layout: project")
		str(&name, "name", "", "layout: name")
		fs.String("at", "", "layout: the version current at this RFC 3339 time (default latest)")
		if sub == "get" {
			str(&format, "format", "", "get: sigstore-trusted-root converts the trust root for Sigstore verifiers")
			fs.Var(&intermediates, "intermediates-from", "get --format sigstore-trusted-root: a `BUNDLE` whose signer's intermediates to include (repeat)")
		}
	default:
		return usagef("unknown tuf subcommand %q (run evident tuf -h)", sub)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkGetFormat(sub, *format, intermediates, fs.Args()); err != nil {
		return err
	}
	now := time.Now
	parseTime := func(s string) (time.Time, error) {
		if s == "" {
			return now(), nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, usagef("bad time %q: want RFC 3339, e.g. 2026-11-25T10:00:00Z", s)
		}
		return t, nil
	}
	online := func(roles ...string) (tufrepo.Signers, error) {
		return tufrepo.LoadKeys(*keysDir, append(roles, tufrepo.Snapshot, tufrepo.Timestamp)...)
	}
	switch sub {
	case "init":
		r, err := tufrepo.Init(*repoDir, *keysDir, tufrepo.InitOptions{RootKeys: *count, RootThreshold: *threshold})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created %s (keys in %s); clients start from %s\n", r.Dir(), *keysDir,
			filepath.Join(r.Dir(), "metadata", "1.root.json"))
		return nil
	case "trust add", "trust retire", "trust rotate":
		t, err := parseTime(*at)
		if err != nil {
			return err
		}
		var value string
		if sub != "trust retire" {
			b, err := os.ReadFile(*file)
			if err != nil {
				return usagef("--file: %v", err)
			}
			value = strings.TrimSpace(string(b))
		}
		s, err := online(tufrepo.Targets)
		if err != nil {
			return err
		}
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) error {
			return r.EditTrustRoot(func(tr *evident.TrustRoot) error {
				switch sub {
				case "trust add":
					return tr.Add(*kind, *name, value, t)
				case "trust retire":
					return tr.Retire(*kind, *name, t)
				}
				if *newName == "" {
					return usagef("trust rotate needs --new-name")
				}
				if err := tr.Retire(*kind, *name, t); err != nil {
					return err
				}
				return tr.Add(*kind, *newName, value, t)
			}, s)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s (%s)\n", evident.TrustRootTarget, sub)
		return nil
	case "delegate":
		var pubs []crypto.PublicKey
		for _, k := range keys {
			pub, err := readPublicKey(k)
			if err != nil {
				return err
			}
			pubs = append(pubs, pub)
		}
		s, err := online(tufrepo.Targets)
		if err != nil {
			return err
		}
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) error {
			if err := r.Delegate(*project, pubs, *threshold); err != nil {
				return err
			}
			return r.Publish(s)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "delegated layouts/%s/ to role %s (%d keys, threshold %d)\n", *project, tufrepo.ProjectRole(*project), len(pubs), *threshold)
		return nil
	case "publish-layout":
		layout, err := os.ReadFile(*file)
		if err != nil {
			return usagef("--file: %v", err)
		}
		s, err := online(tufrepo.Targets)
		if err != nil {
			return err
		}
		for _, k := range keys {
			signer, err := tufrepo.LoadKeyFile(k)
			if err != nil {
				return err
			}
			s[tufrepo.ProjectRole(*project)] = append(s[tufrepo.ProjectRole(*project)], signer)
		}
		var v tufrepo.LayoutVersion
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) (err error) {
			v, err = r.PublishLayout(*project, *name, layout, s)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s (version %d)\n", v.Target, v.Version)
		return nil
	case "rotate-key":
		if fs.NArg() != 1 {
			return usagef("rotate-key takes one ROLE: root, targets, snapshot or timestamp")
		}
		return rotateKey(e, *repoDir, *keysDir, fs.Arg(0), *count, *threshold)
	case "status":
		var st []tufrepo.RoleStatus
		err := tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) error { st = r.Status(); return nil })
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e, st)
		}
		for _, s := range st {
			left := time.Until(s.Expires).Round(time.Minute)
			soon := ""
			if online := s.Role == tufrepo.Snapshot || s.Role == tufrepo.Timestamp; left < 0 {
				soon = "  EXPIRED"
			} else if !online && left < 30*24*time.Hour || online && left < 12*time.Hour {
				soon = "  expires soon"
			}
			fmt.Fprintf(e.stdout, "%-22s version %-4d expires %s (in %v)%s\n", s.Role, s.Version, s.Expires.UTC().Format(time.RFC3339), left, soon)
		}
		return nil
	}
	// Reading.
	if *root == "" {
		return usagef("--tuf-root is required: a root.json obtained out of band")
	}
	rootJSON, err := os.ReadFile(*root)
	if err != nil {
		return err
	}
	o := tufrepo.ClientOptions{Root: rootJSON, URL: *url, MirrorDir: *mirror}
	if *at != "" {
		if o.At, err = parseTime(*at); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "evident: note: TUF metadata expiry judged at %s, not now (--tuf-at)\n", o.At.UTC().Format(time.RFC3339))
	}
	switch sub {
	case "mirror":
		if *out == "" || *url == "" {
			return usagef("mirror needs --tuf URL and --out DIR")
		}
		n, err := tufrepo.Mirror(o, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "mirrored %d targets into %s, and verified the copy\n", n, *out)
		return nil
	case "get":
		if *format != "" {
			return tufGetSigstoreTrustedRoot(e, o, cmp.Or(fs.Arg(0), evident.TrustRootTarget), intermediates)
		}
		if fs.NArg() != 1 {
			return usagef("get takes one TARGET")
		}
		c, err := tufrepo.NewClient(o)
		if err != nil {
			return err
		}
		b, err := c.Target(fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(b)
		return err
	default: // layout
		when, err := parseOptionalTime(fs.Lookup("at").Value.String())
		if err != nil {
			return err
		}
		c, err := tufrepo.NewClient(o)
		if err != nil {
			return err
		}
		b, v, err := c.Layout(*project, *name, when)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "evident: %s, version %d, published %s\n", v.Target, v.Version, v.Published.Format(time.RFC3339))
		_, err = e.stdout.Write(b)
		return err
	}
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("bad time %q: want RFC 3339", s)
	}
	return t, nil
}

// rotateKey gives a top-level role new keys: new key files, a new root
// signed by the old root keys (and the new ones for root), then the role's
// metadata re-signed with them; the old key files are kept, renamed.
func rotateKey(e *env, repoDir, keysDir, role string, count, threshold int) error {
	old, err := tufrepo.LoadKeys(keysDir, tufrepo.Root, tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp)
	if err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	var oldFiles []string
	if role == tufrepo.Root {
		oldFiles, _ = filepath.Glob(filepath.Join(keysDir, "root-*.pem"))
	} else {
		oldFiles = []string{filepath.Join(keysDir, role+".pem")}
	}
	var next []signature.Signer
	var newFiles []string
	for i := 1; i <= count; i++ {
		p := filepath.Join(keysDir, fmt.Sprintf("%s.new-%d.pem", role, i))
		s, err := tufrepo.NewKeyFile(p)
		if err != nil {
			return err
		}
		next, newFiles = append(next, s), append(newFiles, p)
	}
	err = tufrepo.Update(repoDir, time.Now, func(r *tufrepo.Repo) error {
		if err := r.RotateKey(role, next, threshold, old[tufrepo.Root]); err != nil {
			return err
		}
		s := old
		s[role] = next
		return r.Publish(s)
	})
	if err != nil {
		for _, p := range newFiles {
			os.Remove(p)
		}
		return err
	}
	for _, p := range oldFiles {
		os.Rename(p, p+".retired-"+stamp)
	}
	for i, p := range newFiles {
		final := filepath.Join(keysDir, role+".pem")
		if role == tufrepo.Root {
			final = filepath.Join(keysDir, fmt.Sprintf("root-%d.pem", i+1))
		}
		if err := os.Rename(p, final); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "rotated %s to %d new key(s), threshold %d; old key files kept as *.retired-%s\n", role, count, threshold, stamp)
	return nil
}

func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(blk.Bytes)
	case "PRIVATE KEY":
		s, err := tufrepo.LoadKeyFile(path)
		if err != nil {
			return nil, err
		}
		return s.PublicKey()
	}
	return nil, errors.New(path + ": not a public key")
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
