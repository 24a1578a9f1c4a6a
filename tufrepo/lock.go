package tufrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Update runs f on the repository in dir as published on disk, holding an
// exclusive lock (flock on dir/.lock) so that publishers in other processes
// — a release manager's CLI, the server re-signing the online roles — take
// turns and never overwrite each other's newer state.
func Update(dir string, now func() time.Time, f func(*Repo) error) error {
	lf, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("couldn't lock the repository: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("couldn't lock the repository: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	r, err := Open(dir, now)
	if err != nil {
		return err
	}
	return f(r)
}
