// Package atomicfile replaces files so that a crash leaves either the old
// content or the new, never a mixture: write a temporary file in the same
// directory, fsync it, rename it over the target, fsync the directory.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, durably, creating its directory if need
// be. The temporary file is a dot-file in the same directory, removed on
// any error; the result has mode perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// WriteNew writes data to path durably, like Write, but only if path does
// not exist: a file published once under a name must never change (a
// mirror or a cache may hold a copy). It fails with an error wrapping
// fs.ErrExist otherwise, leaving the file as it was.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Link) // a hard link never replaces its target
}

// write writes data to a temporary file beside path, fsyncs it, puts it in
// place with install(temporary, path) and fsyncs the directory.
func write(path string, data []byte, perm os.FileMode, install func(string, string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), perm); err != nil {
		return err
	}
	if err := install(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
