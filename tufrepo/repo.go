// Package tufrepo publishes and consumes evident's TUF repository (The
// Update Framework, specification 1.0), built on go-tuf/v2 metadata: the
// trust root (evident.TrustRoot) and the in-toto layouts, each a target.
//
// A repository directory holds, with consistent snapshots:
//
//	metadata/1.root.json … N.root.json   every root version, so clients can walk the rotations
//	metadata/timestamp.json              the only file ever replaced (atomically, last)
//	metadata/V.snapshot.json, V.targets.json, V.<delegated role>.json
//	targets/<sha256>.trusted_root.json
//	targets/layouts/<project>/<name>/<sha256>.v<N>.layout and <sha256>.index.json
//
// Keys live apart, one PKCS #8 PEM file per key: root-1.pem … root-K.pem,
// targets.pem, snapshot.pem, timestamp.pem, so that a deployment keeps the
// root and targets keys offline and gives the server only the online
// snapshot and timestamp keys. A project's layouts can be delegated to its
// release managers: role "layouts-<project>" for paths layouts/<project>/*/*,
// with their own keys and threshold.
//
// Publishing writes every changed targets role, then the snapshot, then the
// timestamp, each written and fsynced before the next, so a crash never
// leaves a timestamp that points at metadata that is not there, and
// versions only grow.
package tufrepo

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident/atomicfile"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Role names.
const (
	Root      = metadata.ROOT
	Targets   = metadata.TARGETS
	Snapshot  = metadata.SNAPSHOT
	Timestamp = metadata.TIMESTAMP
)

// Expiries of freshly signed metadata. The server re-signs snapshot and
// timestamp (the online roles) before they expire.
const (
	RootExpiry      = 365 * 24 * time.Hour
	TargetsExpiry   = 180 * 24 * time.Hour
	SnapshotExpiry  = 7 * 24 * time.Hour
	TimestampExpiry = 24 * time.Hour
)

// Expiry is the expiry of freshly signed metadata of the top-level role
// (Root, Targets, Snapshot or Timestamp); 0 for any other name.
func Expiry(role string) time.Duration {
	switch role {
	case Root:
		return RootExpiry
	case Targets:
		return TargetsExpiry
	case Snapshot:
		return SnapshotExpiry
	case Timestamp:
		return TimestampExpiry
	}
	return 0
}

// DelegatedExpiry is the expiry of delegated targets roles.
const DelegatedExpiry = 180 * 24 * time.Hour

// ErrThreshold reports metadata that the given keys cannot sign validly.
var ErrThreshold = errors.New("signature threshold not met")

// Repo is a TUF repository being published. It is not safe for concurrent
// use.
type Repo struct {
	dir     string
	now     func() time.Time
	root    *metadata.Metadata[metadata.RootType]
	targets map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and delegated roles
	snap    *metadata.Metadata[metadata.SnapshotType]
	ts      *metadata.Metadata[metadata.TimestampType]
	dirty   map[string]bool

	// testHookAfterTargets, when set, runs after the targets roles are
	// written and before the snapshot is: tests crash the publisher there.
	testHookAfterTargets func() error
	// testHookWrite, when set, runs before each metadata file is written:
	// tests crash the publisher there.
	testHookWrite func(name string) error
}

// InitOptions configure a new repository.
type InitOptions struct {
	// RootKeys is the number of root keys (default 1), RootThreshold how
	// many must sign (default 1).
	RootKeys, RootThreshold int
	Now                     func() time.Time
}

// Init creates a repository in dir (which must not hold one) and its keys
// in keysDir, and publishes version 1 of every role.
func Init(dir, keysDir string, o InitOptions) (*Repo, error) {
	if o.RootKeys <= 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold <= 0 {
		o.RootThreshold = 1
	}
	if o.RootThreshold > o.RootKeys {
		return nil, fmt.Errorf("root threshold %d is more than the %d root keys", o.RootThreshold, o.RootKeys)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata", "1.root.json")); err == nil {
		return nil, fmt.Errorf("%s holds a repository already", dir)
	}
	for _, d := range []string{filepath.Join(dir, "metadata"), filepath.Join(dir, "targets"), keysDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	now := o.Now()
	r := &Repo{dir: dir, now: o.Now, targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, dirty: map[string]bool{}}
	r.root = metadata.Root(now.Add(Expiry(Root)))
	r.root.Signed.Roles[Root].Threshold = o.RootThreshold
	signers := Signers{}
	for i := 1; i <= o.RootKeys; i++ {
		s, err := writeKeyFile(filepath.Join(keysDir, keyFileName(Root, i)))
		if err != nil {
			return nil, err
		}
		if err := addKey(r.root, s, Root); err != nil {
			return nil, err
		}
		signers[Root] = append(signers[Root], s)
	}
	for _, role := range []string{Targets, Snapshot, Timestamp} {
		s, err := writeKeyFile(filepath.Join(keysDir, keyFileName(role, 1)))
		if err != nil {
			return nil, err
		}
		if err := addKey(r.root, s, role); err != nil {
			return nil, err
		}
		signers[role] = []signature.Signer{s}
	}
	if err := r.signRoot(signers[Root], nil); err != nil {
		return nil, err
	}
	r.targets[Targets] = metadata.Targets(now)
	r.targets[Targets].Signed.Version = 0
	r.snap = metadata.Snapshot(now)
	r.snap.Signed.Version = 0
	r.ts = metadata.Timestamp(now)
	r.ts.Signed.Version = 0
	r.dirty[Targets] = true
	return r, r.Publish(signers)
}

// Open loads the published state of the repository in dir.
func Open(dir string, now func() time.Time) (*Repo, error) {
	if now == nil {
		now = time.Now
	}
	r := &Repo{dir: dir, now: now, targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, dirty: map[string]bool{}}
	md := filepath.Join(dir, "metadata")
	for v := 1; ; v++ {
		p := filepath.Join(md, strconv.Itoa(v)+".root.json")
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if v == 1 {
				return nil, fmt.Errorf("%s holds no TUF repository (no metadata/1.root.json)", dir)
			}
			break
		}
		root, err := metadata.Root().FromFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		r.root = root
	}
	var err error
	if r.ts, err = metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json")); err != nil {
		return nil, err
	}
	sv := r.ts.Signed.Meta["snapshot.json"].Version
	if r.snap, err = metadata.Snapshot().FromFile(filepath.Join(md, fmt.Sprintf("%d.snapshot.json", sv))); err != nil {
		return nil, err
	}
	for name, mf := range r.snap.Signed.Meta {
		role := strings.TrimSuffix(name, ".json")
		t, err := metadata.Targets().FromFile(filepath.Join(md, fmt.Sprintf("%d.%s", mf.Version, name)))
		if err != nil {
			return nil, err
		}
		r.targets[role] = t
	}
	// A role delegated but not yet signed by its keys is in the top-level
	// targets only: stage it empty, as Delegate does, so that its layouts
	// go to it and never to the top-level targets.
	if d := r.targets[Targets].Signed.Delegations; d != nil {
		for _, dr := range d.Roles {
			if _, ok := r.targets[dr.Name]; !ok {
				t := metadata.Targets(now())
				t.Signed.Version = 0
				r.targets[dr.Name] = t
			}
		}
	}
	return r, nil
}

// Signers are the keys at hand, by role name.
type Signers map[string][]signature.Signer

// LoadKeyFile loads an Ed25519 private key from a PKCS #8 PEM file.
func LoadKeyFile(p string) (signature.Signer, error) {
	k, err := pemfile.LoadPrivateKey(p)
	if err != nil {
		return nil, err
	}
	return signature.LoadSigner(k, crypto.Hash(0))
}

// NewKeyFile generates an Ed25519 key into a new PEM file (mode 0600),
// durably; an existing file is an error.
func NewKeyFile(p string) (signature.Signer, error) { return writeKeyFile(p) }

// PublicKeyPEM returns s's public key as a PKIX PEM block.
func PublicKeyPEM(s signature.Signer) ([]byte, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	return pemfile.EncodePublicKey(pub)
}

func tufKey(s signature.Signer) (*metadata.Key, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, err
	}
	return metadata.KeyFromPublicKey(pub)
}

func addKey(root *metadata.Metadata[metadata.RootType], s signature.Signer, role string) error {
	k, err := tufKey(s)
	if err != nil {
		return err
	}
	return root.Signed.AddKey(k, role)
}

// signRoot signs the current root with signers, checks that it satisfies
// its own root threshold and, for a rotation, the previous root's, and
// writes it as metadata/<version>.root.json.
func (r *Repo) signRoot(signers []signature.Signer, prev *metadata.Metadata[metadata.RootType]) error {
	r.root.ClearSignatures()
	for _, s := range signers {
		if _, err := r.root.Sign(s); err != nil {
			return err
		}
	}
	if err := r.root.VerifyDelegate(Root, r.root); err != nil {
		return fmt.Errorf("%w: root version %d: %v", ErrThreshold, r.root.Signed.Version, err)
	}
	if prev != nil {
		if err := prev.VerifyDelegate(Root, r.root); err != nil {
			return fmt.Errorf("%w: root version %d by the keys of version %d: %v", ErrThreshold, r.root.Signed.Version, prev.Signed.Version, err)
		}
	}
	return r.write(fmt.Sprintf("%d.root.json", r.root.Signed.Version), r.root)
}

// write stores metadata under metadata/ durably (temporary file, fsync,
// rename, directory fsync). Versioned files (all but timestamp.json) are
// written once: an existing one is never replaced (threat model U2).
func (r *Repo) write(name string, md interface{ ToBytes(bool) ([]byte, error) }) error {
	b, err := md.ToBytes(true)
	if err != nil {
		return err
	}
	if r.testHookWrite != nil {
		if err := r.testHookWrite(name); err != nil {
			return err
		}
	}
	p := filepath.Join(r.dir, "metadata", name)
	if name == "timestamp.json" {
		return atomicfile.Write(p, b, 0o644)
	}
	if err := atomicfile.WriteNew(p, b, 0o644); err != nil {
		return fmt.Errorf("couldn't publish %s: %w", name, err)
	}
	return nil
}

// freeVersion returns the first version from v on whose file for role
// (metadata/<version>.<role>.json) does not exist. A publisher killed after
// writing a role's file but before the snapshot naming it leaves that file
// behind, unreferenced but perhaps already copied by a mirror: its version
// number is never used again.
func (r *Repo) freeVersion(role string, v int64) int64 {
	for {
		_, err := os.Lstat(filepath.Join(r.dir, "metadata", fmt.Sprintf("%d.%s.json", v, role)))
		if errors.Is(err, fs.ErrNotExist) {
			return v
		}
		v++
	}
}

// cleanTemp removes the temporary files a killed publisher left in the
// repository. Publishers hold the repository's lock (Update), so no
// temporary file belongs to a live one.
func (r *Repo) cleanTemp() {
	filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			os.Remove(p)
		}
		return nil
	})
}

// SetTarget stores data as target name of role (targets or a delegated
// role) with optional custom metadata. It takes effect at the next Publish.
func (r *Repo) SetTarget(role, name string, data []byte, custom any) error {
	t, ok := r.targets[role]
	if !ok {
		return fmt.Errorf("no targets role %q", role)
	}
	if role != Targets {
		if ok, _ := r.delegation(role).IsDelegatedPath(name); !ok {
			return fmt.Errorf("role %s may not sign target %s", role, name)
		}
	}
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		return err
	}
	if custom != nil {
		b, err := json.Marshal(custom)
		if err != nil {
			return err
		}
		raw := json.RawMessage(b)
		tf.Custom = &raw
	}
	sum := sha256.Sum256(data)
	p := filepath.Join(r.dir, "targets", filepath.FromSlash(path.Dir(name)), hex.EncodeToString(sum[:])+"."+path.Base(name))
	if err := atomicfile.Write(p, data, 0o644); err != nil {
		return err
	}
	t.Signed.Targets[name] = tf
	r.dirty[role] = true
	return nil
}

// Target returns the current content of a target of role, or
// fs.ErrNotExist.
func (r *Repo) Target(role, name string) ([]byte, *metadata.TargetFiles, error) {
	t, ok := r.targets[role]
	if !ok {
		return nil, nil, fmt.Errorf("no targets role %q: %w", role, fs.ErrNotExist)
	}
	tf, ok := t.Signed.Targets[name]
	if !ok {
		return nil, nil, fmt.Errorf("target %s: %w", name, fs.ErrNotExist)
	}
	p := filepath.Join(r.dir, "targets", filepath.FromSlash(path.Dir(name)), hex.EncodeToString(tf.Hashes["sha256"])+"."+path.Base(name))
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	return b, tf, tf.VerifyLengthHashes(b)
}

func (r *Repo) delegation(role string) *metadata.DelegatedRole {
	d := r.targets[Targets].Signed.Delegations
	if d == nil {
		return nil
	}
	for i := range d.Roles {
		if d.Roles[i].Name == role {
			return &d.Roles[i]
		}
	}
	return nil
}

// ProjectRole is the delegated role of a project's layouts.
func ProjectRole(project string) string { return "layouts-" + project }

// Delegate delegates layouts/<project>/*/* to a new role signed by keys
// with threshold. It takes effect at the next Publish, which needs the
// targets key.
func (r *Repo) Delegate(project string, keys []crypto.PublicKey, threshold int) error {
	if project == "" || strings.ContainsAny(project, "/*?[]\\") {
		return fmt.Errorf("bad project name %q", project)
	}
	if threshold < 1 || threshold > len(keys) {
		return fmt.Errorf("threshold %d with %d keys", threshold, len(keys))
	}
	role := ProjectRole(project)
	if _, ok := r.targets[role]; ok {
		return fmt.Errorf("project %s is delegated already", project)
	}
	top := r.targets[Targets]
	if top.Signed.Delegations == nil {
		top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	dr := metadata.DelegatedRole{Name: role, Threshold: threshold, Terminating: true, Paths: []string{"layouts/" + project + "/*/*"}}
	for _, pub := range keys {
		k, err := metadata.KeyFromPublicKey(pub)
		if err != nil {
			return err
		}
		id, err := k.ID()
		if err != nil {
			return err
		}
		top.Signed.Delegations.Keys[id] = k
		dr.KeyIDs = append(dr.KeyIDs, id)
	}
	top.Signed.Delegations.Roles = append(top.Signed.Delegations.Roles, dr)
	t := metadata.Targets(r.now())
	t.Signed.Version = 0 // enters the snapshot once its keys first sign it
	r.targets[role] = t
	r.dirty[Targets] = true
	return nil
}

// Publish signs and writes every changed targets role, then a new snapshot,
// then a new timestamp, in that order, each durable before the next.
// signers must hold enough keys for each changed role, and the snapshot and
// timestamp keys. On error nothing is published, and r returns to the
// published state (staged changes are dropped).
func (r *Repo) Publish(signers Signers) (err error) {
	defer r.reloadOnError(&err)
	r.cleanTemp()
	now := r.now()
	var roles []string
	for role := range r.dirty {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		t := r.targets[role]
		t.Signed.Version = r.freeVersion(role, t.Signed.Version+1)
		exp := DelegatedExpiry
		if role == Targets {
			exp = Expiry(Targets)
		}
		t.Signed.Expires = now.Add(exp).UTC().Truncate(time.Second)
		if err := r.signTargets(role, signers[role]); err != nil {
			return err
		}
		if err := r.write(fmt.Sprintf("%d.%s.json", t.Signed.Version, role), t); err != nil {
			return err
		}
	}
	if r.testHookAfterTargets != nil {
		if err := r.testHookAfterTargets(); err != nil {
			return err
		}
	}
	for role, t := range r.targets {
		if t.Signed.Version > 0 {
			r.snap.Signed.Meta[role+".json"] = metadata.MetaFile(t.Signed.Version)
		}
	}
	if err := r.publishOnline(signers, now); err != nil {
		return err
	}
	clear(r.dirty)
	return nil
}

// signTargets signs a targets role and checks the threshold its delegator
// sets.
func (r *Repo) signTargets(role string, signers []signature.Signer) error {
	t := r.targets[role]
	t.ClearSignatures()
	for _, s := range signers {
		if _, err := t.Sign(s); err != nil {
			return err
		}
	}
	var err error
	if role == Targets {
		err = r.root.VerifyDelegate(Targets, t)
	} else {
		err = r.targets[Targets].VerifyDelegate(role, t)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrThreshold, role, err)
	}
	return nil
}

// publishOnline writes a new snapshot, then a new timestamp.
func (r *Repo) publishOnline(signers Signers, now time.Time) error {
	r.snap.Signed.Version = r.freeVersion(Snapshot, r.snap.Signed.Version+1)
	r.snap.Signed.Expires = now.Add(Expiry(Snapshot)).UTC().Truncate(time.Second)
	r.snap.ClearSignatures()
	for _, s := range signers[Snapshot] {
		if _, err := r.snap.Sign(s); err != nil {
			return err
		}
	}
	if err := r.root.VerifyDelegate(Snapshot, r.snap); err != nil {
		return fmt.Errorf("%w: snapshot: %v", ErrThreshold, err)
	}
	if err := r.write(fmt.Sprintf("%d.snapshot.json", r.snap.Signed.Version), r.snap); err != nil {
		return err
	}
	r.ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snap.Signed.Version)
	r.ts.Signed.Version++
	r.ts.Signed.Expires = now.Add(Expiry(Timestamp)).UTC().Truncate(time.Second)
	r.ts.ClearSignatures()
	for _, s := range signers[Timestamp] {
		if _, err := r.ts.Sign(s); err != nil {
			return err
		}
	}
	if err := r.root.VerifyDelegate(Timestamp, r.ts); err != nil {
		return fmt.Errorf("%w: timestamp: %v", ErrThreshold, err)
	}
	return r.write("timestamp.json", r.ts)
}

// reloadOnError puts r back to the state on disk when *err is set.
func (r *Repo) reloadOnError(err *error) {
	if *err == nil {
		return
	}
	fresh, lerr := Open(r.dir, r.now)
	if lerr != nil {
		*err = errors.Join(*err, fmt.Errorf("couldn't reload the repository: %w", lerr))
		return
	}
	r.root, r.targets, r.snap, r.ts, r.dirty = fresh.root, fresh.targets, fresh.snap, fresh.ts, fresh.dirty
}

// RefreshOnline re-signs the snapshot and timestamp if either expires
// within the given time; it reports whether it did.
func (r *Repo) RefreshOnline(signers Signers, within time.Duration) (_ bool, err error) {
	defer r.reloadOnError(&err)
	now := r.now()
	if r.snap.Signed.Expires.After(now.Add(within)) && r.ts.Signed.Expires.After(now.Add(within)) {
		return false, nil
	}
	r.cleanTemp()
	return true, r.publishOnline(signers, now)
}

// RotateKey replaces the keys of a top-level role with next's and writes a
// new root version, signed by the current root keys (rootSigners) and, for
// a root rotation, by the new ones too. For the other roles the role is
// re-signed with its new key at the next Publish (pass next under the
// role's name in its Signers).
func (r *Repo) RotateKey(role string, next []signature.Signer, threshold int, rootSigners []signature.Signer) error {
	if role != Root && role != Targets && role != Snapshot && role != Timestamp {
		return fmt.Errorf("no top-level role %q", role)
	}
	if threshold < 1 || threshold > len(next) {
		return fmt.Errorf("threshold %d with %d keys", threshold, len(next))
	}
	prevBytes, err := r.root.ToBytes(false)
	if err != nil {
		return err
	}
	prev, err := metadata.Root().FromBytes(prevBytes)
	if err != nil {
		return err
	}
	for _, id := range append([]string(nil), r.root.Signed.Roles[role].KeyIDs...) {
		if err := r.root.Signed.RevokeKey(id, role); err != nil {
			return err
		}
	}
	for _, s := range next {
		if err := addKey(r.root, s, role); err != nil {
			return err
		}
	}
	r.root.Signed.Roles[role].Threshold = threshold
	r.root.Signed.Version++
	r.root.Signed.Expires = r.now().Add(Expiry(Root)).UTC().Truncate(time.Second)
	signers := rootSigners
	if role == Root {
		signers = append(append([]signature.Signer(nil), rootSigners...), next...)
	}
	if err := r.signRoot(signers, prev); err != nil {
		r.root = prev
		return err
	}
	if role == Targets {
		r.dirty[Targets] = true
	}
	return nil
}

// RoleStatus is one role's published state.
type RoleStatus struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
}

// Status lists every role's version and expiry, soonest expiry first.
func (r *Repo) Status() []RoleStatus {
	out := []RoleStatus{
		{Root, r.root.Signed.Version, r.root.Signed.Expires},
		{Snapshot, r.snap.Signed.Version, r.snap.Signed.Expires},
		{Timestamp, r.ts.Signed.Version, r.ts.Signed.Expires},
	}
	for role, t := range r.targets {
		out = append(out, RoleStatus{role, t.Signed.Version, t.Signed.Expires})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out
}

// RootJSON returns the bytes of root version v, for clients to start from.
func (r *Repo) RootJSON(v int64) ([]byte, error) {
	return os.ReadFile(filepath.Join(r.dir, "metadata", fmt.Sprintf("%d.root.json", v)))
}

// Dir is the repository directory.
func (r *Repo) Dir() string { return r.dir }
