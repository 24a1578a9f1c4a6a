package tufrepo

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
)

// TestPublishKilledAtRandomPoints covers threat model U2: publishers die
// before a random metadata write, some leaving a half-written temporary
// file, 40 times; after each, a client still updates, the next publish
// cleans the temporary files, and every versioned metadata file, once
// written, keeps its bytes for ever.
func TestPublishKilledAtRandomPoints(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	dir := f.repo.Dir()
	md := filepath.Join(dir, "metadata")
	if err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error { return tr.Add(evident.KindLog, "first", "v", f.clk.now()) }, s); err != nil {
		t.Fatal(err)
	}
	seen := map[string][]byte{}
	check := func(round int) {
		t.Helper()
		ents, err := os.ReadDir(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := e.Name()
			if name == "timestamp.json" || strings.HasPrefix(name, ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(md, name))
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := seen[name]; ok && !bytes.Equal(old, b) {
				t.Errorf("round %d: %s changed after it was written", round, name)
			}
			seen[name] = b
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	errKilled := errors.New("killed")
	killed := 0
	for round := 0; round < 40; round++ {
		check(round)
		kill := rng.IntN(4) // 0..2: before the targets, snapshot or timestamp write; 3: not at all
		err := Update(dir, f.clk.now, func(r *Repo) error {
			writes := 0
			r.testHookWrite = func(name string) error {
				if writes++; writes-1 == kill {
					if rng.IntN(2) == 0 { // killed in the middle of writing the file
						os.WriteFile(filepath.Join(md, ".tmp-killed"+fmt.Sprint(round)), []byte("{\"sig"), 0o644)
					}
					return errKilled
				}
				return nil
			}
			return r.EditTrustRoot(func(tr *evident.TrustRoot) error {
				return tr.Add(evident.KindLog, fmt.Sprintf("log%d", round), "v", f.clk.now())
			}, s)
		})
		if errors.Is(err, errKilled) {
			killed++
		} else if err != nil {
			t.Fatalf("round %d: %v", round, err)
		} else if left, _ := filepath.Glob(filepath.Join(md, ".tmp-*")); len(left) > 0 {
			t.Errorf("round %d: temporary files left after a publish: %v", round, left)
		}
		if _, err := mustClient(t, f, "").TrustRoot(); err != nil {
			t.Fatalf("round %d: a client cannot update after the publisher died: %v", round, err)
		}
	}
	check(40)
	if killed < 20 {
		t.Errorf("only %d of 40 publishes were killed", killed)
	}
}
