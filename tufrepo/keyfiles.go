package tufrepo

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/evident-dev/evident/atomicfile"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key files. A keys directory holds one PKCS #8 PEM file per key:
// root-1.pem … root-K.pem, targets.pem, snapshot.pem, timestamp.pem. This
// file is the one place that knows those names and how they change: Init
// creates them, LoadKeys reads them, RotateKeyFiles replaces a role's.
//
// A rotation is crash-safe. Its steps, each durable before the next:
//
//  1. the new keys are written under temporary names (<role>.next-<i>.pem);
//  2. the rotation is recorded in rotation.json: the repository, the role,
//     the new keys' IDs and the renames to come;
//  3. the old key files are renamed *.retired-<stamp> and the new ones take
//     their names: the new keys are in place;
//  4. the new root (and the role's metadata) is published;
//  5. rotation.json is removed.
//
// A rotation interrupted (a crash, an error) between 2 and 5 is settled by
// the published root, the only thing that counts: if it names the new keys
// the renames are finished, else they are undone and the new keys dropped.
// RotateKeyFiles settles a failed rotation before it returns, and LoadKeys
// settles one that a crash left, before it loads any key, so no signer ever
// loads a key the published metadata does not name, nor loses one it does.

const (
	rotationJournal = "rotation.json"
	keysLock        = ".lock"
)

// keyFileName is the file of key i (from 1) of role: root-<i>.pem, or
// <role>.pem for the first key of another role and <role>-<i>.pem for the
// next ones.
func keyFileName(role string, i int) string {
	if role == Root || i > 1 {
		return fmt.Sprintf("%s-%d.pem", role, i)
	}
	return role + ".pem"
}

// keyFiles lists the existing key files of role in keysDir.
func keyFiles(keysDir, role string) ([]string, error) {
	var files []string
	if role != Root {
		p := filepath.Join(keysDir, keyFileName(role, 1))
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	more, err := filepath.Glob(filepath.Join(keysDir, role+"-*.pem"))
	return append(files, more...), err
}

// writeKeyFile generates an Ed25519 key into a new PEM file (mode 0600),
// durably: the file and its directory are fsynced.
func writeKeyFile(p string) (signature.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := pemfile.EncodePrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(p, kb, 0o600); err != nil {
		return nil, err
	}
	return signature.LoadSigner(priv, crypto.Hash(0))
}

// rotation is the record of a rotation in progress (rotation.json).
type rotation struct {
	Repo    string   `json:"repo"` // absolute
	Role    string   `json:"role"`
	KeyIDs  []string `json:"key_ids"`
	Renames []rename `json:"renames"` // base names in the keys directory, in order
	New     []string `json:"new"`     // the temporary names of the new keys
}

type rename struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ErrRotation wraps the failures to settle an interrupted rotation.
var ErrRotation = errors.New("interrupted key rotation")

// testHookRotate, when set, runs after each step of RotateKeyFiles ("keys",
// "journal", "in place", "published"); an error it returns stops the
// rotation there as a crash would, without settling it.
var testHookRotate func(step string) error

// RotateKeyFiles gives the top-level role count new keys in keysDir, of
// which threshold must sign, and publishes the repository in repoDir
// signed with them: a new root version signed by the current root keys
// (and, for root, the new ones). The old key files are kept, renamed
// *.retired-<stamp>; it returns stamp. See above for the crash safety.
func RotateKeyFiles(repoDir, keysDir, role string, count, threshold int, now func() time.Time) (string, error) {
	if role != Root && role != Targets && role != Snapshot && role != Timestamp {
		return "", fmt.Errorf("no top-level role %q", role)
	}
	if count < 1 || threshold < 1 || threshold > count {
		return "", fmt.Errorf("threshold %d with %d keys", threshold, count)
	}
	if now == nil {
		now = time.Now
	}
	unlock, err := lockKeys(keysDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := settleRotation(keysDir); err != nil {
		return "", err
	}
	old, err := loadKeys(keysDir, Root, Targets, Snapshot, Timestamp)
	if err != nil {
		return "", err
	}
	stamp := now().UTC().Format("20060102T150405")
	j, next, err := prepareRotation(repoDir, keysDir, role, count, stamp)
	if err != nil {
		return "", err
	}
	if err := hookRotate("keys"); err != nil {
		return "", err
	}
	if err := writeJournal(keysDir, j); err != nil {
		return "", errors.Join(err, removeFiles(keysDir, j.New))
	}
	if err := hookRotate("journal"); err != nil {
		return "", err
	}
	if err := applyRenames(keysDir, j.Renames); err != nil {
		return "", errors.Join(err, settle(keysDir, j))
	}
	if err := hookRotate("in place"); err != nil {
		return "", err
	}
	err = Update(repoDir, now, func(r *Repo) error {
		if err := r.RotateKey(role, next, threshold, old[Root]); err != nil {
			return err
		}
		s := old
		s[role] = next
		return r.Publish(s)
	})
	if err != nil {
		return "", errors.Join(err, settle(keysDir, j))
	}
	if err := hookRotate("published"); err != nil {
		return "", err
	}
	return stamp, removeJournal(keysDir)
}

func keyID(s signature.Signer) (string, error) {
	k, err := tufKey(s)
	if err != nil {
		return "", err
	}
	return k.ID()
}

func hookRotate(step string) error {
	if testHookRotate == nil {
		return nil
	}
	return testHookRotate(step)
}

// prepareRotation writes the new keys under temporary names and plans the
// renames: old files to *.retired-stamp, then the new ones into place.
func prepareRotation(repoDir, keysDir, role string, count int, stamp string) (*rotation, []signature.Signer, error) {
	absRepo, err := filepath.Abs(repoDir)
	if err != nil {
		return nil, nil, err
	}
	oldFiles, err := keyFiles(keysDir, role)
	if err != nil {
		return nil, nil, err
	}
	j := &rotation{Repo: absRepo, Role: role}
	for _, p := range oldFiles {
		j.Renames = append(j.Renames, rename{From: filepath.Base(p), To: filepath.Base(p) + ".retired-" + stamp})
		if exists(filepath.Join(keysDir, filepath.Base(p)+".retired-"+stamp)) {
			// A retired file is never replaced: a second rotation in the
			// same second waits for the next one.
			return nil, nil, fmt.Errorf("%s.retired-%s exists: rotate again in a second", filepath.Base(p), stamp)
		}
	}
	var next []signature.Signer
	for i := 1; i <= count; i++ {
		tmp := fmt.Sprintf("%s.next-%d.pem", role, i)
		s, err := writeKeyFile(filepath.Join(keysDir, tmp))
		if err != nil {
			return nil, nil, errors.Join(err, removeFiles(keysDir, j.New))
		}
		j.New = append(j.New, tmp)
		id, err := keyID(s)
		if err != nil {
			return nil, nil, errors.Join(err, removeFiles(keysDir, j.New))
		}
		next = append(next, s)
		j.KeyIDs = append(j.KeyIDs, id)
		j.Renames = append(j.Renames, rename{From: tmp, To: keyFileName(role, i)})
	}
	return j, next, nil
}

// applyRenames performs the renames not yet done, in order, then fsyncs
// the directory. A rename is done when its source is gone and its target
// is there; running it again is harmless.
func applyRenames(keysDir string, renames []rename) error {
	for _, rn := range renames {
		from, to := filepath.Join(keysDir, rn.From), filepath.Join(keysDir, rn.To)
		if exists(from) && !exists(to) {
			if err := os.Rename(from, to); err != nil {
				return err
			}
		}
	}
	return syncDir(keysDir)
}

// undoRenames reverses the renames done, last first, removes the new keys
// and fsyncs the directory.
func undoRenames(keysDir string, j *rotation) error {
	for i := len(j.Renames) - 1; i >= 0; i-- {
		rn := j.Renames[i]
		from, to := filepath.Join(keysDir, rn.From), filepath.Join(keysDir, rn.To)
		if exists(to) && !exists(from) {
			if err := os.Rename(to, from); err != nil {
				return err
			}
		}
	}
	if err := removeFiles(keysDir, j.New); err != nil {
		return err
	}
	return syncDir(keysDir)
}

// settle finishes or undoes the rotation j, as the published root says,
// and removes the journal.
func settle(keysDir string, j *rotation) error {
	r, err := Open(j.Repo, nil)
	if err != nil {
		return fmt.Errorf("%w of the %s keys in %s: couldn't read the repository to settle it: %v", ErrRotation, j.Role, keysDir, err)
	}
	role := r.root.Signed.Roles[j.Role]
	published := role != nil && len(j.KeyIDs) > 0
	for _, id := range j.KeyIDs {
		published = published && slices.Contains(role.KeyIDs, id)
	}
	if published {
		err = applyRenames(keysDir, j.Renames)
	} else {
		err = undoRenames(keysDir, j)
	}
	if err != nil {
		return fmt.Errorf("%w of the %s keys in %s: %v", ErrRotation, j.Role, keysDir, err)
	}
	return removeJournal(keysDir)
}

// settleRotation settles the rotation a crash left in keysDir, if any.
// The caller holds the keys lock.
func settleRotation(keysDir string) error {
	b, err := os.ReadFile(filepath.Join(keysDir, rotationJournal))
	if errors.Is(err, fs.ErrNotExist) {
		return removeStaleNext(keysDir)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRotation, err)
	}
	var j rotation
	if _, err := strictjson.Unmarshal(b, &j, strictjson.Limits{MaxSize: 1 << 20, MaxDepth: 8}); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRotation, rotationJournal, err)
	}
	for _, rn := range j.Renames {
		if !localName(rn.From) || !localName(rn.To) {
			return fmt.Errorf("%w: %s names a file outside the keys directory", ErrRotation, rotationJournal)
		}
	}
	for _, n := range j.New {
		if !localName(n) {
			return fmt.Errorf("%w: %s names a file outside the keys directory", ErrRotation, rotationJournal)
		}
	}
	return settle(keysDir, &j)
}

// removeStaleNext removes new keys that a crash left before their rotation
// was recorded: nothing names them.
func removeStaleNext(keysDir string) error {
	stale, err := filepath.Glob(filepath.Join(keysDir, "*.next-*.pem"))
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

func localName(n string) bool {
	return n != "" && n == filepath.Base(n) && n != "." && n != ".." && !strings.ContainsRune(n, os.PathSeparator)
}

func writeJournal(keysDir string, j *rotation) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(keysDir, rotationJournal), b, 0o600)
}

func removeJournal(keysDir string) error {
	if err := os.Remove(filepath.Join(keysDir, rotationJournal)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(keysDir)
}

func removeFiles(keysDir string, names []string) error {
	var errs []error
	for _, n := range names {
		if err := os.Remove(filepath.Join(keysDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockKeys takes the keys directory's exclusive lock (flock on
// keysDir/.lock): rotations and their settling take turns.
func lockKeys(keysDir string) (func(), error) {
	lf, err := os.OpenFile(filepath.Join(keysDir, keysLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("couldn't lock the keys directory: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		return nil, fmt.Errorf("couldn't lock the keys directory: %w", err)
	}
	return func() { syscall.Flock(int(lf.Fd()), syscall.LOCK_UN); lf.Close() }, nil
}

// LoadKeys loads the keys of the given roles from keysDir, as Init names
// them; a role whose key file is absent is skipped (offline keys). A
// rotation a crash interrupted is settled first (see above).
func LoadKeys(keysDir string, roles ...string) (Signers, error) {
	if exists(filepath.Join(keysDir, rotationJournal)) {
		unlock, err := lockKeys(keysDir)
		if err != nil {
			return nil, err
		}
		err = settleRotation(keysDir)
		unlock()
		if err != nil {
			return nil, err
		}
	}
	return loadKeys(keysDir, roles...)
}

func loadKeys(keysDir string, roles ...string) (Signers, error) {
	out := Signers{}
	for _, role := range roles {
		files, err := keyFiles(keysDir, role)
		if err != nil {
			return nil, err
		}
		for _, p := range files {
			s, err := LoadKeyFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[role] = append(out[role], s)
		}
	}
	return out, nil
}
