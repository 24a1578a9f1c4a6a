package tufrepo

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var errCrash = errors.New("crashed")

// keysMatchRoot checks that the keys LoadKeys gives are exactly the ones
// the published root names for each role, enough to sign.
func keysMatchRoot(t *testing.T, repoDir, keysDir string, staleNextOK bool) Signers {
	t.Helper()
	s, err := LoadKeys(keysDir, Root, Targets, Snapshot, Timestamp)
	if err != nil {
		t.Fatalf("LoadKeys = %v", err)
	}
	r, err := Open(repoDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{Root, Targets, Snapshot, Timestamp} {
		want := r.root.Signed.Roles[role]
		if len(s[role]) < want.Threshold {
			t.Errorf("%s: %d keys loaded, want at least the threshold %d", role, len(s[role]), want.Threshold)
		}
		for _, k := range s[role] {
			id, err := keyID(k)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(want.KeyIDs, id) {
				t.Errorf("%s: loaded key %s is not named by the published root", role, id)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(keysDir, rotationJournal)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rotation journal is still there after LoadKeys (%v)", err)
	}
	if stale, _ := filepath.Glob(filepath.Join(keysDir, "*.next-*")); len(stale) > 0 && !staleNextOK {
		t.Errorf("temporary key files left: %v", stale)
	}
	return s
}

// TestRotationCrashBetweenSteps covers a key rotation stopped after each of
// its steps, as by kill -9: the next LoadKeys settles it so that the keys
// on disk are exactly those the published root names — the old ones if the
// new root was not published, the new ones if it was — and publishing
// with them works.
func TestRotationCrashBetweenSteps(t *testing.T) {
	for _, role := range []string{Targets, Root} {
		for _, step := range []string{"keys", "journal", "in place", "published"} {
			t.Run(role+"/"+step, func(t *testing.T) {
				repoDir, keysDir := filepath.Join(t.TempDir(), "repo"), filepath.Join(t.TempDir(), "keys")
				if _, err := Init(repoDir, keysDir, InitOptions{}); err != nil {
					t.Fatal(err)
				}
				before := keysMatchRoot(t, repoDir, keysDir, false)
				testHookRotate = func(s string) error {
					if s == step {
						return errCrash
					}
					return nil
				}
				defer func() { testHookRotate = nil }()
				if _, err := RotateKeyFiles(repoDir, keysDir, role, 2, 2, time.Now); !errors.Is(err, errCrash) {
					t.Fatalf("RotateKeyFiles = %v, want the crash", err)
				}
				testHookRotate = nil
				// A crash before the journal leaves new key files that
				// nothing names: harmless, removed by the next rotation.
				after := keysMatchRoot(t, repoDir, keysDir, step == "keys")
				oldID, _ := keyID(before[role][0])
				newID, _ := keyID(after[role][0])
				if rotated := oldID != newID; rotated != (step == "published") {
					t.Errorf("after a crash at %q the %s keys are rotated = %v, want %v", step, role, rotated, step == "published")
				}
				err := Update(repoDir, time.Now, func(r *Repo) error {
					r.dirty[Targets] = true
					return r.Publish(after)
				})
				if err != nil {
					t.Errorf("publishing with the settled keys = %v", err)
				}
				later := func() time.Time { return time.Now().Add(time.Hour) } // not the stamp of the crashed one
				if _, err := RotateKeyFiles(repoDir, keysDir, role, 1, 1, later); err != nil {
					t.Fatalf("rotating again after the crash = %v", err)
				}
				keysMatchRoot(t, repoDir, keysDir, false)
			})
		}
	}
}

// TestRotationFailureRestoresKeys: a rotation the repository refuses (no
// root key at hand to sign the new root) returns that error and leaves the
// old keys in place, nothing else.
func TestRotationFailureRestoresKeys(t *testing.T) {
	repoDir, keysDir := filepath.Join(t.TempDir(), "repo"), filepath.Join(t.TempDir(), "keys")
	if _, err := Init(repoDir, keysDir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(keysDir, keyFileName(Root, 1))
	if err := os.Rename(root, root+".offline"); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateKeyFiles(repoDir, keysDir, Targets, 1, 1, time.Now); !errors.Is(err, ErrThreshold) {
		t.Fatalf("RotateKeyFiles without a root key = %v, want ErrThreshold", err)
	}
	if err := os.Rename(root+".offline", root); err != nil {
		t.Fatal(err)
	}
	keysMatchRoot(t, repoDir, keysDir, false)
	if retired, _ := filepath.Glob(filepath.Join(keysDir, "*.retired-*")); len(retired) > 0 {
		t.Errorf("a failed rotation retired %v", retired)
	}
}
