package tufrepo

import (
	"encoding/hex"
	"fmt"
	"github.com/evident-dev/evident/atomicfile"
	"os"
	"path"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// maxMirrorFile bounds each file Mirror copies.
const maxMirrorFile = 16 << 20

// Mirror copies one consistent snapshot of the repository at o.URL — every
// root version, the timestamp, the snapshot, every targets role and every
// target — into out, for an air-gapped verifier (ClientOptions.MirrorDir).
// It first verifies the repository with o.Root, then verifies the copy the
// same way, downloading every target through it. It returns the number of
// targets copied.
func Mirror(o ClientOptions, out string) (int, error) {
	c, err := NewClient(o)
	if err != nil {
		return 0, err
	}
	base := strings.TrimSuffix(o.URL, "/")
	f := fetcher.NewDefaultFetcher()
	if o.HTTP != nil {
		f.SetHTTPClient(o.HTTP)
	}
	fetch := func(rel string) ([]byte, error) {
		b, err := f.DownloadFile(base+"/"+rel, maxMirrorFile, 0)
		if err != nil {
			return nil, err
		}
		return b, atomicfile.Write(path.Join(out, rel), b, 0o644)
	}
	for v := int64(1); v <= c.RootVersion(); v++ {
		if _, err := fetch(fmt.Sprintf("metadata/%d.root.json", v)); err != nil {
			return 0, err
		}
	}
	tsb, err := fetch("metadata/timestamp.json")
	if err != nil {
		return 0, err
	}
	ts, err := metadata.Timestamp().FromBytes(tsb)
	if err != nil {
		return 0, err
	}
	snb, err := fetch(fmt.Sprintf("metadata/%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version))
	if err != nil {
		return 0, err
	}
	snap, err := metadata.Snapshot().FromBytes(snb)
	if err != nil {
		return 0, err
	}
	var names []string
	for name, mf := range snap.Signed.Meta {
		b, err := fetch(fmt.Sprintf("metadata/%d.%s", mf.Version, name))
		if err != nil {
			return 0, err
		}
		t, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return 0, err
		}
		for tn, tf := range t.Signed.Targets {
			if _, err := fetch(path.Join("targets", path.Dir(tn), hex.EncodeToString(tf.Hashes["sha256"])+"."+path.Base(tn))); err != nil {
				return 0, err
			}
			names = append(names, tn)
		}
	}
	// Verify the copy as an air-gapped verifier will read it.
	cache, err := os.MkdirTemp("", "evident-mirror-check-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(cache)
	check, err := NewClient(ClientOptions{Root: o.Root, MirrorDir: out, CacheDir: cache, At: o.At})
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
