package evident

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/strictjson"
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
