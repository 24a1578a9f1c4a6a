package tufrepo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// maxMirrorFile bounds each target Mirror copies.
const maxMirrorFile = 16 << 20

// ErrUnsafeName: a role or target name in the (verified) metadata would not
// be a plain file name inside the mirror.
var ErrUnsafeName = errors.New("TUF metadata names a file outside the mirror")

// Mirror copies one consistent snapshot of the repository at o.URL into
// out, for an air-gapped verifier (ClientOptions.MirrorDir): every root
// version from o.Root's on, the timestamp, the snapshot, every targets role
// reachable by delegation and every target those roles list.
//
// Every file is written only after go-tuf has verified its bytes (roots
// along the rotation chain, then timestamp → snapshot → targets → delegated
// roles, targets by length and hashes), under a name built from verified
// metadata (versions, role names escaped as go-tuf escapes them, target
// paths that must be local), inside out (an os.Root). The timestamp is
// written last, so an interrupted mirror still reads as its previous state.
// The copy is then read back as a verifier will. Mirror returns the number
// of targets copied.
func Mirror(o ClientOptions, out string) (int, error) {
	// The client's refresh checks freshness against o.CacheDir's state
	// (rollback across runs).
	c, err := NewClient(o)
	if err != nil {
		return 0, err
	}
	base := strings.TrimSuffix(o.URL, "/")
	f := fetcher.NewDefaultFetcher()
	if o.HTTP != nil {
		f.SetHTTPClient(o.HTTP)
	}
	limits, err := config.New(base+"/metadata", o.Root)
	if err != nil {
		return 0, err
	}
	fetch := func(rel string, max int64) ([]byte, error) {
		return f.DownloadFile(base+"/"+rel, max, 0)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(out)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	trusted, err := trustedmetadata.New(o.Root)
	if err != nil {
		return 0, fmt.Errorf("TUF: the trusted root: %w", err)
	}
	if !o.At.IsZero() {
		trusted.RefTime = o.At
	}
	w := &mirrorWriter{root: root}
	// Roots: the trusted one, then each next version that it verifies.
	if err := w.write(fmt.Sprintf("metadata/%d.root.json", trusted.Root.Signed.Version), o.Root); err != nil {
		return 0, err
	}
	for v := trusted.Root.Signed.Version + 1; v <= c.RootVersion(); v++ {
		b, err := fetch(fmt.Sprintf("metadata/%d.root.json", v), limits.RootMaxLength)
		if err != nil {
			return 0, err
		}
		if _, err := trusted.UpdateRoot(b); err != nil {
			return 0, wrapTUF(err)
		}
		if err := w.write(fmt.Sprintf("metadata/%d.root.json", trusted.Root.Signed.Version), b); err != nil {
			return 0, err
		}
	}
	tsb, err := fetch("metadata/timestamp.json", limits.TimestampMaxLength)
	if err != nil {
		return 0, err
	}
	ts, err := trusted.UpdateTimestamp(tsb)
	if err != nil {
		return 0, wrapTUF(err)
	}
	snapMeta := ts.Signed.Meta["snapshot.json"]
	if snapMeta == nil {
		return 0, errors.New("TUF: the timestamp names no snapshot")
	}
	snb, err := fetch(fmt.Sprintf("metadata/%d.snapshot.json", snapMeta.Version), limits.SnapshotMaxLength)
	if err != nil {
		return 0, err
	}
	snap, err := trusted.UpdateSnapshot(snb, false)
	if err != nil {
		return 0, wrapTUF(err)
	}
	if err := w.write(fmt.Sprintf("metadata/%d.snapshot.json", snap.Signed.Version), snb); err != nil {
		return 0, err
	}
	// Targets roles, breadth-first from the top-level one, each verified
	// by its delegator; at most limits.MaxDelegations of them.
	type pending struct{ role, parent string }
	queue, seen := []pending{{metadata.TARGETS, metadata.ROOT}}, map[string]bool{metadata.TARGETS: true}
	var names []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		meta := snap.Signed.Meta[p.role+".json"]
		if meta == nil {
			return 0, fmt.Errorf("TUF: the snapshot does not list the role %q", p.role)
		}
		file := fmt.Sprintf("metadata/%d.%s.json", meta.Version, url.PathEscape(p.role))
		b, err := fetch(file, limits.TargetsMaxLength)
		if err != nil {
			return 0, err
		}
		t, err := trusted.UpdateDelegatedTargets(b, p.role, p.parent)
		if err != nil {
			return 0, wrapTUF(err)
		}
		if err := w.write(file, b); err != nil {
			return 0, err
		}
		tnames := make([]string, 0, len(t.Signed.Targets))
		for tn := range t.Signed.Targets {
			tnames = append(tnames, tn)
		}
		sort.Strings(tnames)
		for _, tn := range tnames {
			if err := w.target(tn, t.Signed.Targets[tn], fetch); err != nil {
				return 0, err
			}
			names = append(names, tn)
		}
		if t.Signed.Delegations != nil {
			for _, dr := range t.Signed.Delegations.Roles {
				if seen[dr.Name] {
					continue
				}
				if len(seen) >= limits.MaxDelegations {
					return 0, fmt.Errorf("TUF: more than %d targets roles", limits.MaxDelegations)
				}
				seen[dr.Name] = true
				queue = append(queue, pending{dr.Name, p.role})
			}
		}
	}
	if err := w.write("metadata/timestamp.json", tsb); err != nil {
		return 0, err
	}
	// Read the copy back as an air-gapped verifier will (nothing cached).
	check, err := NewClient(ClientOptions{Root: o.Root, MirrorDir: out, At: o.At})
	if err != nil {
		return 0, fmt.Errorf("the mirror does not verify: %w", err)
	}
	for _, n := range names {
		if _, err := check.Target(n); err != nil {
			return 0, fmt.Errorf("the mirror does not verify: %w", err)
		}
	}
	return len(names), nil
}

// mirrorWriter writes verified files inside the mirror directory.
type mirrorWriter struct{ root *os.Root }

// write replaces rel (slash-separated, local) with b: a temporary file in
// the same directory, then a rename.
func (w *mirrorWriter) write(rel string, b []byte) error {
	if !filepath.IsLocal(filepath.FromSlash(rel)) || strings.Contains(rel, "\\") {
		return fmt.Errorf("%w: %q", ErrUnsafeName, rel)
	}
	name := filepath.FromSlash(rel)
	if err := w.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+"."+rand.Text())
	if err := w.root.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := w.root.Rename(tmp, name); err != nil {
		w.root.Remove(tmp)
		return err
	}
	return nil
}

// target downloads target tn as go-tuf names it in a consistent snapshot
// (DIR/HASH.BASE, one file per listed hash), verifies its length and hashes
// and writes it. tn must be a clean relative path with no "." or ".."
// element.
func (w *mirrorWriter) target(tn string, tf *metadata.TargetFiles, fetch func(string, int64) ([]byte, error)) error {
	if tn == "" || path.Clean(tn) != tn || !filepath.IsLocal(filepath.FromSlash(tn)) || strings.Contains(tn, "\\") || strings.HasPrefix(path.Base(tn), ".") {
		return fmt.Errorf("%w: target %q", ErrUnsafeName, tn)
	}
	if tf == nil || tf.Length < 0 || tf.Length > maxMirrorFile || len(tf.Hashes) == 0 {
		return fmt.Errorf("TUF: target %q: want a length up to %d bytes and a hash", tn, maxMirrorFile)
	}
	dir, base := path.Split(tn)
	algs := make([]string, 0, len(tf.Hashes))
	for alg := range tf.Hashes {
		algs = append(algs, alg)
	}
	sort.Strings(algs)
	rel := func(alg string) string { return "targets/" + dir + hex.EncodeToString(tf.Hashes[alg]) + "." + base }
	var b []byte
	for _, alg := range algs {
		got, err := fetch(rel(alg), tf.Length)
		var he *metadata.ErrDownloadHTTP
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			continue // served under another of its hashes
		} else if err != nil {
			return err
		}
		if err := tf.VerifyLengthHashes(got); err != nil {
			return fmt.Errorf("TUF: target %q: %w", tn, err)
		}
		b = got
		break
	}
	if b == nil {
		return fmt.Errorf("TUF: target %q is not served under any of its hashes", tn)
	}
	for _, alg := range algs {
		if err := w.write(rel(alg), b); err != nil {
			return err
		}
	}
	return nil
}
