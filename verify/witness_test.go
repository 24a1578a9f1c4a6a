package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/verify"
	"github.com/evident-dev/evident/witness"
	"github.com/evident-dev/evident/witness/witnesstest"
)

// witnessFixture is a chain fixture whose log is watched by two test
// witnesses, trusted with threshold 2 and a one-hour maximum log delay.
type witnessFixture struct {
	*chainFixture
	ws   []*witnesstest.Witness
	subs []*witness.Submitter
}

func newWitnessed(t *testing.T) *witnessFixture {
	f := &witnessFixture{chainFixture: newChain(t)}
	vkey := ""
	for _, l := range f.trust.Logs {
		vkey = l.Value
	}
	for _, name := range []string{"witness.test/w1", "witness.test/w2"} {
		w := witnesstest.New(name)
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(w)
		t.Cleanup(srv.Close)
		f.ws = append(f.ws, w)
		f.subs = append(f.subs, &witness.Submitter{Client: &witness.Client{URL: srv.URL}, Verifier: w.Verifier(),
			Proof: func(_ context.Context, from, to uint64) ([][]byte, error) { return f.log.ConsistencyProof(from, to) }})
		if err := f.trust.Add(evident.KindWitness, name, w.VerifierKey(), t0.AddDate(-1, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.trust.SetWitnessPolicy(2, time.Hour); err != nil {
		t.Fatal(err)
	}
	return f
}

// witness has the given witnesses cosign the log's current checkpoint, each
// at time at, and returns the cosigned note.
func (f *witnessFixture) witness(at time.Time, which ...int) []byte {
	f.t.Helper()
	head := f.log.Head()
	cp, err := tlog.ParseCheckpoint(checkpointBody(f.t, head.Checkpoint))
	if err != nil {
		f.t.Fatal(err)
	}
	signed := head.Checkpoint
	for _, i := range which {
		f.ws[i].SetClock(func() time.Time { return at })
		cs, err := f.subs[i].Submit(context.Background(), cp, head.Checkpoint)
		if err != nil {
			f.t.Fatalf("witness %d: %v", i, err)
		}
		signed = tlog.AddSignatureLines(signed, cs.Line)
	}
	return signed
}

// prove re-proves a bundle against a cosigned checkpoint, in place (as run
// does) or as its Witnessed proof (as bundle fetch does).
func (f *witnessFixture) prove(nb verify.NamedBundle, signed []byte, asWitnessed bool) verify.NamedBundle {
	f.t.Helper()
	cp, err := tlog.ParseCheckpoint(checkpointBody(f.t, signed))
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.log.InclusionProof(nb.Bundle.LogIndex, cp.Size)
	if err != nil {
		f.t.Fatal(err)
	}
	b := *nb.Bundle
	if asWitnessed {
		b.Witnessed = &evident.WitnessedProof{Checkpoint: string(signed), InclusionProof: p}
	} else {
		b.Checkpoint, b.InclusionProof = string(signed), p
	}
	return verify.NamedBundle{Name: nb.Name, Bundle: &b}
}

func (f *witnessFixture) verify(bundles []verify.NamedBundle) (*verify.Report, error) {
	return verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: bundles, At: t0.AddDate(0, 1, 0)})
}

func proveAll(f *witnessFixture, good []verify.NamedBundle, signed []byte, asWitnessed bool) []verify.NamedBundle {
	var out []verify.NamedBundle
	for _, nb := range good {
		out = append(out, f.prove(nb, signed, asWitnessed))
	}
	return out
}

// TestWitnessedSupplyChain: K1, K2. With a witness threshold of 2, bundles
// whose checkpoint two trusted witnesses cosigned soon after genTime verify,
// in place or as a Witnessed proof beside a fresh checkpoint; one
// cosignature fails the witness check; and evidence witnessed only now — a
// token made with the real TSA key at a genTime inside an SVID's life long
// expired (a stolen TSA key and an old SVID key), appended today — fails the
// delay check, though everything else about it is valid.
func TestWitnessedSupplyChain(t *testing.T) {
	f := newWitnessed(t)
	good := f.goodBundles()
	inTime := f.witness(f.genTime.Add(30*time.Second), 0, 1)

	rep, err := f.verify(proveAll(f, good, inTime, false))
	if err != nil {
		t.Fatalf("witnessed in time: %v\n%+v", err, rep)
	}
	if !hasCheck(rep, "log delay", "30s after genTime") {
		t.Errorf("report does not print the delay: %+v", rep.Checks)
	}
	if _, err := f.verify(proveAll(f, good, inTime, true)); err != nil {
		t.Fatalf("witnessed proof beside a fresh checkpoint: %v", err)
	}
	// Without cosignatures (the bundles as the log first answered).
	if _, err := f.verify(good); !errors.Is(err, verify.ErrWitness) {
		t.Errorf("no cosignatures: %v, want ErrWitness", err)
	}

	// One witness only: the same evidence, a newer checkpoint.
	g2 := newWitnessed(t)
	good2 := g2.goodBundles()
	one := g2.witness(g2.genTime.Add(time.Minute), 0)
	rep, err = g2.verify(proveAll(g2, good2, one, false))
	if !errors.Is(err, verify.ErrWitness) || !strings.Contains(err.Error(), "1 valid cosignatures") {
		t.Errorf("one cosignature: %v, want ErrWitness naming 1 cosignature", err)
	}
	// The bundles are no evidence (A1): each is reported as ignored by the
	// witness check, and the steps then go unsatisfied.
	ignored := false
	for _, c := range rep.Checks {
		ignored = ignored || c.Ignored && strings.HasSuffix(c.Check, ": witnesses")
	}
	if !ignored {
		t.Errorf("no bundle was ignored by the witness check: %+v", rep.Checks)
	}

	// The backdating attack: witnessed now, months after genTime.
	g3 := newWitnessed(t)
	b3 := g3.goodBundles()
	late := g3.witness(time.Now(), 0, 1)
	_, err = g3.verify(proveAll(g3, b3, late, false))
	if !errors.Is(err, verify.ErrLogDelay) {
		t.Fatalf("backdated evidence witnessed now: %v, want ErrLogDelay", err)
	}

	// The delay is judged by the threshold-th earliest cosignature: one
	// early witness (maybe the attacker's) does not make it pass.
	g4 := newWitnessed(t)
	b4 := g4.goodBundles()
	mixed := g4.witness(g4.genTime.Add(time.Minute), 0)
	mixed = tlog.AddSignatureLines(mixed, g4.ws[1].Cosign(checkpointBody(t, mixed), time.Now()))
	if _, err := g4.verify(proveAll(g4, b4, mixed, false)); !errors.Is(err, verify.ErrLogDelay) {
		t.Errorf("one early, one late cosignature: %v, want ErrLogDelay", err)
	}
}

// TestWitnessedBeforeTimestamp: K1, K4. Witnesses cannot cosign a
// checkpoint holding an entry before the entry's token existed, so a
// negative delay beyond the token's accuracy and the cosignatures'
// one-second resolution means a genTime from the future (a TSA clock far
// ahead, or a TSA key forging a later time): the bundle is refused, naming
// the check, whatever the maximum delay. Within that margin it passes.
func TestWitnessedBeforeTimestamp(t *testing.T) {
	f := newWitnessed(t)
	good := f.goodBundles()
	early := f.witness(f.genTime.Add(-time.Minute), 0, 1)
	_, err := f.verify(proveAll(f, good, early, false))
	if !errors.Is(err, verify.ErrWitnessedBeforeTimestamp) || !strings.Contains(err.Error(), "1m0s before genTime") {
		t.Fatalf("cosigned a minute before genTime: %v, want ErrWitnessedBeforeTimestamp naming the minute", err)
	}
	if err := f.trust.SetWitnessPolicy(2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(proveAll(f, good, early, false)); !errors.Is(err, verify.ErrWitnessedBeforeTimestamp) {
		t.Errorf("cosigned a minute before genTime, delay unbounded: %v, want ErrWitnessedBeforeTimestamp", err)
	}

	// genTime 12:00:00 ± 1s may stand for 11:59:59; a cosignature's time
	// is whole seconds: one cosigned at 11:59:58.x says 11:59:58.
	g := newWitnessed(t)
	goodG := g.goodBundles()
	rep, err := g.verify(proveAll(g, goodG, g.witness(g.genTime.Add(-2*time.Second), 0, 1), false))
	if err != nil {
		t.Fatalf("cosigned within the token's accuracy and a second before genTime: %v", err)
	}
	if !hasCheck(rep, "log delay", "-2s after genTime") {
		t.Errorf("report does not print the delay: %+v", rep.Checks)
	}
}

// TestWitnessValidity: a cosignature counts only from a witness trusted at
// the time it cosigned, once per witness, and only if it verifies.
func TestWitnessValidity(t *testing.T) {
	f := newWitnessed(t)
	good := f.goodBundles()
	signed := f.witness(f.genTime.Add(time.Minute), 0)
	body := checkpointBody(t, signed)
	// w1 twice does not make two.
	twice := tlog.AddSignatureLines(signed, f.ws[0].Cosign(body, f.genTime.Add(2*time.Minute)))
	if _, err := f.verify(proveAll(f, good, twice, false)); !errors.Is(err, verify.ErrWitness) {
		t.Errorf("one witness twice: %v, want ErrWitness", err)
	}
	// w2 retired before it cosigned.
	withW2 := tlog.AddSignatureLines(signed, f.ws[1].Cosign(body, f.genTime.Add(2*time.Minute)))
	if _, err := f.verify(proveAll(f, good, withW2, false)); err != nil {
		t.Fatalf("both witnesses: %v", err)
	}
	if err := f.trust.Retire(evident.KindWitness, "witness.test/w2", f.genTime); err != nil {
		t.Fatal(err)
	}
	_, err := f.verify(proveAll(f, good, withW2, false))
	if !errors.Is(err, verify.ErrWitness) || !strings.Contains(err.Error(), "outside their validity by witness.test/w2") {
		t.Errorf("retired witness: %v, want ErrWitness naming it", err)
	}
	// A forged line under w1's name and key hash does not verify.
	f2 := newWitnessed(t)
	good2 := f2.goodBundles()
	s2 := f2.witness(f2.genTime.Add(time.Minute), 0)
	impostor := witnesstest.New("witness.test/w2")
	forged := impostor.Cosign(checkpointBody(t, s2), f2.genTime)
	if _, err := f2.verify(proveAll(f2, good2, tlog.AddSignatureLines(s2, forged), false)); !errors.Is(err, verify.ErrWitness) {
		t.Errorf("impostor witness: %v, want ErrWitness", err)
	}
}

func checkpointBody(t *testing.T, signed []byte) []byte {
	t.Helper()
	body, _, err := tlog.SplitNote(signed)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func hasCheck(r *verify.Report, suffix, detail string) bool {
	for _, c := range r.Checks {
		if strings.HasSuffix(c.Check, suffix) && strings.Contains(c.Detail, detail) {
			return true
		}
	}
	return false
}

// TestWitnessKeyUnderTwoNames: K2. One witness's key listed in the trust
// root under a second name does not make its signature count twice: the
// signed message names no witness, so the same bytes verify under both.
func TestWitnessKeyUnderTwoNames(t *testing.T) {
	f := newWitnessed(t)
	good := f.goodBundles()
	alias, err := tlog.NewCosignatureVerifierFromKey("witness.test/alias", f.ws[0].Verifier().PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.trust.Add(evident.KindWitness, alias.Name(), alias.String(), t0.AddDate(-1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	signed := f.witness(f.genTime.Add(time.Minute), 0)
	_, lines, err := tlog.SplitNote(signed)
	if err != nil {
		t.Fatal(err)
	}
	var copied string
	for _, l := range lines {
		if l.Name == f.ws[0].Verifier().Name() {
			raw := binary.BigEndian.AppendUint32(nil, alias.KeyHash())
			copied = "— " + alias.Name() + " " + base64.StdEncoding.EncodeToString(append(raw, l.Sig...)) + "\n"
		}
	}
	twice := tlog.AddSignatureLines(signed, copied)
	if valid, _, _ := tlog.VerifyCosignatures(twice, []*tlog.CosignatureVerifier{f.ws[0].Verifier(), alias}); len(valid) != 2 {
		t.Fatalf("the copied line does not verify under the alias (%d valid): the test proves nothing", len(valid))
	}
	_, err = f.verify(proveAll(f, good, twice, false))
	if !errors.Is(err, verify.ErrWitness) || !strings.Contains(err.Error(), "1 valid cosignatures") {
		t.Errorf("one key under two names: %v, want ErrWitness counting 1", err)
	}
}
