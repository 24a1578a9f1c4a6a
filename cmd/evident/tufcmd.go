package main

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/strictjson"
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
  trust policy --tsa-threshold N [--max-tsa-skew D]
                      require tokens from N distinct TSAs of the trust root on every entry, their
                      genTimes at most D apart (default unbounded); the policies are set independently
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
                      (from --tuf, default $EVIDENT_SERVER/tuf)
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

// tufSubcommands are the subcommands of evident tuf, each with its own flags.
var tufSubcommands = map[string]func(e *env, sub string, args []string) error{
	"init":            tufInit,
	"trust add":       tufTrustEdit,
	"trust retire":    tufTrustEdit,
	"trust rotate":    tufTrustEdit,
	"trust policy":    tufTrustPolicy,
	"delegate":        tufDelegate,
	"publish-layout":  tufPublishLayout,
	"withdraw-layout": tufWithdrawLayout,
	"rotate-key":      tufRotateKey,
	"status":          tufStatus,
	"mirror":          tufMirror,
	"get":             tufGet,
	"layout":          tufLayout,
}

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
	run, ok := tufSubcommands[sub]
	if !ok {
		return usagef("unknown tuf subcommand %q (run evident tuf -h)", sub)
	}
	return run(e, sub, args)
}

// tufFlags is a subcommand's flag set.
func tufFlags(e *env, sub string) *flag.FlagSet {
	return newFlags(e, "tuf "+sub, subUsage(tufUsage, "tuf", sub))
}

// publisher is what the publishing subcommands share: the repository and
// its keys directory (--repo, --keys).
type publisher struct {
	repo, keys *string
}

func addPublisherFlags(fs *flag.FlagSet) publisher {
	return publisher{
		repo: fs.String("repo", serve.DefaultDataDir.TUF(), "repository `directory`"),
		keys: fs.String("keys", serve.DefaultDataDir.TUFKeys(), "keys `directory`"),
	}
}

// online loads the keys of roles and the online roles' keys.
func (p publisher) online(roles ...string) (tufrepo.Signers, error) {
	return tufrepo.LoadKeys(*p.keys, append(roles, tufrepo.Snapshot, tufrepo.Timestamp)...)
}

// editTrustRoot applies edit to the trust root and publishes it with the
// keys of the targets and online roles.
func (p publisher) editTrustRoot(edit func(*evident.TrustRoot) error) error {
	s, err := p.online(tufrepo.Targets)
	if err != nil {
		return err
	}
	return tufrepo.Update(*p.repo, time.Now, func(r *tufrepo.Repo) error {
		return r.EditTrustRoot(edit, s)
	})
}

func tufInit(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	count := fs.Int("root-keys", 1, "number of root keys")
	threshold := fs.Int("root-threshold", 1, "root keys that must sign")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := tufrepo.Init(*p.repo, *p.keys, tufrepo.InitOptions{RootKeys: *count, RootThreshold: *threshold})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created %s (keys in %s); clients start from %s\n", r.Dir(), *p.keys, serve.TUFRoot(r.Dir()))
	return nil
}

func tufTrustPolicy(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	threshold := fs.Int("witness-threshold", 0, "distinct witnesses that must cosign each bundle's checkpoint")
	maxDelay := fs.Duration("max-log-delay", time.Hour, "longest time from a signature's timestamp to its first witnessed checkpoint (0: unbounded)")
	tsaThreshold := fs.Int("tsa-threshold", 1, "distinct TSAs of the trust root whose tokens must verify on each entry")
	maxSkew := fs.Duration("max-tsa-skew", 0, "largest spread between the genTimes of the tokens that count (0: unbounded)")
	if err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	witness, tsas := set["witness-threshold"] || set["max-log-delay"], set["tsa-threshold"] || set["max-tsa-skew"]
	if !witness && !tsas {
		return usagef("trust policy sets --witness-threshold and --max-log-delay, or --tsa-threshold and --max-tsa-skew")
	}
	var said []string
	err := p.editTrustRoot(func(tr *evident.TrustRoot) error {
		said = said[:0]
		if witness {
			k := tr.WitnessThreshold
			if set["witness-threshold"] {
				k = *threshold
			}
			if err := tr.SetWitnessPolicy(k, *maxDelay); err != nil {
				return err
			}
			said = append(said, fmt.Sprintf("witness threshold %d, max log delay %v", k, *maxDelay))
		}
		if tsas {
			k, skew := tr.TSAPolicy()
			if set["tsa-threshold"] {
				k = *tsaThreshold
			}
			if set["max-tsa-skew"] {
				skew = *maxSkew
			}
			if err := tr.SetTSAPolicy(k, skew); err != nil {
				return err
			}
			said = append(said, fmt.Sprintf("TSA threshold %d, max TSA skew %v", k, skew))
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "published %s (%s)\n", evident.TrustRootTarget, strings.Join(said, "; "))
	return nil
}

// trustEdit is a trust add, retire or rotate: its flags, parsed.
type trustEdit struct {
	sub, kind, name, newName, value string
	at                              time.Time
	domains                         listFlag
}

// tufTrustEdit is trust add, trust retire and trust rotate.
func tufTrustEdit(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	t := &trustEdit{sub: sub}
	kind := fs.String("kind", "", "functionary-ca, tsa, log, layout-key or witness")
	name := fs.String("name", "", "the item's name")
	var file, at, newName *string
	switch sub {
	case "trust add":
		file = fs.String("file", "", "the item: PEM, or the log's note verifier key")
		at = fs.String("start", "", "valid from (RFC 3339; default now)")
		fs.Var(&t.domains, "trust-domain", "functionary-ca: a SPIFFE trust `domain` the CA may vouch for (repeat)")
	case "trust retire":
		at = fs.String("end", "", "valid until (RFC 3339; default now)")
	case "trust rotate":
		file = fs.String("file", "", "the new item: PEM, or the log's note verifier key")
		newName = fs.String("new-name", "", "the new item's name")
		fs.Var(&t.domains, "trust-domain", "functionary-ca: a SPIFFE trust `domain` the CA may vouch for (repeat; default: the old CA's)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if t.at, err = parseTime(deref(at), time.Now()); err != nil {
		return err
	}
	t.kind, t.name, t.newName = *kind, *name, deref(newName)
	if t.kind == "" || t.name == "" {
		return usagef("%s needs --kind (functionary-ca, tsa, log or layout-key) and --name", sub)
	}
	if file != nil {
		if t.value, err = readTrustValue(sub, t.kind, *file); err != nil {
			return err
		}
	}
	if len(t.domains) > 0 && t.kind != evident.KindFunctionaryCA {
		return usagef("--trust-domain is for --kind %s only", evident.KindFunctionaryCA)
	}
	if err := p.editTrustRoot(t.apply); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "published %s (%s)\n", evident.TrustRootTarget, sub)
	return nil
}

// readTrustValue reads --file and checks it is a value of kind.
func readTrustValue(sub, kind, file string) (string, error) {
	if file == "" {
		return "", usagef("%s needs --file: %s", sub, kindWants(kind))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usagef("--file: %v", err)
	}
	value, err := trustValue(kind, b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return value, nil
}

// apply makes the edit on the trust root.
func (t *trustEdit) apply(tr *evident.TrustRoot) error {
	added := t.name
	switch t.sub {
	case "trust add":
		if err := tr.Add(t.kind, t.name, t.value, t.at); err != nil {
			return err
		}
	case "trust retire":
		return tr.Retire(t.kind, t.name, t.at)
	default:
		if t.newName == "" {
			return usagef("trust rotate needs --new-name")
		}
		if len(t.domains) == 0 && t.kind == evident.KindFunctionaryCA {
			// The new CA inherits the trust domains of the one it replaces.
			for _, ca := range tr.FunctionaryCAs {
				if ca.Name == t.name {
					t.domains = ca.TrustDomains
				}
			}
		}
		if err := tr.Retire(t.kind, t.name, t.at); err != nil {
			return err
		}
		if err := tr.Add(t.kind, t.newName, t.value, t.at); err != nil {
			return err
		}
		added = t.newName
	}
	if len(t.domains) > 0 {
		return tr.SetTrustDomains(added, t.domains)
	}
	return nil
}

func tufDelegate(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	project := fs.String("project", "", "project name")
	var keys listFlag
	fs.Var(&keys, "delegate-key", "a release manager's public key `PEM` (repeat)")
	alias(fs, "key", "delegate-key")
	threshold := fs.Int("threshold", 1, "release managers that must sign")
	if err := parse(fs, args); err != nil {
		return err
	}
	var pubs []crypto.PublicKey
	for _, k := range keys {
		pub, err := readPublicKey(k)
		if err != nil {
			return err
		}
		pubs = append(pubs, pub)
	}
	s, err := p.online(tufrepo.Targets)
	if err != nil {
		return err
	}
	err = tufrepo.Update(*p.repo, time.Now, func(r *tufrepo.Repo) error {
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
}

func tufPublishLayout(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	project := fs.String("project", "", "project name")
	name := fs.String("name", "", "layout name")
	file := fs.String("file", "", "the signed in-toto layout")
	var keys listFlag
	fs.Var(&keys, "signing-key", "a release manager's private key `PEM` (repeat; delegated projects)")
	alias(fs, "key", "signing-key")
	force := fs.Bool("force", false, "publish even if the layout fails its checks (says so)")
	if err := parse(fs, args); err != nil {
		return err
	}
	layout, err := os.ReadFile(*file)
	if err != nil {
		return usagef("--file: %v", err)
	}
	s, err := layoutSigners(*p.keys, *project, keys)
	if err != nil {
		return err
	}
	var v tufrepo.LayoutVersion
	err = tufrepo.Update(*p.repo, time.Now, func(r *tufrepo.Repo) (err error) {
		// Checked against the trust root it is published beside.
		tr, err := r.TrustRoot()
		if err != nil {
			return err
		}
		if err := gateLayout(e, layout, tr, time.Now(), *force); err != nil {
			return err
		}
		v, err = r.PublishLayout(*project, *name, layout, s)
		return err
	})
	if err != nil {
		return delegatedKeysError(*project, err)
	}
	fmt.Fprintf(e.stdout, "published %s (version %d)\n", v.Target, v.Version)
	return nil
}

func tufWithdrawLayout(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	project := fs.String("project", "", "project name")
	name := fs.String("name", "", "layout name")
	version := fs.Int("version", 0, "the version to withdraw")
	reason := fs.String("reason", "", "why, for the record (required)")
	var keys listFlag
	fs.Var(&keys, "signing-key", "a release manager's private key `PEM` (repeat; delegated projects)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *project == "" || *name == "" || *version < 1 || *reason == "" {
		return usagef("withdraw-layout needs --project, --name, --version N and --reason TEXT")
	}
	return withdrawLayout(e, *p.repo, *p.keys, *project, *name, *version, *reason, keys)
}

func tufRotateKey(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	count := fs.Int("count", 1, "number of new keys")
	threshold := fs.Int("threshold", 1, "new keys that must sign")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("rotate-key takes one ROLE: root, targets, snapshot or timestamp")
	}
	return rotateKey(e, *p.repo, *p.keys, fs.Arg(0), *count, *threshold)
}

func tufStatus(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	p := addPublisherFlags(fs)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := parse(fs, args); err != nil {
		return err
	}
	var st []tufrepo.RoleStatus
	err := tufrepo.Update(*p.repo, time.Now, func(r *tufrepo.Repo) error { st = r.Status(); return nil })
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

// reader is what the reading subcommands share: the trusted root, where
// the repository is, and expiry judged at --tuf-at.
type reader struct {
	root, url, mirror, at, cache *string
}

func addReaderFlags(fs *flag.FlagSet) reader {
	return reader{
		root:   fs.String("tuf-root", "", "trusted root.json `file`, obtained out of band"),
		url:    fs.String("tuf", "", "repository `URL`, e.g. http://127.0.0.1:8080/tuf"),
		mirror: fs.String("tuf-mirror", "", "mirror `directory` (instead of --tuf)"),
		at:     fs.String("tuf-at", "", "judge metadata expiry at this RFC 3339 time instead of now"),
		cache:  addTUFCacheFlag(fs),
	}
}

// options are the client options of the flags; a --tuf-at is said on stderr.
func (rd reader) options(e *env) (tufrepo.ClientOptions, error) {
	if *rd.root == "" {
		return tufrepo.ClientOptions{}, usagef("--tuf-root is required: a root.json obtained out of band")
	}
	rootJSON, err := os.ReadFile(*rd.root)
	if err != nil {
		return tufrepo.ClientOptions{}, err
	}
	o := tufrepo.ClientOptions{Root: rootJSON, URL: *rd.url, MirrorDir: *rd.mirror}
	if o.CacheDir, err = tufCacheDir(*rd.cache, rootJSON); err != nil {
		return tufrepo.ClientOptions{}, err
	}
	if *rd.at != "" {
		if o.At, err = parseTime(*rd.at, time.Time{}); err != nil {
			return tufrepo.ClientOptions{}, err
		}
		fmt.Fprintf(e.stderr, "evident: note: TUF metadata expiry judged at %s, not now (--tuf-at)\n", o.At.UTC().Format(time.RFC3339))
	}
	return o, nil
}

func tufMirror(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	rd := addReaderFlags(fs)
	out := fs.String("out", "", "mirror: output `directory`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("mirror needs --out DIR")
	}
	if *rd.mirror != "" {
		return usagef("mirror copies from a repository URL (--tuf, default $EVIDENT_SERVER/tuf), not from --tuf-mirror")
	}
	o, err := rd.options(e)
	if err != nil {
		return err
	}
	if o.URL == "" {
		// As every command that goes online: the server's repository.
		o.URL = serverURL(e, "") + "/tuf"
	}
	n, err := tufrepo.Mirror(o, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "mirrored %d targets into %s, and verified the copy\n", n, *out)
	return nil
}

func tufGet(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	rd := addReaderFlags(fs)
	format := fs.String("format", "", "get: sigstore-trusted-root converts the trust root for Sigstore verifiers")
	var intermediates listFlag
	fs.Var(&intermediates, "intermediates-from", "get --format sigstore-trusted-root: a `BUNDLE` whose signer's intermediates to include (repeat)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkGetFormat(sub, *format, intermediates, fs.Args()); err != nil {
		return err
	}
	o, err := rd.options(e)
	if err != nil {
		return err
	}
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
}

func tufLayout(e *env, sub string, args []string) error {
	fs := tufFlags(e, sub)
	rd := addReaderFlags(fs)
	project := fs.String("project", "", "layout: project")
	name := fs.String("name", "", "layout: name")
	at := fs.String("at", "", "layout: the version current at this RFC 3339 time (default latest)")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := rd.options(e)
	if err != nil {
		return err
	}
	when, err := parseTime(*at, time.Time{})
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

// rotateKey gives a top-level role new keys (see tufrepo.RotateKeyFiles).
func rotateKey(e *env, repoDir, keysDir, role string, count, threshold int) error {
	stamp, err := tufrepo.RotateKeyFiles(repoDir, keysDir, role, count, threshold, time.Now)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rotated %s to %d new key(s), threshold %d; old key files kept as *.retired-%s\n", role, count, threshold, stamp)
	return nil
}

// readPublicKey reads a public key, or the public half of a private key,
// from a PEM file.
func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if k, err := pemfile.ParsePrivateKey(b); err == nil {
		return k.Public(), nil
	}
	pub, err := pemfile.ParsePublicKey(b)
	if errors.Is(err, pemfile.ErrNoPEM) {
		if k, err := parseSSLibEd25519(b); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("%s: no PEM block, nor an Ed25519 public key in securesystemslib JSON", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// parseSSLibEd25519 reads an Ed25519 public key in the securesystemslib
// JSON form that the reference in-toto implementation writes
// (in-toto-keygen -t ed25519): {"keytype": "ed25519", "scheme": "ed25519",
// "keyid_hash_algorithms": […], "keyval": {"public": "<64 hex>"}}, strictly.
func parseSSLibEd25519(b []byte) (ed25519.PublicKey, error) {
	var k struct {
		KeyType  string   `json:"keytype"`
		Scheme   string   `json:"scheme"`
		HashAlgs []string `json:"keyid_hash_algorithms"`
		KeyVal   struct {
			Public string `json:"public"`
		} `json:"keyval"`
	}
	doc, err := strictjson.Unmarshal(b, &k, strictjson.Limits{MaxSize: 4 << 10, MaxDepth: 3})
	if err == nil {
		err = strictjson.Faithful(doc, k, "$", true)
	}
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(k.KeyVal.Public)
	if k.KeyType != "ed25519" || k.Scheme != "ed25519" || err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("not an ed25519 key of scheme ed25519 with a 32-byte public key in hex")
	}
	return ed25519.PublicKey(raw), nil
}

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
		return delegatedKeysError(project, err)
	}
	fmt.Fprintf(e.stdout, "withdrew %s (version %d of %s/%s): clients no longer pick it\n", v.Target, v.Version, project, name)
	return nil
}

// delegatedKeysError says what to do when a delegated project's role could
// not be signed: give the release managers' keys.
func delegatedKeysError(project string, err error) error {
	role := tufrepo.ProjectRole(project)
	if errors.Is(err, tufrepo.ErrThreshold) && strings.Contains(err.Error(), role) {
		return fmt.Errorf("project %s is delegated to its release managers (role %s): give --signing-key with enough of their private keys (%w)", project, role, err)
	}
	return err
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
