package tufrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/atomicfile"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// ErrExpired reports TUF metadata that has expired at the time of
// evaluation. An offline verifier with an old mirror gets it; it may then
// choose, explicitly, to evaluate the metadata as of an earlier time
// (ClientOptions.At), which the CLI reports.
var ErrExpired = errors.New("TUF metadata has expired")

// ClientOptions configure a [Client].
type ClientOptions struct {
	// Root is a trusted root.json obtained out of band (any version; the
	// client walks the rotations from it).
	Root []byte
	// URL is the repository's base URL (its metadata/ and targets/ are
	// below it); or MirrorDir, a directory written by Mirror, for an
	// air-gapped verifier.
	URL       string
	MirrorDir string
	// CacheDir keeps verified metadata and targets between runs, so that a
	// repository (or mirror) that rolls back what an earlier run trusted is
	// refused; see DefaultCacheDir. Empty: nothing is kept (nothing is
	// written either), and a rollback across runs goes unseen.
	CacheDir string
	// At, when set, is the time at which metadata expiry is judged instead
	// of now. It is for verifying with a mirror that has since expired, and
	// must be a deliberate, reported choice.
	At   time.Time
	HTTP *http.Client
}

// Client reads a repository through go-tuf's updater: every target it
// returns is verified through the chain root → timestamp → snapshot →
// targets (→ delegated role). It is not safe for concurrent use.
type Client struct {
	up *updater.Updater
}

const mirrorScheme = "mirror://"

// dirFetcher serves a mirror directory to go-tuf, reporting a missing file
// as the 404 the updater expects (so that the root walk stops there).
type dirFetcher struct{ dir string }

func (f dirFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	rel := strings.TrimPrefix(urlPath, mirrorScheme)
	if rel == urlPath || strings.Contains(rel, "..") {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusBadRequest, URL: urlPath}
	}
	p := filepath.Join(f.dir, filepath.FromSlash(rel))
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: urlPath}
	}
	if err != nil {
		return nil, err
	}
	if st.Size() > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than %d", rel, st.Size(), maxLength)}
	}
	return os.ReadFile(p)
}

// checkingFetcher refuses a timestamp that names no snapshot before go-tuf
// reads it (its updater dereferences that entry unchecked).
type checkingFetcher struct{ fetcher.Fetcher }

func (f checkingFetcher) DownloadFile(u string, maxLength int64, timeout time.Duration) ([]byte, error) {
	b, err := f.Fetcher.DownloadFile(u, maxLength, timeout)
	if err != nil || !strings.HasSuffix(u, "/timestamp.json") {
		return b, err
	}
	ts, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("timestamp: %v", err)}
	}
	if ts.Signed.Meta["snapshot.json"] == nil {
		return nil, &metadata.ErrRepository{Msg: "the timestamp names no snapshot"}
	}
	return b, nil
}

// NewClient refreshes the top-level metadata and returns a client.
func NewClient(o ClientOptions) (*Client, error) {
	base := strings.TrimSuffix(o.URL, "/")
	if o.MirrorDir != "" {
		base = mirrorScheme
	} else if base == "" {
		return nil, errors.New("TUF: a repository URL or a mirror directory is required")
	}
	cache := o.CacheDir
	trustedRoot, err := cachedRoot(cache, o.Root)
	if err != nil {
		return nil, err
	}
	cfg, err := config.New(strings.TrimSuffix(base, "/")+"/metadata", trustedRoot)
	if err != nil {
		return nil, err
	}
	if o.MirrorDir != "" {
		cfg.RemoteMetadataURL, cfg.RemoteTargetsURL = mirrorScheme+"metadata", mirrorScheme+"targets"
		cfg.Fetcher = checkingFetcher{dirFetcher{o.MirrorDir}}
	} else {
		cfg.RemoteTargetsURL = base + "/targets"
		f := fetcher.NewDefaultFetcher()
		if o.HTTP != nil {
			f.SetHTTPClient(o.HTTP)
		}
		cfg.Fetcher = checkingFetcher{f}
	}
	if cache == "" {
		cfg.DisableLocalCache = true
	} else {
		cfg.LocalMetadataDir = filepath.Join(cache, "metadata")
		cfg.LocalTargetsDir = filepath.Join(cache, "targets")
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("TUF: %w", err)
	}
	if !o.At.IsZero() {
		up.UnsafeSetRefTime(o.At)
	}
	if err := up.Refresh(); err != nil {
		return nil, wrapTUF(err)
	}
	return &Client{up: up}, nil
}

// DefaultCacheDir is where the CLI keeps a repository's verified metadata
// between runs: the user's cache directory, evident/tuf/, and a name derived
// from the trusted root, so that each trust anchor has its own state (the
// same for its online repository and its mirrors: a mirror older than what
// was once seen online is a rollback).
func DefaultCacheDir(root []byte) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for TUF metadata (%w): give one with --tuf-cache", err)
	}
	sum := sha256.Sum256(root)
	return filepath.Join(dir, "evident", "tuf", hex.EncodeToString(sum[:12])), nil
}

// ErrOtherCache: the cache directory holds the state of another trusted
// root.
var ErrOtherCache = errors.New("the TUF cache directory belongs to another trusted root")

// cachedRoot is the root to start from: the cache's root.json, which an
// earlier run verified, when it is newer than the given one; else root. A
// cache is bound to the trusted root it was started from (its file
// "anchor"), so that one started from another root is never trusted.
func cachedRoot(cache string, root []byte) ([]byte, error) {
	if cache == "" {
		return root, nil
	}
	sum := sha256.Sum256(root)
	anchor := hex.EncodeToString(sum[:]) + "\n"
	ap := filepath.Join(cache, "anchor")
	switch got, err := os.ReadFile(ap); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(cache, 0o700); err != nil {
			return nil, fmt.Errorf("TUF cache: %w", err)
		}
		if err := atomicfile.Write(ap, []byte(anchor), 0o600); err != nil {
			return nil, fmt.Errorf("TUF cache: %w", err)
		}
		return root, nil
	case err != nil:
		return nil, fmt.Errorf("TUF cache: %w", err)
	case string(got) != anchor:
		return nil, fmt.Errorf("%w: %s (give this root its own --tuf-cache directory)", ErrOtherCache, cache)
	}
	p := filepath.Join(cache, "metadata", "root.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return root, nil
	} else if err != nil {
		return nil, fmt.Errorf("TUF cache: %w", err)
	}
	given, err := metadata.Root().FromBytes(root)
	if err != nil {
		return nil, fmt.Errorf("TUF: the trusted root: %w", err)
	}
	cached, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("TUF cache: %s: %w (remove %s to start again from the trusted root)", p, err, cache)
	}
	if cached.Signed.Version > given.Signed.Version {
		return b, nil
	}
	return root, nil
}

func wrapTUF(err error) error {
	if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		return fmt.Errorf("%w: %v (fetch or mirror fresh metadata; or, offline, evaluate it as of a time it was valid with --tuf-at, a choice the report states)", ErrExpired, err)
	}
	return fmt.Errorf("TUF: %w", err)
}

// Target downloads (or reads from the cache) a target, verified.
func (c *Client) Target(name string) ([]byte, error) {
	ti, err := c.up.GetTargetInfo(name)
	if err != nil {
		return nil, wrapTUF(err)
	}
	if _, b, err := c.up.FindCachedTarget(ti, ""); err == nil && b != nil {
		return b, nil
	}
	_, b, err := c.up.DownloadTarget(ti, "", "")
	if err != nil {
		return nil, wrapTUF(err)
	}
	return b, nil
}

// TrustRoot returns the published trust root.
func (c *Client) TrustRoot() (*evident.TrustRoot, error) {
	b, err := c.Target(evident.TrustRootTarget)
	if err != nil {
		return nil, err
	}
	return evident.ParseTrustRoot(b)
}

// Layout returns the layout project/name current at t (the latest for a
// zero t) and which version it is.
func (c *Client) Layout(project, name string, t time.Time) ([]byte, LayoutVersion, error) {
	dir, err := layoutDir(project, name)
	if err != nil {
		return nil, LayoutVersion{}, err
	}
	b, err := c.Target(dir + "index.json")
	if err != nil {
		return nil, LayoutVersion{}, err
	}
	var idx LayoutIndex
	if err := parseIndex(b, &idx); err != nil {
		return nil, LayoutVersion{}, err
	}
	v, err := idx.Pick(t)
	if err != nil {
		return nil, LayoutVersion{}, err
	}
	if path.Dir(v.Target)+"/" != dir {
		return nil, LayoutVersion{}, fmt.Errorf("layout index names %s, outside %s", v.Target, dir)
	}
	lb, err := c.Target(v.Target)
	return lb, v, err
}

// RootVersion is the version of the trusted root after the refresh.
func (c *Client) RootVersion() int64 { return c.up.GetTrustedMetadataSet().Root.Signed.Version }
