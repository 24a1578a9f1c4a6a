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
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tufrepo"
)

const tufUsage = `
Usage: evident tuf SUBCOMMAND [flags]

Publishes and rotates layouts and trust roots through a TUF repository, and
reads it as verifiers do.

Publishing (--repo DIR, default evident-data/tuf; --keys DIR, default
evident-data/tuf-keys, holding root-*.pem, targets.pem, snapshot.pem,
timestamp.pem — keep root and targets offline in production):
  init [--root-keys N] [--root-threshold T]   create a repository and its keys
  trust add --kind K --name N --file F [--start TIME] [--trust-domain D …]
                      --trust-domain (functionary-ca only, repeat): the SPIFFE trust domains the CA
                      may vouch for; a CA listing none may vouch for any domain no other CA lists
  trust retire --kind K --name N [--end TIME]
  trust rotate --kind K --name OLD --new-name NEW --file F
                      K is functionary-ca, tsa (root PEM), log (note verifier key), layout-key (public key PEM)
                      or witness (cosignature verifier key, name+hash+base64, as litewitness prints it)
  trust policy --witness-threshold N [--max-log-delay D]
                      require N distinct witnesses' cosignatures on every bundle's checkpoint, and at
                      most D (default 1h) between a signature's timestamp and its first witnessed checkpoint
  delegate --project P --delegate-key PUB.pem [--delegate-key …] [--threshold N]
                      let P's release managers sign layouts/P/…
  publish-layout --project P --name N --file LAYOUT [--signing-key KEY.pem …] [--force]
                      publish the next version (a delegated project needs its release managers' keys),
                      once it passes the checks of "evident layout check" against this repository's
                      trust root (signed by one of its layout keys, not expired); --force publishes
                      anyway, and says so; versions are never removed: withdraw a bad one with
                      withdraw-layout
  withdraw-layout --project P --name N --version V --reason TEXT [--signing-key KEY.pem …]
                      withdraw a bad version: it stays listed, marked withdrawn, and clients never
                      pick it again, at any time; the version before it is current again
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
  --tuf-cache DIR     where the verified metadata is kept between runs, so that a repository or
                      mirror older than one seen before is refused (default: the user's cache
                      directory, evident/tuf/<root hash>)

Examples:
  evident tuf init --repo repo --keys keys --root-keys 3 --root-threshold 2
  evident tuf trust add --kind functionary-ca --name spire-2026 --file upstream-root.pem
  evident tuf publish-layout --project acme --name release --file root.layout --signing-key rm-alice.pem
  evident tuf mirror --tuf http://127.0.0.1:8080/tuf --tuf-root root.json --out mirror/
`

func runTUF(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return &usageError{msg: "tuf needs a subcommand", usage: shortUsage(tufUsage), cmd: "tuf"}
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, strings.TrimLeft(tufUsage, "\n"))
		return nil
	}
	sub, args := args[0], args[1:]
	if sub == "trust" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return usagef("tuf trust needs add, retire, rotate or policy")
		}
		sub, args = "trust "+args[0], args[1:]
	}
	fs := newFlags(e, "tuf "+sub, subUsage(tufUsage, "tuf", sub))
	repoDir := fs.String("repo", serve.DefaultDataDir.TUF(), "repository `directory`")
	keysDir := fs.String("keys", serve.DefaultDataDir.TUFKeys(), "keys `directory`")
	asJSON := new(bool)
	var (
		kind, name, file, newName, project, at, out, root, url, mirror, tufCache *string
		count, threshold                                                         *int
		force                                                                    *bool
		maxDelay                                                                 *time.Duration
		keys, domains                                                            multiFlag
	)
	format, intermediates := new(string), multiFlag{} // get --format sigstore-trusted-root
	str := func(p **string, flag, def, help string) { *p = fs.String(flag, def, help) }
	switch sub {
	case "init":
		count = fs.Int("root-keys", 1, "number of root keys")
		threshold = fs.Int("root-threshold", 1, "root keys that must sign")
	case "trust policy":
		threshold = fs.Int("witness-threshold", 0, "distinct witnesses that must cosign each bundle's checkpoint")
		maxDelay = fs.Duration("max-log-delay", time.Hour, "longest time from a signature's timestamp to its first witnessed checkpoint (0: unbounded)")
	case "trust add", "trust retire", "trust rotate":
		str(&kind, "kind", "", "functionary-ca, tsa, log, layout-key or witness")
		str(&name, "name", "", "the item's name")
		switch sub {
		case "trust add":
			str(&file, "file", "", "the item: PEM, or the log's note verifier key")
			str(&at, "start", "", "valid from (RFC 3339; default now)")
			fs.Var(&domains, "trust-domain", "functionary-ca: a SPIFFE trust `domain` the CA may vouch for (repeat)")
		case "trust retire":
			str(&at, "end", "", "valid until (RFC 3339; default now)")
		case "trust rotate":
			str(&file, "file", "", "the new item: PEM, or the log's note verifier key")
			str(&newName, "new-name", "", "the new item's name")
			fs.Var(&domains, "trust-domain", "functionary-ca: a SPIFFE trust `domain` the CA may vouch for (repeat; default: the old CA's)")
			at = new(string)
		}
	case "delegate":
		str(&project, "project", "", "project name")
		fs.Var(&keys, "delegate-key", "a release manager's public key `PEM` (repeat)")
		alias(fs, "key", "delegate-key")
		threshold = fs.Int("threshold", 1, "release managers that must sign")
	case "publish-layout":
		str(&project, "project", "", "project name")
		str(&name, "name", "", "layout name")
		str(&file, "file", "", "the signed in-toto layout")
		fs.Var(&keys, "signing-key", "a release manager's private key `PEM` (repeat; delegated projects)")
		alias(fs, "key", "signing-key")
		force = fs.Bool("force", false, "publish even if the layout fails its checks (says so)")
	case "withdraw-layout":
		str(&project, "project", "", "project name")
		str(&name, "name", "", "layout name")
		count = fs.Int("version", 0, "the version to withdraw")
		str(&file, "reason", "", "why, for the record (required)")
		fs.Var(&keys, "signing-key", "a release manager's private key `PEM` (repeat; delegated projects)")
	case "rotate-key":
		count = fs.Int("count", 1, "number of new keys")
		threshold = fs.Int("threshold", 1, "new keys that must sign")
	case "status":
		asJSON = fs.Bool("json", false, "machine-readable output")
	case "mirror", "get", "layout":
		str(&root, "tuf-root", "", "trusted root.json `file`, obtained out of band")
		str(&url, "tuf", "", "repository `URL`, e.g. http://127.0.0.1:8080/tuf")
		str(&mirror, "tuf-mirror", "", "mirror `directory` (instead of --tuf)")
		str(&at, "tuf-at", "", "judge metadata expiry at this RFC 3339 time instead of now")
		tufCache = addTUFCacheFlag(fs)
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
			serve.TUFRoot(r.Dir()))
		return nil
	case "trust policy":
		s, err := online(tufrepo.Targets)
		if err != nil {
			return err
		}
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) error {
			return r.EditTrustRoot(func(tr *evident.TrustRoot) error {
				return tr.SetWitnessPolicy(*threshold, *maxDelay)
			}, s)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s (witness threshold %d, max log delay %v)\n", evident.TrustRootTarget, *threshold, *maxDelay)
		return nil
	case "trust add", "trust retire", "trust rotate":
		t, err := parseTime(*at)
		if err != nil {
			return err
		}
		if *kind == "" || *name == "" {
			return usagef("%s needs --kind (functionary-ca, tsa, log or layout-key) and --name", sub)
		}
		var value string
		if sub != "trust retire" {
			if *file == "" {
				return usagef("%s needs --file: %s", sub, kindWants(*kind))
			}
			b, err := os.ReadFile(*file)
			if err != nil {
				return usagef("--file: %v", err)
			}
			if value, err = trustValue(*kind, b); err != nil {
				return fmt.Errorf("%s: %w", *file, err)
			}
		}
		if len(domains) > 0 && *kind != evident.KindFunctionaryCA {
			return usagef("--trust-domain is for --kind %s only", evident.KindFunctionaryCA)
		}
		s, err := online(tufrepo.Targets)
		if err != nil {
			return err
		}
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) error {
			return r.EditTrustRoot(func(tr *evident.TrustRoot) error {
				added := *name
				switch sub {
				case "trust add":
					if err := tr.Add(*kind, *name, value, t); err != nil {
						return err
					}
				case "trust retire":
					return tr.Retire(*kind, *name, t)
				default:
					if *newName == "" {
						return usagef("trust rotate needs --new-name")
					}
					if len(domains) == 0 && *kind == evident.KindFunctionaryCA {
						// The new CA inherits the trust domains of the one it replaces.
						for _, t := range tr.FunctionaryCAs {
							if t.Name == *name {
								domains = t.TrustDomains
							}
						}
					}
					if err := tr.Retire(*kind, *name, t); err != nil {
						return err
					}
					if err := tr.Add(*kind, *newName, value, t); err != nil {
						return err
					}
					added = *newName
				}
				if len(domains) > 0 {
					return tr.SetTrustDomains(added, domains)
				}
				return nil
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
		s, err := layoutSigners(*keysDir, *project, keys)
		if err != nil {
			return err
		}
		var v tufrepo.LayoutVersion
		err = tufrepo.Update(*repoDir, now, func(r *tufrepo.Repo) (err error) {
			// Checked against the trust root it is published beside.
			tr, err := r.TrustRoot()
			if err != nil {
				return err
			}
			if err := gateLayout(e, layout, tr, now(), *force); err != nil {
				return err
			}
			v, err = r.PublishLayout(*project, *name, layout, s)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s (version %d)\n", v.Target, v.Version)
		return nil
	case "withdraw-layout":
		if *project == "" || *name == "" || *count < 1 || *file == "" {
			return usagef("withdraw-layout needs --project, --name, --version N and --reason TEXT")
		}
		return withdrawLayout(e, *repoDir, *keysDir, *project, *name, *count, *file, keys)
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
	if o.CacheDir, err = tufCacheDir(*tufCache, rootJSON); err != nil {
		return err
	}
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

// rotateKey gives a top-level role new keys (see tufrepo.RotateKeyFiles).
func rotateKey(e *env, repoDir, keysDir, role string, count, threshold int) error {
	stamp, err := tufrepo.RotateKeyFiles(repoDir, keysDir, role, count, threshold, time.Now)
	if err != nil {
		return err
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

// withdrawLayout marks a layout version withdrawn and publishes the index.
func withdrawLayout(e *env, repoDir, keysDir, project, name string, version int, reason string, keys []string) error {
	s, err := layoutSigners(keysDir, project, keys)
	if err != nil {
		return err
	}
	var v tufrepo.LayoutVersion
	err = tufrepo.Update(repoDir, time.Now, func(r *tufrepo.Repo) (err error) {
		v, err = r.WithdrawLayout(project, name, version, reason, s)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "withdrew %s (version %d of %s/%s): clients no longer pick it\n", v.Target, v.Version, project, name)
	return nil
}

// layoutSigners are the keys that publish project's layouts: the targets
// and online keys at hand, and the release managers' key files.
func layoutSigners(keysDir, project string, keys []string) (tufrepo.Signers, error) {
	s, err := tufrepo.LoadKeys(keysDir, tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		signer, err := tufrepo.LoadKeyFile(k)
		if err != nil {
			return nil, err
		}
		s[tufrepo.ProjectRole(project)] = append(s[tufrepo.ProjectRole(project)], signer)
	}
	return s, nil
}
