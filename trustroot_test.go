package evident

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

func TestTrustRootEdits(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var r TrustRoot
	if err := r.Add(KindTSA, "tsa-1", "PEM", t0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"duplicate", r.Add(KindTSA, "tsa-1", "PEM", t0)},
		{"unknown kind", r.Add("printer", "x", "y", t0)},
		{"empty value", r.Add(KindLog, "x", "", t0)},
		{"retire unknown", r.Retire(KindTSA, "nope", t0)},
		{"end before start", r.Retire(KindTSA, "tsa-1", t0.Add(-time.Hour))},
	} {
		if !errors.Is(c.err, ErrTrustRoot) {
			t.Errorf("%s: %v, want ErrTrustRoot", c.name, c.err)
		}
	}
	if err := r.Retire(KindTSA, "tsa-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if in, _ := r.At(KindTSA, t0.Add(30*time.Minute)); len(in) != 1 {
		t.Error("tsa-1 not valid inside its window")
	}
	if out, _ := r.At(KindTSA, t0.Add(time.Hour)); len(out) != 0 {
		t.Error("tsa-1 valid at its end")
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTrustRoot(b)
	if err != nil || len(back.TSAs) != 1 || back.TSAs[0].ValidFor.End == nil {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}

func FuzzParseTrustRoot(f *testing.F) {
	var r TrustRoot
	r.Add(KindLog, "log", "origin+1234+AAAA", time.Unix(0, 0))
	b, _ := r.Marshal()
	f.Add(b)
	f.Add([]byte(`{"media_type":"` + TrustRootMediaType + `","tsas":[{"name":1}]}`))
	r.Add(KindFunctionaryCA, "spire", "PEM", time.Unix(0, 0))
	r.SetTrustDomains("spire", []string{"example.org"})
	b, _ = r.Marshal()
	f.Add(b)
	f.Add([]byte(strings.Replace(string(b), `"logs"`, `"logs": [], "logs"`, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseTrustRoot(b)
		if err != nil {
			if !errors.Is(err, ErrTrustRoot) {
				t.Fatalf("error %v does not wrap ErrTrustRoot", err)
			}
			return
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// P1: what was accepted is what a last-wins reading sees, and
		// re-encodes to a trust root that parses to itself.
		if err := strictjson.Faithful(lastWins(t, b), r, "$", true); err != nil {
			t.Fatalf("ParseTrustRoot(%q) differs from a last-wins reading: %v", b, err)
		}
		if back, err := ParseTrustRoot(again); err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("re-encoded trust root %s = %+v, %v", again, back, err)
		}
	})
}

// TestWitnessPolicy: K3 for witnesses (the value must parse as a
// tlog-cosignature/v1 key named as the item), and the policy's limits.
func TestWitnessPolicy(t *testing.T) {
	r := &TrustRoot{}
	now := time.Now()
	if err := r.SetWitnessPolicy(1, time.Hour); !errors.Is(err, ErrTrustRoot) {
		t.Errorf("threshold 1 with no witnesses = %v, want ErrTrustRoot", err)
	}
	_, logKey, _ := note.GenerateKey(rand.Reader, "w1")
	for _, bad := range []string{"junk", logKey} {
		if err := r.Add(KindWitness, "w1", bad, now); !errors.Is(err, ErrTrustRoot) {
			t.Errorf("Add(witness %q) = %v, want ErrTrustRoot", bad, err)
		}
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	v, _ := tlog.NewCosignatureVerifierFromKey("w1", priv.Public().(ed25519.PublicKey))
	if err := r.Add(KindWitness, "other-name", v.String(), now); !errors.Is(err, ErrTrustRoot) {
		t.Errorf("Add(witness under another name) = %v, want ErrTrustRoot", err)
	}
	if err := r.Add(KindWitness, "w1", v.String(), now); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWitnessPolicy(1, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWitnessPolicy(-1, 0); !errors.Is(err, ErrTrustRoot) {
		t.Errorf("negative threshold = %v", err)
	}
	// K1: the trust root keeps whole seconds, where 0 means unbounded: a
	// bound that would be stored as another (no bound at all, or a shorter
	// one) than the one asked for is refused, as is a negative one.
	for _, d := range []time.Duration{-time.Hour, -time.Second, 500 * time.Millisecond, 1500 * time.Millisecond} {
		if err := r.SetWitnessPolicy(1, d); !errors.Is(err, ErrTrustRoot) || !strings.Contains(err.Error(), "maximum log delay") {
			t.Errorf("SetWitnessPolicy(1, %v) = %v, want ErrTrustRoot naming the maximum log delay", d, err)
		}
	}
	if err := r.SetWitnessPolicy(1, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTrustRoot(b)
	if err != nil || back.WitnessThreshold != 1 || back.MaxLogDelaySeconds != 5400 || len(back.Witnesses) != 1 {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	// A trust root from before witnesses still parses, with no policy.
	old := []byte(`{"media_type":"` + TrustRootMediaType + `","functionary_cas":[],"tsas":[],"logs":[],"layout_keys":[]}`)
	if r, err := ParseTrustRoot(old); err != nil || r.WitnessThreshold != 0 {
		t.Errorf("old trust root = %+v, %v", r, err)
	}
	neg := bytes.Replace(b, []byte(`"witness_threshold": 1`), []byte(`"witness_threshold": -1`), 1)
	if _, err := ParseTrustRoot(neg); !errors.Is(err, ErrTrustRoot) {
		t.Errorf("negative threshold parsed: %v", err)
	}
}

// TestTSAPolicy: the TSA threshold and skew bound round-trip, default to
// one token and no bound, and are refused out of range.
func TestTSAPolicy(t *testing.T) {
	r := &TrustRoot{}
	now := time.Now()
	if k, skew := r.TSAPolicy(); k != 1 || skew != 0 {
		t.Errorf("TSAPolicy() of a trust root without one = %d, %v; want 1, 0", k, skew)
	}
	if err := r.SetTSAPolicy(2, time.Minute); !errors.Is(err, ErrTrustRoot) || !strings.Contains(err.Error(), "lists 0 TSAs") {
		t.Errorf("threshold 2 with no TSAs = %v, want ErrTrustRoot naming the TSAs listed", err)
	}
	for _, n := range []string{"tsa-a", "tsa-b"} {
		if err := r.Add(KindTSA, n, "PEM", now); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		k    int
		skew time.Duration
	}{{-1, 0}, {1, -time.Second}, {1, time.Millisecond}, {3, 0}} {
		if err := r.SetTSAPolicy(c.k, c.skew); !errors.Is(err, ErrTrustRoot) {
			t.Errorf("SetTSAPolicy(%d, %v) = %v, want ErrTrustRoot", c.k, c.skew, err)
		}
	}
	if err := r.SetTSAPolicy(2, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTrustRoot(b)
	if err != nil {
		t.Fatal(err)
	}
	if k, skew := back.TSAPolicy(); k != 2 || skew != 90*time.Second {
		t.Errorf("round trip TSAPolicy() = %d, %v; want 2, 1m30s", k, skew)
	}
	for _, bad := range []struct{ from, to string }{
		{`"tsa_threshold": 2`, `"tsa_threshold": -1`},
		{`"tsa_threshold": 2`, `"tsa_threshold": 9`},
		{`"max_tsa_skew_seconds": 90`, `"max_tsa_skew_seconds": -90`},
		{`"tsa_threshold": 2`, `"tsa_threshold": 2, "tsa_threshold": 1`},
	} {
		in := bytes.Replace(b, []byte(bad.from), []byte(bad.to), 1)
		if _, err := ParseTrustRoot(in); !errors.Is(err, ErrTrustRoot) {
			t.Errorf("ParseTrustRoot(%s) = %v, want ErrTrustRoot", bad.to, err)
		}
	}
}
