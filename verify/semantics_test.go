package verify_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// inject inserts member (`"key":value,`) at the start of the object that
// follows `"signed":` in a Metablock, leaving every other byte alone.
func inject(t *testing.T, mb []byte, member string) []byte {
	t.Helper()
	loc := regexp.MustCompile(`"signed":\s*\{`).FindIndex(mb)
	if loc == nil {
		t.Fatalf("no signed object in %s", mb)
	}
	return append(append(append([]byte(nil), mb[:loc[1]]...), member...), mb[loc[1]:]...)
}

func ignoredChecks(rep *verify.Report) []verify.Check {
	var out []verify.Check
	for _, c := range rep.Checks {
		if c.Ignored {
			out = append(out, c)
		}
	}
	return out
}

// TestDuplicateProducts covers P1 for links: an extra "products" before
// the real one leaves the canonical payload (last key wins), the entry's
// digest, the signature and the inclusion proof unchanged, yet Go's decoder
// would merge the two maps and add src/evil. The bundle is refused as
// evidence, so the step it claimed is missing, and --artifact src/evil
// cannot pass.
func TestDuplicateProducts(t *testing.T) {
	f := newChain(t)
	good := f.goodBundles()
	evil := sha256.Sum256([]byte("evil"))
	tampered := *good[0].Bundle
	tampered.Link = inject(t, good[0].Bundle.Link, `"products":{"src/evil":{"sha256":"`+hex.EncodeToString(evil[:])+`"}},`)
	if _, payload, err := verify.ParseLink(tampered.Link); err == nil {
		t.Fatalf("ParseLink accepted a duplicated products (payload %s)", payload)
	}
	_, _, err := verify.ParseLink(tampered.Link)
	if !errors.Is(err, verify.ErrNotFaithful) || !errors.Is(err, strictjson.ErrDuplicateKey) || !strings.Contains(err.Error(), `duplicate key "products" at $.signed`) {
		t.Errorf("ParseLink(duplicate products) = %v, want a duplicate key at $.signed", err)
	}
	bundles := []verify.NamedBundle{{Name: "checkout.tampered", Bundle: &tampered}, good[1], good[2]}
	rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: bundles,
		At: t0.AddDate(0, 1, 0), Artifacts: map[string][]byte{"src/evil": evil[:]}})
	if !errors.Is(err, verify.ErrStep) || !errors.Is(err, verify.ErrLinkMismatch) || !strings.Contains(err.Error(), `duplicate key "products"`) {
		t.Errorf("SupplyChain(duplicate products) = %v, want step checkout unmet, naming the duplicate key", err)
	}
	if ig := ignoredChecks(rep); len(ig) != 1 || ig[0].Check != "checkout.tampered: link" {
		t.Errorf("ignored checks = %+v, want the tampered link", ig)
	}
}

// TestCaseVariantKey covers P1: encoding/json matches keys without regard
// to case, so "Products" beside "products" would be merged into one field
// while canonical JSON keeps two; the link is refused.
func TestCaseVariantKey(t *testing.T) {
	for _, c := range []struct{ name, link, msg string }{
		{"case variant", `{"signed":{"_type":"link","name":"s","materials":{},"products":{"a":{"sha256":"00"}},"Products":{"b":{"sha256":"11"}},"byproducts":{},"command":[],"environment":{}},"signatures":[]}`, `$.signed.Products is not carried`},
		{"case variant outside signed", `{"signed":{"_type":"link","name":"s","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}},"Signed":{},"signatures":[]}`, `decoding is not faithful`},
		{"duplicate in byproducts", `{"signed":{"_type":"link","name":"s","materials":{},"products":{},"byproducts":{"x":{"y":1,"y":2}},"command":[],"environment":{}},"signatures":[]}`, `duplicate key "y" at $.signed.byproducts.x`},
		{"duplicate signatures", `{"signed":{"_type":"link","name":"s","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}},"signatures":[],"signatures":[]}`, `duplicate key "signatures" at $`},
		{"trailing data", `{"signed":{"_type":"link","name":"s","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}},"signatures":[]} {}`, `trailing data`},
	} {
		if _, _, err := verify.ParseLink([]byte(c.link)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: ParseLink = %v, want %q", c.name, err, c.msg)
		}
	}
}

// TestDuplicateSteps covers P1 for layouts: a "steps" array before the
// real one, whose step accepts any certificate, keeps the layout's
// signature valid (canonical JSON keeps the last) but would decode into the
// real steps' elements in Go. The layout is refused, failing closed.
func TestDuplicateSteps(t *testing.T) {
	f := newChain(t)
	lb := f.layout(nil)
	wide := `"steps":[{"_type":"step","name":"build","threshold":1,"pubkeys":[],"expected_command":[],"expected_materials":[],"expected_products":[],` +
		`"cert_constraints":[{"common_name":"*","dns_names":["*"],"emails":["*"],"organizations":["*"],"uris":["*"],"roots":["*"]}]}],`
	tampered := inject(t, lb, wide)
	lr := verify.CheckLayout(tampered, f.trust, t0.AddDate(0, 1, 0))
	if lr.OK() || lr.Problems[0].Check != verify.CheckLayoutParse || !strings.Contains(lr.Problems[0].Err.Error(), `duplicate key "steps" at $.signed`) {
		t.Errorf("CheckLayout(duplicate steps) = %+v", lr.Problems)
	}
	rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: tampered, Bundles: f.goodBundles(), At: t0.AddDate(0, 1, 0)})
	if !errors.Is(err, verify.ErrLayout) || rep.Checks[len(rep.Checks)-1].Check != "layout" {
		t.Errorf("SupplyChain(duplicate steps) = %v, %+v", err, rep.Checks)
	}
}

// TestIgnoredBundles covers A1: bundles anyone can log — for no step of the
// layout, by an unauthorised SPIFFE ID, tampered, or pairing one entry with
// another's link — are reported and ignored; the valid chain verifies.
func TestIgnoredBundles(t *testing.T) {
	f := newChain(t)
	good := f.goodBundles()
	src := map[string]in_toto.HashObj{"src/main.go": hashObj("main"), "src/go.mod": hashObj("mod")}
	app := map[string]in_toto.HashObj{"app": hashObj("binary")}
	tampered := *good[1].Bundle
	tampered.Link = inject(t, good[1].Bundle.Link, `"products":{"lib/evil.so":{"sha256":"00"}},`)
	swapped := *good[1].Bundle
	swapped.Link = good[2].Bundle.Link
	extra := []verify.NamedBundle{
		f.bundle("deploy", "spiffe://example.org/ci/deploy", nil, nil),
		f.bundle("build", "spiffe://example.org/ci/intruder", src, map[string]in_toto.HashObj{"app": hashObj("backdoor")}),
		{Name: "tampered", Bundle: &tampered},
		{Name: "swapped", Bundle: &swapped},
	}
	tar := sha256.Sum256([]byte("tarball"))
	for _, order := range [][]verify.NamedBundle{append(extra, good...), append(append([]verify.NamedBundle(nil), good...), extra...)} {
		rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: order,
			At: t0.AddDate(0, 1, 0), Artifacts: map[string][]byte{"app.tar": tar[:]}})
		if err != nil || !rep.OK {
			t.Fatalf("SupplyChain with ignorable bundles = %v\n%+v", err, rep.Checks)
		}
		ig := ignoredChecks(rep)
		want := []string{`"deploy" is no step`, "meets no certificate constraint", `duplicate key "products"`, "digest is not the entry's"}
		if len(ig) != len(want) {
			t.Fatalf("ignored = %+v, want %d", ig, len(want))
		}
		for _, w := range want {
			found := false
			for _, c := range ig {
				found = found || strings.Contains(c.Detail, w) && strings.HasPrefix(c.Detail, "ignored: ")
			}
			if !found {
				t.Errorf("no ignored check says %q: %+v", w, ig)
			}
		}
	}
	_ = app
}

// TestOneLinkPerFunctionary covers A1 and I2: of two links of one SPIFFE ID
// for a step, the earliest genTime counts, whatever the order of the
// bundles, and the other is reported. The later one here would break the
// chain, so a verifier that took it would fail.
func TestOneLinkPerFunctionary(t *testing.T) {
	f := newChain(t)
	good := f.goodBundles()
	src := map[string]in_toto.HashObj{"src/main.go": hashObj("main"), "src/go.mod": hashObj("mod")}
	gt := f.genTime
	f.genTime = gt.Add(time.Minute)
	later := f.bundle("build", "spiffe://example.org/ci/build", src, map[string]in_toto.HashObj{"app": hashObj("other binary")})
	f.genTime = gt
	for _, order := range [][]verify.NamedBundle{{good[0], later, good[1], good[2]}, {good[0], good[1], later, good[2]}} {
		rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: order, At: t0.AddDate(0, 1, 0)})
		if err != nil {
			t.Fatalf("SupplyChain = %v\n%+v", err, rep.Checks)
		}
		ig := ignoredChecks(rep)
		if len(ig) != 1 || ig[0].Check != later.Name+": functionary" || !strings.Contains(ig[0].Detail, "already counts for step build with "+good[1].Name) {
			t.Errorf("ignored = %+v, want %s reported as a second link", ig, later.Name)
		}
	}
}

// TestArtifactsAreStepProducts covers I4: --artifact is matched by path and
// digest against the products of the layout's steps, never against what an
// inspection found in the directory it ran in.
func TestArtifactsAreStepProducts(t *testing.T) {
	f := newChain(t)
	layout := f.layout(func(l *in_toto.Layout) {
		l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"true"},
			SupplyChainItem: in_toto.SupplyChainItem{Name: "look", ExpectedMaterials: [][]string{{"ALLOW", "*"}}, ExpectedProducts: [][]string{{"ALLOW", "*"}}}}}
	})
	dir := t.TempDir()
	for name, content := range map[string]string{"app.tar": "tarball", "evil": "evil"} {
		if err := writeFile(dir, name, content); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }
	for _, c := range []struct {
		name     string
		path     string
		digest   []byte
		ok       bool
		errMatch string
	}{
		{"product of a step", "app.tar", sum("tarball"), true, ""},
		{"only an inspection saw it", "evil", sum("evil"), false, "no step of the chain made evil"},
		{"right digest, other path", "other.tar", sum("tarball"), false, "no step of the chain made other.tar"},
		{"right path, other digest", "app.tar", sum("evil"), false, "but step package made it with sha256 " + hex.EncodeToString(sum("tarball"))},
		{"a material, not a product", "app", sum("binary"), true, ""},
	} {
		rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: layout, Bundles: f.goodBundles(), At: t0.AddDate(0, 1, 0),
			Artifacts: map[string][]byte{c.path: c.digest}, InspectDir: dir})
		if c.ok && err != nil || !c.ok && (!errors.Is(err, verify.ErrArtifactRules) || !strings.Contains(err.Error(), c.errMatch)) {
			t.Errorf("%s: SupplyChain = %v, want ok=%v %q\n%+v", c.name, err, c.ok, c.errMatch, rep.Checks)
		}
	}
}

// TestLayoutProblems covers I5: CheckLayout explains every problem of a
// layout at once, and supply-chain verification refuses it.
func TestLayoutProblems(t *testing.T) {
	f := newChain(t)
	at := t0.AddDate(0, 1, 0)
	for _, c := range []struct {
		name string
		mod  func(*in_toto.Layout)
		want []string
	}{
		{"duplicate step names", func(l *in_toto.Layout) { l.Steps[1].Name = "checkout" }, []string{`two steps or inspections are named "checkout"`}},
		{"step and inspection share a name", func(l *in_toto.Layout) {
			l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"true"}, SupplyChainItem: in_toto.SupplyChainItem{Name: "build"}}}
		}, []string{`two steps or inspections are named "build"`}},
		{"MATCH FROM an unknown step", func(l *in_toto.Layout) {
			l.Steps[1].ExpectedMaterials[0] = []string{"MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "chekout"}
		}, []string{`matches against "chekout", which is no step or inspection`}},
		{"bad rule syntax", func(l *in_toto.Layout) { l.Steps[0].ExpectedProducts[0] = []string{"CREATE"} }, []string{`rule "CREATE"`}},
		{"empty rule", func(l *in_toto.Layout) { l.Steps[0].ExpectedProducts[0] = []string{} }, []string{"an empty artifact rule"}},
		{"threshold above the keys", func(l *in_toto.Layout) {
			l.Steps[0].CertificateConstraints = nil
			l.Steps[0].PubKeys = []string{strings.Repeat("ab", 32)}
			l.Steps[0].Threshold = 2
		}, []string{"threshold 2 but only 1 keys", "not in the layout's keys"}},
		{"constraint root unknown", func(l *in_toto.Layout) { l.Steps[0].CertificateConstraints[0].Roots = []string{"nobody"} }, []string{`names root "nobody"`}},
		{"two problems at once", func(l *in_toto.Layout) { l.Steps[0].Threshold = 0; l.Steps[2].Name = "build" }, []string{"threshold 0", `named "build"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lb := f.layout(c.mod)
			lr := verify.CheckLayout(lb, f.trust, at)
			var got []string
			for _, p := range lr.Problems {
				if !errors.Is(p.Err, verify.ErrLayout) || p.Check != verify.CheckLayoutForm {
					t.Errorf("problem %s: %v, want a layout form error", p.Check, p.Err)
				}
				got = append(got, p.Err.Error())
			}
			for _, w := range c.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("CheckLayout problems %q lack %q", got, w)
				}
			}
			if _, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: lb, Bundles: f.goodBundles(), At: at}); !errors.Is(err, verify.ErrLayout) {
				t.Errorf("SupplyChain = %v, want ErrLayout", err)
			}
		})
	}
	// Without a trust root, the signature is not judged; with the wrong
	// one, it is a problem; expiry is judged at the time given.
	if lr := verify.CheckLayout(f.layout(nil), nil, at); !lr.OK() {
		t.Errorf("CheckLayout(no trust root) = %+v", lr.Problems)
	}
	other := newChain(t)
	lr := verify.CheckLayout(f.layout(nil), other.trust, t0.AddDate(1, 0, 0))
	if len(lr.Problems) != 2 || !errors.Is(lr.Problems[0].Err, verify.ErrLayoutSignature) || !errors.Is(lr.Problems[1].Err, verify.ErrLayoutExpired) {
		t.Errorf("CheckLayout(other trust root, after expiry) = %+v", lr.Problems)
	}
	for _, bad := range []string{"hello", `{"signed":{"_type":"link","name":"x","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}},"signatures":[]}`} {
		if lr := verify.CheckLayout([]byte(bad), f.trust, at); lr.OK() || lr.Problems[0].Check != verify.CheckLayoutParse {
			t.Errorf("CheckLayout(%.20s) = %+v, want a parse problem", bad, lr.Problems)
		}
	}
}

// TestGenTimeAfterAt covers V4: evidence timestamped after the time the
// chain is verified at is no evidence of the chain at that time.
func TestGenTimeAfterAt(t *testing.T) {
	f := newChain(t)
	rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: f.goodBundles(), At: f.genTime.Add(-time.Second)})
	if !errors.Is(err, verify.ErrStep) || !errors.Is(err, verify.ErrAfterVerificationTime) {
		t.Errorf("SupplyChain(At before genTime) = %v, want ErrStep wrapping ErrAfterVerificationTime\n%+v", err, rep.Checks)
	}
}

// TestTrustDomains covers I1: a functionary CA vouches only for the SPIFFE
// trust domains it is trusted for; a CA listing none cannot mint IDs in a
// domain another CA lists; a layout's roots can name trust-root CAs.
func TestTrustDomains(t *testing.T) {
	f := newChain(t)
	good := f.goodBundles()
	src := map[string]in_toto.HashObj{"src/main.go": hashObj("main"), "src/go.mod": hashObj("mod")}
	app := map[string]in_toto.HashObj{"app": hashObj("binary")}
	caB := pkitest.NewCA(t, "CA B", t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	trustWith := func(domainsA, domainsB []string) *evident.TrustRoot {
		tr := *f.trust
		tr.FunctionaryCAs = append([]evident.Trusted(nil), f.trust.FunctionaryCAs...)
		tr.FunctionaryCAs[0].TrustDomains = domainsA
		tr.FunctionaryCAs = append(tr.FunctionaryCAs, evident.Trusted{Name: "ca-b", Value: string(pemfile.EncodeCertificates([]*x509.Certificate{caB.Cert})),
			ValidFor: f.trust.FunctionaryCAs[0].ValidFor, TrustDomains: domainsB})
		return &tr
	}
	spire := f.spiffe
	f.spiffe = caB
	forgedByB := f.bundle("build", "spiffe://example.org/ci/build", src, app)
	f.spiffe = spire
	chain := []verify.NamedBundle{good[0], forgedByB, good[2]}
	for _, c := range []struct {
		name             string
		domainsA, domain []string
		msg              string
	}{
		{"B trusted for another domain", []string{"example.org"}, []string{"b.example"}, "is in trust domain example.org; functionary CA \"ca-b\" is trusted for b.example only"},
		{"B lists none, A claims the domain", []string{"example.org"}, nil, "which belongs to functionary CA \"spire\""},
	} {
		_, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: trustWith(c.domainsA, c.domain), Layout: f.layout(nil), Bundles: chain, At: t0.AddDate(0, 1, 0)})
		if !errors.Is(err, verify.ErrTrustDomain) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: SupplyChain = %v, want ErrTrustDomain %q", c.name, err, c.msg)
		}
	}
	// Neither lists a domain (trust roots made before the field): B may.
	if _, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: trustWith(nil, nil), Layout: f.layout(nil), Bundles: chain, At: t0.AddDate(0, 1, 0)}); err != nil {
		t.Errorf("no trust domains listed: SupplyChain = %v", err)
	}
	// A layout's constraint roots name trust-root CAs: "spire" admits the
	// good chain; "ca-b" does not admit SPIRE's SVIDs.
	tr := trustWith([]string{"example.org"}, []string{"b.example"})
	for _, c := range []struct {
		root string
		ok   bool
	}{{"spire", true}, {"ca-b", false}} {
		layout := f.layout(func(l *in_toto.Layout) {
			for i := range l.Steps {
				l.Steps[i].CertificateConstraints[0].Roots = []string{c.root}
			}
		})
		_, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: tr, Layout: layout, Bundles: good, At: t0.AddDate(0, 1, 0)})
		if c.ok && err != nil || !c.ok && (!errors.Is(err, verify.ErrStep) || !strings.Contains(err.Error(), "meets no certificate constraint")) {
			t.Errorf("roots [%s]: SupplyChain = %v, want ok=%v", c.root, err, c.ok)
		}
	}
}

func writeFile(dir, name, content string) error {
	return writeFileBytes(dir+"/"+name, []byte(content))
}

func writeFileBytes(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
