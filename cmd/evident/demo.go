package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/serve"
	"github.com/in-toto/in-toto-golang/in_toto"
)

const demoUsage = `
Usage: evident demo [--keep DIR] [--svid-ttl DURATION]

Tells the whole story on embedded defaults, in a temporary directory (or
--keep DIR, kept afterwards), in well under a minute:

  1. evident serve starts: log, TSA, TUF repository, development SPIFFE CA;
  2. a release manager puts a layout key in the trust root and publishes a
     three-step layout (checkout → build → package) through TUF;
  3. the CI steps run with SVIDs that live for seconds; each link is signed,
     timestamped and logged;
  4. a verifier mirrors TUF and fetches the bundles, then waits until every
     SVID has expired;
  5. offline verification succeeds; a tampered artifact fails, with its reason;
  6. the release manager adds a step to the layout and rotates a TUF key;
     old evidence still verifies against the layout of its time, new
     evidence against the new one.

Everything it does uses the same commands a user runs, and it prints
them ready to paste into a shell (with --keep DIR, whose files they name),
after the export lines that give them the server.
`

// demo is the state of one demo run.
type demo struct {
	ctx   context.Context
	e     *env
	dir   string
	srv   *serve.Server
	repo  string
	keys  string
	root  string
	tsa   string
	ttl   time.Duration
	lkey  string // the layout key's file
	steps int
	addr  string
	cwd   string // where the commands run, as "cd" lines said
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", demoUsage)
	dirFlag := fs.String("keep", "", "work in this `directory` and keep it (default: a temporary one, removed)")
	alias(fs, "dir", "keep")
	// 6s, not less: a signer must be valid over its token's whole genTime ±
	// 1s, and a slow or loaded machine may take a second or two from the
	// SVID to the token.
	ttl := fs.Duration("svid-ttl", 6*time.Second, "lifetime of the CI jobs' SVIDs")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := *dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "evident-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	start := time.Now()
	d := &demo{ctx: ctx, e: e, dir: dir, ttl: *ttl}
	if err := d.story(); err != nil {
		return err
	}
	d.say("The demo took %v. Everything it did is in the commands above; see the README for each user's journey.", time.Since(start).Round(100*time.Millisecond))
	if *dirFlag == "" {
		d.say("Its files are gone: run evident demo --keep DIR to keep them, and paste the commands while evident serve --data %s runs.", shellQuote(filepath.Join("DIR", "server")))
	} else {
		d.say("Its files are in %s; to paste the commands, first start its server again: evident serve --data %s --addr %s", shellQuote(dir), shellQuote(filepath.Join(dir, "server")), d.addr)
	}
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, format+"\n", args...)
}

func (d *demo) chapter(title string) {
	d.steps++
	fmt.Fprintf(d.e.stdout, "\n== %d. %s\n", d.steps, title)
}

// cli runs an evident command in this process, as a user would run it,
// and returns its output; want is the exit status expected.
func (d *demo) cli(want int, args ...string) (string, error) {
	var out bytes.Buffer
	env := &env{stdin: d.e.stdin, stdout: &out, stderr: &out, getenv: func(k string) string {
		switch k {
		case "EVIDENT_SERVER":
			return d.srv.URL()
		case "EVIDENT_LOG_KEY":
			return d.srv.VerifierKey
		}
		return os.Getenv(k)
	}}
	if here, _ := os.Getwd(); here != d.cwd {
		d.cwd = here
		fmt.Fprintf(d.e.stdout, "   $ cd %s\n", shellQuote(here))
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	fmt.Fprintf(d.e.stdout, "   $ evident %s\n", strings.Join(quoted, " "))
	if code := run(d.ctx, env, args); code != want {
		return out.String(), fmt.Errorf("evident %s exited %d, want %d:\n%s", strings.Join(args, " "), code, want, out.String())
	}
	return out.String(), nil
}

func (d *demo) story() error {
	d.chapter("The operator starts evident serve on embedded defaults")
	data := serve.DataDir(filepath.Join(d.dir, "server"))
	srv, err := serve.Open(serve.Config{DataDir: string(data), Addr: "127.0.0.1:0", DevSVID: true, DevSVIDTTL: d.ttl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	if err := srv.Start(); err != nil {
		return err
	}
	d.srv = srv
	d.repo, d.keys = srv.TUFDir(), data.TUFKeys()
	d.root = serve.TUFRoot(d.repo)
	d.tsa = data.TSAChain()
	d.addr = strings.TrimPrefix(srv.URL(), "http://")
	d.say("   log, RFC 3161 TSA, TUF repository and a development SPIFFE CA at %s", srv.URL())
	d.say("   the commands below find the server and its log key in the environment:")
	d.say("   $ export EVIDENT_SERVER=%s", shellQuote(srv.URL()))
	d.say("   $ export EVIDENT_LOG_KEY=%s", shellQuote(srv.VerifierKey))

	d.chapter("The release manager publishes a layout key and a three-step layout through TUF")
	rm := filepath.Join(d.dir, "release-manager")
	os.MkdirAll(rm, 0o755)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyPEM, _ := pemfile.EncodePrivateKey(priv)
	d.lkey = filepath.Join(rm, "layout-key.pem")
	if err := os.WriteFile(d.lkey, keyPEM, 0o600); err != nil {
		return err
	}
	pubPEM, _ := pemfile.EncodePublicKey(priv.Public())
	os.WriteFile(filepath.Join(rm, "layout-key.pub"), pubPEM, 0o644)
	d.say("   (its layout key: %s, made like openssl genpkey -algorithm ed25519)", shellQuote(d.lkey))
	if _, err := d.cli(0, "tuf", "trust", "add", "--repo", d.repo, "--keys", d.keys, "--kind", "layout-key", "--name", "release-manager",
		"--file", filepath.Join(rm, "layout-key.pub")); err != nil {
		return err
	}
	if err := d.publishLayout(rm, []string{"checkout", "build", "package"}); err != nil {
		return err
	}

	d.chapter(fmt.Sprintf("CI runs the steps; each job's SVID lives %v", d.ttl))
	ci := filepath.Join(d.dir, "ci")
	if err := d.ci(ci, []string{"checkout", "build", "package"}); err != nil {
		return err
	}
	v1At := time.Now()

	d.chapter("The verifier mirrors TUF and fetches the bundles, for an air-gapped machine")
	verifier := filepath.Join(d.dir, "verifier")
	mirror, bundles := filepath.Join(verifier, "tuf-mirror"), filepath.Join(verifier, "bundles")
	if _, err := d.cli(0, "tuf", "mirror", "--tuf", srv.URL()+"/tuf", "--tuf-root", d.root, "--out", mirror); err != nil {
		return err
	}
	for _, f := range []string{"src/main.c", "app.tar"} {
		sum, err := fileSHA256(filepath.Join(ci, f))
		if err != nil {
			return err
		}
		out, err := d.cli(0, "bundle", "fetch", "--artifact", "sha256:"+hex.EncodeToString(sum), "--out", bundles)
		if err != nil {
			return err
		}
		d.say("%s", indent(out))
	}
	os.WriteFile(filepath.Join(verifier, "app.tar"), mustRead(filepath.Join(ci, "app.tar")), 0o644)

	d.chapter("Time passes: every SVID has expired")
	time.Sleep(d.ttl + time.Second)
	d.say("   (the SVIDs lived %v; certificates will be checked at their timestamps, not now)", d.ttl)

	d.chapter("Offline verification succeeds")
	out, err := d.cli(0, "verify", "--tuf-root", d.root, "--tuf-mirror", mirror, "--layout", "demo/release", "--bundles", bundles,
		"--artifact", filepath.Join(verifier, "app.tar"))
	if err != nil {
		return err
	}
	d.say("%s", indent(out))

	d.chapter("A tampered artifact fails, and says why")
	os.WriteFile(filepath.Join(verifier, "app.tar"), []byte("not what was built"), 0o644)
	out, err = d.cli(1, "verify", "--tuf-root", d.root, "--tuf-mirror", mirror, "--layout", "demo/release", "--bundles", bundles,
		"--artifact", filepath.Join(verifier, "app.tar"))
	if err != nil {
		return err
	}
	d.say("%s", indent(failLines(out)))

	d.chapter("The release manager adds a test step and rotates the TUF timestamp key")
	time.Sleep(time.Second) // the new layout version is published in a later second
	if err := d.publishLayout(rm, []string{"checkout", "build", "test", "package"}); err != nil {
		return err
	}
	if _, err := d.cli(0, "tuf", "rotate-key", "timestamp", "--repo", d.repo, "--keys", d.keys); err != nil {
		return err
	}
	ci2 := filepath.Join(d.dir, "ci-v2")
	first := srv.Log.Head().Size
	if err := d.ci(ci2, []string{"checkout", "build", "test", "package"}); err != nil {
		return err
	}
	last := srv.Log.Head().Size
	mirror2, bundles2 := filepath.Join(verifier, "tuf-mirror-2"), filepath.Join(verifier, "bundles-2")
	if _, err := d.cli(0, "tuf", "mirror", "--tuf", srv.URL()+"/tuf", "--tuf-root", d.root, "--out", mirror2); err != nil {
		return err
	}
	for idx := first; idx < last; idx++ {
		if _, err := d.cli(0, "bundle", "fetch", "--index", fmt.Sprint(idx), "--out", bundles2); err != nil {
			return err
		}
	}
	time.Sleep(d.ttl + time.Second)

	d.chapter("Old evidence verifies against the layout of its time, new evidence against the new one")
	old := v1At.UTC().Format(time.RFC3339Nano)
	out, err = d.cli(0, "verify", "--tuf-root", d.root, "--tuf-mirror", mirror2, "--layout", "demo/release", "--bundles", bundles, "--at", old)
	if err != nil {
		return err
	}
	d.say("%s", indent(firstAndLast(out)))
	out, err = d.cli(0, "verify", "--tuf-root", d.root, "--tuf-mirror", mirror2, "--layout", "demo/release", "--bundles", bundles2)
	if err != nil {
		return err
	}
	d.say("%s", indent(firstAndLast(out)))
	out, err = d.cli(1, "verify", "--tuf-root", d.root, "--tuf-mirror", mirror2, "--layout", "demo/release", "--bundles", bundles)
	if err != nil {
		return err
	}
	d.say("   and the old evidence does not meet the new layout, which wants a test step:")
	d.say("%s", indent(failLines(out)))
	return nil
}

// publishLayout signs and publishes a layout whose steps each take the
// previous step's products, each step signed by spiffe://evident.dev/ci/<step>.
func (d *demo) publishLayout(dir string, steps []string) error {
	var ss []in_toto.Step
	for i, name := range steps {
		mats := [][]string{{"DISALLOW", "*"}}
		prods := [][]string{{"CREATE", "src/*"}, {"DISALLOW", "*"}}
		if i > 0 {
			mats = [][]string{{"MATCH", "*", "WITH", "PRODUCTS", "FROM", steps[i-1]}, {"DISALLOW", "*"}}
		}
		switch name {
		case "build":
			prods = [][]string{{"CREATE", "app"}, {"DISALLOW", "*"}}
		case "test":
			prods = [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"CREATE", "test-report.txt"}, {"DISALLOW", "*"}}
			mats = [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}
		case "package":
			prods = [][]string{{"CREATE", "app.tar"}, {"DISALLOW", "*"}}
			mats = [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}
		}
		ss = append(ss, in_toto.Step{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{},
			CertificateConstraints: []in_toto.CertificateConstraint{{CommonName: "*", DNSNames: []string{"*"}, Emails: []string{"*"},
				Organizations: []string{"*"}, URIs: []string{"spiffe://evident.dev/ci/" + name}, Roots: []string{"*"}}},
			SupplyChainItem: in_toto.SupplyChainItem{Name: name, ExpectedMaterials: mats, ExpectedProducts: prods}})
	}
	mb := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: time.Now().AddDate(0, 3, 0).UTC().Format(time.RFC3339),
		Keys: map[string]in_toto.Key{}, Steps: ss, Inspect: []in_toto.Inspection{}}, Signatures: []in_toto.Signature{}}
	b, _ := json.MarshalIndent(mb, "", "  ")
	p := filepath.Join(dir, fmt.Sprintf("release-%d-steps.layout", len(steps)))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return err
	}
	d.say("   (the layout, unsigned, in %s: %s, each signed by spiffe://evident.dev/ci/<step>)", shellQuote(p), strings.Join(steps, " → "))
	if _, err := d.cli(0, "layout", "sign", p, "--signing-key", d.lkey); err != nil {
		return err
	}
	out, err := d.cli(0, "tuf", "publish-layout", "--repo", d.repo, "--keys", d.keys, "--project", "demo", "--name", "release", "--file", p)
	d.say("%s", indent(out))
	return err
}

// ci runs the steps in dir with evident run, each as its own job with its
// own short-lived development SVID.
func (d *demo) ci(dir string, steps []string) error {
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	here, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		return err
	}
	defer os.Chdir(here)
	cmds := map[string][]string{
		"checkout": {"-p", "src", "--", "sh", "-c", "printf 'int main(void) { return 0; }\\n' > src/main.c"},
		"build":    {"-m", "src", "-p", "app", "--", "sh", "-c", "cat src/main.c > app"},
		"test":     {"-m", "app", "-p", "app", "-p", "test-report.txt", "--", "sh", "-c", "test -s app && echo ok > test-report.txt"},
		"package":  {"-m", "app", "-p", "app.tar", "--", "tar", "cf", "app.tar", "app"},
	}
	for _, s := range steps {
		out, err := d.cli(0, append([]string{"run", "--step", s, "--tsa-roots", d.tsa}, cmds[s]...)...)
		if err != nil {
			return err
		}
		d.say("%s", indent(lastLine(out)))
	}
	return nil
}

func mustRead(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "     " + strings.ReplaceAll(s, "\n", "\n     ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func firstAndLast(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[0] + "\n…\n" + lines[len(lines)-1]
}

func failLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "FAIL") || strings.HasPrefix(l, "layout ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
