// Package artifact records in-toto artifacts: the SHA-256 of every file
// under some paths, walked on all cores, with paths relative to a root and
// symbolic links that leave the root refused. It does no I/O beyond the
// files it reads, so the offline verifier can use it for inspections.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// ErrEscapes reports a symbolic link that leaves the working root.
var ErrEscapes = errors.New("symbolic link leaves the working directory")

// Progress receives hashing progress: files and bytes done so far, of the
// totals found.
type Progress func(doneFiles, totalFiles int, doneBytes, totalBytes int64)

// Options say how to record artifacts.
type Options struct {
	// Root is the working root; paths are recorded relative to it, with
	// forward slashes, as in-toto does. Default: the current directory.
	Root string
	// Exclude holds glob patterns (path.Match, on the relative path and on
	// each base name) of files and directories to leave out.
	Exclude []string
	// Workers hash in parallel (default: one per CPU).
	Workers int
	// Progress, when set, is called as hashing goes on (from one goroutine
	// at a time).
	Progress Progress
}

type file struct {
	rel  string
	abs  string
	size int64
}

// Record hashes every file under the given paths (directories are walked)
// with SHA-256, on all cores, and returns in-toto artifacts: relative path →
// {"sha256": hex}. Symbolic links are followed only while they stay inside
// the root; one that leaves it is an error wrapping ErrEscapes.
func Record(ctx context.Context, paths []string, o Options) (map[string]in_toto.HashObj, error) {
	root := o.Root
	if root == "" {
		root = "."
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if rootAbs, err = filepath.EvalSymlinks(rootAbs); err != nil {
		return nil, err
	}
	var files []file
	seen := map[string]bool{}
	for _, p := range paths {
		if err := collect(rootAbs, p, o.Exclude, seen, &files); err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	var total int64
	for _, f := range files {
		total += f.size
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	sums := make([]string, len(files))
	var next, doneFiles atomic.Int64
	var doneBytes atomic.Int64
	var progressMu sync.Mutex
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				sum, n, err := hashFile(files[i].abs, buf)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("couldn't hash %s: %w", files[i].rel, err) })
					next.Store(int64(len(files)))
					return
				}
				sums[i] = sum
				d, b := doneFiles.Add(1), doneBytes.Add(n)
				if o.Progress != nil && progressMu.TryLock() {
					o.Progress(int(d), len(files), b, total)
					progressMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress(len(files), len(files), doneBytes.Load(), total)
	}
	out := make(map[string]in_toto.HashObj, len(files))
	for i, f := range files {
		out[f.rel] = in_toto.HashObj{"sha256": sums[i]}
	}
	return out, nil
}

func hashFile(p string, buf []byte) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func excluded(rel string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

// collect adds the files at p (walking directories) to files.
func collect(rootAbs, p string, exclude []string, seen map[string]bool, files *[]file) error {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(rootAbs, p)
	}
	return walk(rootAbs, filepath.Clean(abs), exclude, seen, files, 0)
}

func walk(rootAbs, abs string, exclude []string, seen map[string]bool, files *[]file, depth int) error {
	if depth > 8 {
		return fmt.Errorf("%s: too many levels of symbolic links", abs)
	}
	rel, err := filepath.Rel(rootAbs, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: %s is outside %s", ErrEscapes, abs, rootAbs)
	}
	rel = filepath.ToSlash(rel)
	if rel != "." && excluded(rel, exclude) {
		return nil
	}
	st, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return err
		}
		if r, err := filepath.Rel(rootAbs, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%w: %s points to %s", ErrEscapes, rel, target)
		}
		tst, err := os.Stat(target)
		if err != nil {
			return err
		}
		if tst.IsDir() {
			return walkDir(rootAbs, abs, rel, exclude, seen, files, depth+1)
		}
		return addFile(abs, rel, tst.Size(), seen, files)
	}
	if st.IsDir() {
		return walkDir(rootAbs, abs, rel, exclude, seen, files, depth)
	}
	if !st.Mode().IsRegular() {
		return nil // sockets, devices, pipes: not artifacts
	}
	return addFile(abs, rel, st.Size(), seen, files)
}

func walkDir(rootAbs, abs, rel string, exclude []string, seen map[string]bool, files *[]file, depth int) error {
	entries, err := os.ReadDir(abs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := walk(rootAbs, filepath.Join(abs, e.Name()), exclude, seen, files, depth); err != nil {
			return err
		}
	}
	return nil
}

func addFile(abs, rel string, size int64, seen map[string]bool, files *[]file) error {
	if seen[rel] {
		return nil
	}
	seen[rel] = true
	*files = append(*files, file{rel: rel, abs: abs, size: size})
	return nil
}
