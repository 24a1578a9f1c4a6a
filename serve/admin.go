package serve

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/linkstore"
)

// The admin listener serves GET /admin/backup (and /healthz) apart from the
// public API: on a unix socket in the data directory (mode 0600, so only
// the server's user may connect) or on a separate address. Nothing there
// trusts a peer's address (threat model S2).

// AdminHandler returns the admin listener's HTTP API.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/backup", s.backup)
	mux.HandleFunc("GET /healthz", healthz)
	return recoverer(s.cfg.Logger, mux)
}

func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// listenAdmin opens the admin listener, if one is configured.
func (s *Server) listenAdmin() (net.Listener, error) {
	switch {
	case s.cfg.AdminSocket != "" && s.cfg.AdminAddr != "":
		return nil, errors.New("--admin-socket and --admin-addr exclude each other")
	case s.cfg.AdminAddr != "":
		ln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return nil, fmt.Errorf("couldn't listen on the admin address: %w", err)
		}
		return ln, nil
	case s.cfg.AdminSocket != "":
		p := s.cfg.AdminSocket
		// A socket left by a server that died is removed; anything else
		// at that path is not ours to remove.
		if fi, err := os.Lstat(p); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("admin socket %s exists and is not a socket", p)
			}
			os.Remove(p)
		}
		old := syscall.Umask(0o177)
		ln, err := net.Listen("unix", p)
		syscall.Umask(old)
		if err != nil {
			return nil, fmt.Errorf("couldn't listen on the admin socket: %w", err)
		}
		return ln, nil
	}
	return nil, nil
}

// AdminURL is where the admin listener answers: unix:PATH or http://ADDR
// ("" without one).
func (s *Server) AdminURL() string {
	if s.adminLn == nil {
		return ""
	}
	if s.adminLn.Addr().Network() == "unix" {
		return "unix:" + s.adminLn.Addr().String()
	}
	return "http://" + s.adminLn.Addr().String()
}

// Backups (threat model S3). A backup first copies a consistent snapshot of
// the store to a local temporary file — a read transaction lasting as long
// as a local copy, never as long as a client's download: bbolt cannot grow
// its memory map, and so cannot commit a batch that outgrows it, while a
// read transaction is open — then streams that file with its length and
// SHA-256 digest in the headers, so that a client can tell a complete copy
// from a cut one.

// BackupDigestHeader carries the SHA-256 of a backup (RFC 9530).
const BackupDigestHeader = "Repr-Digest"

// backupReserve is the free space a backup snapshot must leave on the data
// directory's file system, for the log's own commits.
const backupReserve = 64 << 20

// backupChunk is how much of a backup is written under one write deadline:
// a client that takes longer than httpapi.WriteTimeout to accept a chunk is cut.
const backupChunk = 256 << 10

// errNoSpace: the data directory's file system is (nearly) full.
var errNoSpace = errors.New("not enough free disk space")

// backup serves GET /admin/backup?db=log|links.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	var write func(io.Writer) error
	var name string
	switch r.URL.Query().Get("db") {
	case "", "log":
		if s.store == nil {
			httpapi.WriteError(w, "the log is in PostgreSQL: back it up with PostgreSQL's tools (pg_dump)", http.StatusNotImplemented)
			return
		}
		name = logDBName
		write = func(w io.Writer) error { _, err := s.store.Backup(w); return err }
	case "links":
		name = linksDBName
		b, ok := s.links.(linkstore.Backuper)
		if !ok {
			httpapi.WriteError(w, "this link store is backed up by its own tools", http.StatusNotImplemented)
			return
		}
		write = func(w io.Writer) error { _, err := b.Backup(w); return err }
	default:
		httpapi.WriteError(w, "db must be log or links", http.StatusBadRequest)
		return
	}
	if !s.backups.TryLock() {
		w.Header().Set("Retry-After", "10")
		httpapi.WriteError(w, "another backup is in progress", http.StatusServiceUnavailable)
		return
	}
	defer s.backups.Unlock()
	t0 := time.Now()
	f, size, sum, err := s.snapshot(name, write)
	if errors.Is(err, errNoSpace) {
		s.cfg.Logger.Warn("backup refused: the data directory's file system is nearly full", "db", name)
		w.Header().Set("Retry-After", "60")
		httpapi.WriteError(w, "not enough free disk space on the server for a backup snapshot", http.StatusInsufficientStorage)
		return
	}
	if err != nil {
		s.cfg.Logger.Error("backup snapshot failed", "db", name, "err", err)
		httpapi.WriteError(w, "backup snapshot failed", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	s.cfg.Logger.Info("backup snapshot taken", "db", name, "bytes", size, "took", time.Since(t0).Round(time.Millisecond))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set(BackupDigestHeader, "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	rc := http.NewResponseController(w)
	buf := make([]byte, backupChunk)
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			rc.SetWriteDeadline(time.Now().Add(httpapi.WriteTimeout))
			if _, err := w.Write(buf[:n]); err != nil {
				s.cfg.Logger.Warn("backup cut: the client stopped reading", "db", name, "err", err)
				return
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			s.cfg.Logger.Error("backup failed reading its snapshot", "db", name, "err", rerr)
			panic(http.ErrAbortHandler) // the client sees a short body
		}
	}
}

// snapshot writes a copy of the store named name (in the data directory)
// to an unlinked temporary file there and returns it rewound, with its size
// and SHA-256.
func (s *Server) snapshot(name string, write func(io.Writer) error) (*os.File, int64, []byte, error) {
	need := int64(backupReserve)
	if fi, err := os.Stat(filepath.Join(s.cfg.DataDir, name)); err == nil {
		need += fi.Size() // a snapshot is never larger than the file
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.cfg.DataDir, &st); err == nil && int64(st.Bavail)*int64(st.Bsize) < need {
		return nil, 0, nil, errNoSpace
	}
	f, err := os.CreateTemp(s.cfg.DataDir, backupTempPattern)
	if err != nil {
		return nil, 0, nil, err
	}
	os.Remove(f.Name()) // the open file is all that is needed: nothing left behind
	d := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, d)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %w", errNoSpace, err)
		}
		return nil, 0, nil, err
	}
	return f, cw.n, d.Sum(nil), nil
}

// backupTempPattern names backup snapshots; Open removes any left behind.
const backupTempPattern = ".backup-*"

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
