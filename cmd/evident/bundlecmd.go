package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

const bundleUsage = `
Usage: evident bundle fetch (--artifact sha256:HEX|FILE [--chain] | --index N) [--out DIR] [--server URL]
       evident bundle export --format sigstore BUNDLE [--out FILE]   (see bundle export -h)

Writes bundles — link (the server's copy, checked to be the entry's
payload, with the entry's signature), entry, a fresh inclusion proof and
the checkpoint it proves against, verified against the log's key — into
--out, for verifying offline later:

  --index N            the entry at that log index;
  --artifact sha256:H  every logged link that names H as a material or product,
                       and every attestation with H as a subject's digest
                       (--artifact FILE: H is the file's SHA-256);
  --artifact … --chain the whole supply chain that made H: the entries whose
                       products include H, then, for each of their materials,
                       the entries whose products include it, and so on back
                       to the first step, with the attestations about H
                       itself. Each entry is fetched once (cycles
                       end there); the walk stops with an error past
                       --max-depth steps back or --max-bundles bundles.

Each bundle is written as STEP.KEYID.INDEX.bundle.json (an attestation's as
attestation.KEYID.INDEX.bundle.json): STEP and KEYID (from the signed link
and the entry) keep only letters, digits, '-', '_' and '.'
and never start with '.', and the log index makes the name unique. A file
of that name holding another entry's bundle is never overwritten. An entry
that cannot be fetched or checked is reported on stderr and skipped.

Examples:
  evident bundle fetch --chain --artifact sha256:$(sha256sum app.tar | cut -d' ' -f1) --out bundles/
  evident bundle fetch --index 42 --out bundles/
`

// Bounds of a --chain walk.
const (
	defaultMaxDepth   = 32
	defaultMaxBundles = 256
	// maxChainLookups bounds the entries a walk reads, written or not (an
	// artifact lookup also finds the entries that used it as a material).
	maxChainLookups = 4096
)

func runBundle(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "export" {
		return runBundleExport(e, args[1:])
	}
	if len(args) == 0 || args[0] != "fetch" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.stdout, strings.TrimLeft(bundleUsage, "\n"))
			return nil
		}
		return &usageError{msg: "bundle needs the subcommand fetch or export", usage: shortUsage(bundleUsage), cmd: "bundle"}
	}
	fs := newFlags(e, "bundle fetch", bundleUsage)
	artifact := fs.String("artifact", "", "artifact digest, sha256:HEX")
	chain := fs.Bool("chain", false, "with --artifact: fetch the whole chain of steps that made it")
	maxDepth := fs.Int("max-depth", defaultMaxDepth, "with --chain: how many steps back to walk at most")
	maxBundles := fs.Int("max-bundles", defaultMaxBundles, "with --chain: how many bundles to write at most")
	index := fs.Int64("index", -1, "log index")
	out := fs.String("out", ".", "output `directory`")
	server := fs.String("server", "", "evident server `URL` (default $EVIDENT_SERVER, else http://127.0.0.1:8080)")
	key := fs.String("log-key", "", "the log's note verifier key or file (default: from --tuf-root's trust root, else ./evident-data/log.vkey)")
	tufRoot, tufURL := addTrustFlags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if (*artifact == "") == (*index < 0) {
		return usagef("give one of --artifact sha256:HEX and --index N")
	}
	if *chain && *artifact == "" {
		return usagef("--chain walks back from an artifact: give --artifact sha256:HEX")
	}
	if *maxDepth < 0 || *maxBundles < 1 {
		return usagef("--max-depth must be 0 or more and --max-bundles 1 or more")
	}
	var start [32]byte
	if *artifact != "" {
		var err error
		if start, err = artifactDigest(*artifact); err != nil {
			return err
		}
		*artifact = "sha256:" + hex.EncodeToString(start[:])
	}
	lc, err := (&clientTrust{e: e, server: *server, logKey: *key, tufRoot: *tufRoot, tufURL: *tufURL}).logClient(ctx)
	if err != nil {
		return err
	}
	cp, signed, err := lc.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(*out)
	if err != nil {
		return err
	}
	defer root.Close()
	repo := *tufURL
	if repo == "" {
		repo = strings.TrimSuffix(lc.URL, "/") + "/tuf"
	}
	// The witness policy, as run reads it: --tuf-root, else $EVIDENT_TUF_ROOT.
	policyRoot := *tufRoot
	if policyRoot == "" {
		policyRoot = e.getenv("EVIDENT_TUF_ROOT")
	}
	policy, err := loadWitnessPolicy(policyRoot, repo)
	if err != nil {
		return err
	}
	f := &bundleFetcher{e: e, log: lc, links: &linkstore.Client{URL: lc.URL}, cp: cp, checkpoint: signed, out: root,
		witnesses: policy, loaded: map[uint64]*fetchedEntry{}, skipped: map[uint64]bool{}}
	switch {
	case *index >= 0:
		fe, err := f.load(ctx, uint64(*index))
		if err != nil {
			return err
		}
		return f.write(fe)
	case *chain:
		return f.chain(ctx, start, *maxDepth, *maxBundles)
	default:
		indices, err := f.links.ArtifactIndices(ctx, start)
		if err != nil {
			return err
		}
		if len(indices) == 0 {
			return fmt.Errorf("no logged link names %s", *artifact)
		}
		for _, idx := range indices {
			fe, err := f.load(ctx, idx)
			if err != nil {
				f.skip(idx, err)
				continue
			}
			if err := f.write(fe); err != nil {
				return err
			}
		}
		if f.written == 0 {
			return fmt.Errorf("none of the %d entries naming %s could be fetched", len(indices), *artifact)
		}
		return nil
	}
}

// artifactDigest reads --artifact: sha256:HEX, or the path of a file,
// which is hashed.
func artifactDigest(v string) ([32]byte, error) {
	var d [32]byte
	if hexd, ok := strings.CutPrefix(v, "sha256:"); ok {
		d, ok := sha256Hex(hexd)
		if !ok {
			return d, usagef("--artifact must be sha256:<64 hex digits> or a file")
		}
		return d, nil
	}
	f, err := os.Open(v)
	if err != nil {
		return d, usagef("--artifact %q is neither sha256:<64 hex digits> nor a file: %v", v, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return d, err
	}
	copy(d[:], h.Sum(nil))
	return d, nil
}

// bundleFetcher fetches and writes bundles proved against one checkpoint.
type bundleFetcher struct {
	e          *env
	log        *logclient.Client
	links      *linkstore.Client
	cp         log.Checkpoint
	checkpoint []byte
	out        *os.Root
	// witnesses, from the trust root, are whose cosignatures the proof to
	// the first witnessed checkpoint must carry (nil: any one witness).
	witnesses *witnessPolicy
	loaded    map[uint64]*fetchedEntry
	skipped   map[uint64]bool
	written   int
}

// fetchedEntry is an entry proved in the checkpoint, with its link checked
// to be the entry's payload.
type fetchedEntry struct {
	index  uint64
	bundle *evident.Bundle
	// name names the bundle file: the step, or "attestation".
	name string
	link in_toto.Link
	// statement is set for a DSSE entry (a link predicate's or another).
	statement *dsse.Statement
	written   bool
}

// load fetches the entry at idx, its inclusion proof and its link, and
// checks them (once per index).
func (f *bundleFetcher) load(ctx context.Context, idx uint64) (*fetchedEntry, error) {
	if fe, ok := f.loaded[idx]; ok {
		return fe, nil
	}
	raw, proof, err := f.log.ProveEntry(ctx, idx, f.cp)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	entry, _, err := evident.ParseEntry(raw)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	digest, err := entry.PayloadSum()
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", idx, err)
	}
	lb, err := f.links.Link(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("link of entry %d: %w", idx, err)
	}
	fe, err := payloadBundle(entry, lb, digest)
	if err != nil {
		return nil, fmt.Errorf("link of entry %d: %w", idx, err)
	}
	fe.index = idx
	fe.bundle.LogIndex, fe.bundle.InclusionProof, fe.bundle.Checkpoint = idx, proof, string(f.checkpoint)
	// When it was logged: the first checkpoint the witnesses cosigned after.
	k := 1
	if f.witnesses != nil && f.witnesses.threshold > 0 {
		k = f.witnesses.threshold
	}
	if wsigned, wproof, _, err := fetchWitnessed(ctx, f.log, idx, raw, f.witnesses, k, 0); err == nil {
		fe.bundle.Witnessed = &evident.WitnessedProof{Checkpoint: string(wsigned), InclusionProof: wproof}
	} else if k > 1 || f.witnesses != nil && f.witnesses.threshold > 0 {
		fmt.Fprintf(f.e.stderr, "evident: note: entry %d: no witnessed checkpoint: %v\n", idx, err)
	}
	f.loaded[idx] = fe
	return fe, nil
}

// payloadBundle checks that the server's copy of a payload — a link's
// stored form, or a DSSE entry's Statement — is the entry's payload, and
// joins it with the entry's signature as a bundle carries it.
func payloadBundle(entry *evident.Entry, stored []byte, digest [32]byte) (*fetchedEntry, error) {
	if entry.PayloadType == evident.PayloadTypeDSSE {
		if sha256.Sum256(stored) != digest {
			return nil, errors.New("the server's statement is not the entry's payload")
		}
		st, err := dsse.ParseStatement(stored)
		if err != nil {
			return nil, err
		}
		fe := &fetchedEntry{name: "attestation", statement: st}
		if st.PredicateType == dsse.PredicateTypeLink {
			if fe.link, err = st.Link(); err != nil {
				return nil, err
			}
			fe.name = fe.link.Name
		}
		eb, err := (&dsse.Envelope{PayloadType: entry.PayloadType, Payload: stored,
			Signatures: []dsse.Signature{{KeyID: entry.KeyID, Sig: entry.Signature}}}).Marshal()
		if err != nil {
			return nil, err
		}
		fe.bundle = &evident.Bundle{DSSEEnvelope: eb, Entry: entry}
		return fe, nil
	}
	mb, payload, err := verify.ParseLink(stored)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(payload) != digest {
		return nil, errors.New("the server's link is not the entry's payload")
	}
	// The store keeps the payload; the signature is the entry's.
	lb, err := linkstore.Bundled(stored, entry)
	if err != nil {
		return nil, err
	}
	l := mb.Signed.(in_toto.Link)
	return &fetchedEntry{name: l.Name, link: l, bundle: &evident.Bundle{Link: lb, Entry: entry}}, nil
}

// skip reports an entry that could not be fetched or checked: one bad
// entry among those naming an artifact does not stop the others (A1).
func (f *bundleFetcher) skip(idx uint64, err error) {
	fmt.Fprintf(f.e.stderr, "evident: warning: skipped log index %d: %v\n", idx, err)
	f.skipped[idx] = true
}

// chain writes the bundles of the entries that produced start, then walks
// back through their materials to the entries that produced those,
// breadth-first, each entry once.
func (f *bundleFetcher) chain(ctx context.Context, start [32]byte, maxDepth, maxBundles int) error {
	type want struct {
		digest [32]byte
		depth  int
	}
	queue := []want{{start, 0}}
	seen := map[[32]byte]bool{start: true}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		indices, err := f.links.ArtifactIndices(ctx, w.digest)
		if err != nil {
			return err
		}
		for _, idx := range indices {
			if f.skipped[idx] {
				continue
			}
			if len(f.loaded)+len(f.skipped) >= maxChainLookups {
				return fmt.Errorf("the chain names more than %d entries; fetch parts of it with --index", maxChainLookups)
			}
			fe, err := f.load(ctx, idx)
			if err != nil {
				f.skip(idx, err)
				continue
			}
			if !fe.written && w.depth == 0 && fe.statement != nil && fe.statement.PredicateType != dsse.PredicateTypeLink &&
				fe.statement.SubjectSHA256("", hex.EncodeToString(w.digest[:])) {
				if err := f.write(fe); err != nil { // an attestation about the artifact itself
					return err
				}
				continue
			}
			if fe.written || !hasDigest(fe.link.Products, w.digest) {
				continue // already written, or used the artifact rather than made it
			}
			if w.depth > maxDepth {
				return fmt.Errorf("the chain is deeper than %d steps (--max-depth): step %q at log index %d made a material of a step %d steps later", maxDepth, fe.link.Name, idx, w.depth)
			}
			if f.written >= maxBundles {
				return fmt.Errorf("the chain holds more than %d bundles (--max-bundles)", maxBundles)
			}
			if err := f.write(fe); err != nil {
				return err
			}
			for _, h := range fe.link.Materials {
				d, ok := sha256Hex(h["sha256"])
				if !ok || seen[d] {
					continue
				}
				seen[d] = true
				queue = append(queue, want{d, w.depth + 1})
			}
		}
	}
	if f.written == 0 {
		return fmt.Errorf("no logged link has sha256:%x as a product", start)
	}
	fmt.Fprintf(f.e.stdout, "%d bundles: the chain of sha256:%x\n", f.written, start)
	return nil
}

func hasDigest(set map[string]in_toto.HashObj, d [32]byte) bool {
	want := hex.EncodeToString(d[:])
	for _, h := range set {
		if strings.EqualFold(h["sha256"], want) {
			return true
		}
	}
	return false
}

// errOtherBundle: the output file exists and holds another entry's bundle.
var errOtherBundle = errors.New("holds a bundle of another entry; not overwritten")

// write writes fe's bundle inside the output directory under a name made
// only of safe characters and its log index (F1).
func (f *bundleFetcher) write(fe *fetchedEntry) error {
	b, err := fe.bundle.Marshal()
	if err != nil {
		return err
	}
	name := bundleFileName(fe.name, fe.bundle.Entry.KeyID, fe.index)
	if old, err := f.out.ReadFile(name); err == nil {
		prev, err := evident.ParseBundle(old)
		if err != nil || prev.LogIndex != fe.index || prev.Entry.PayloadSHA256 != fe.bundle.Entry.PayloadSHA256 || !bytes.Equal(prev.Entry.Signature, fe.bundle.Entry.Signature) {
			return fmt.Errorf("%s %w", name, errOtherBundle)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp := "." + name + "." + rand.Text()
	if err := f.out.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := f.out.Rename(tmp, name); err != nil {
		f.out.Remove(tmp)
		return err
	}
	fe.written = true
	f.written++
	fmt.Fprintf(f.e.stdout, "wrote %s (log index %d, proved at size %d)\n", filepath.Join(f.out.Name(), name), fe.index, f.cp.Size)
	return nil
}

// bundleFileName is STEP.KEYID.INDEX.bundle.json, STEP and KEYID reduced to
// a safe alphabet: neither can name a directory, a hidden file or another
// entry's bundle.
func bundleFileName(step, keyID string, index uint64) string {
	if len(keyID) > 8 {
		keyID = keyID[:8]
	}
	return fmt.Sprintf("%s.%s.%d.bundle.json", safeName(step, 64), safeName(keyID, 8), index)
}

// safeName keeps letters, digits, '-', '_' and '.', replacing anything
// else (and a leading '.') with '_', truncated to max bytes.
func safeName(s string, max int) string {
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// sha256Hex decodes a SHA-256 in hex. A signed link may record any string
// as a digest: the length is checked before decoding, which encoding/hex
// would otherwise carry past the 32 bytes.
func sha256Hex(s string) ([32]byte, bool) {
	var d [32]byte
	if len(s) != hex.EncodedLen(len(d)) {
		return d, false
	}
	_, err := hex.Decode(d[:], []byte(s))
	return d, err == nil
}
