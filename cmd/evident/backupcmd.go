package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/evident-dev/evident/internal/boltfile"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/serve"
)

const backupUsage = `
Usage: evident backup [--admin unix:SOCKET|http://HOST:PORT] [--db log|links] --out FILE

Takes a backup of a running server's log.db (or links.db) from its admin
listener (evident serve --admin-socket or --admin-addr): the server snapshots
the store, then sends it with its length and SHA-256. The copy is written to
a temporary file beside FILE (whose directory is made if need be), checked against both and against its own
header, and only then renamed to FILE: a cut or altered transfer leaves FILE
as it was and exits 1.

Keep log.key and log.vkey with the backups; "evident log fsck --data DIR"
checks a restored copy end to end.

Examples:
  evident backup --out backups/log-$(date +%F).db
  evident backup --admin unix:/var/lib/evident/admin.sock --db links --out backups/links-$(date +%F).db
`

func runBackup(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "backup", backupUsage)
	admin := fs.String("admin", "unix:"+serve.DefaultDataDir.AdminSocket(), "the server's admin listener: unix:`SOCKET` or http://HOST:PORT")
	db := fs.String("db", "log", "which store: log or links")
	out := fs.String("out", "", "write the backup to this `file`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("backup takes no arguments")
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if *db != "log" && *db != "links" {
		return usagef("--db must be log or links")
	}
	client, base, err := adminClient(*admin)
	if err != nil {
		return err
	}
	n, sum, err := fetchBackup(ctx, client, base+"/admin/backup?db="+*db, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d bytes, sha256 %x, checked against the server's length and digest\n", *out, n, sum)
	return nil
}

// adminClient returns an HTTP client for the admin listener and the base
// URL to put before paths.
func adminClient(admin string) (*http.Client, string, error) {
	if sock, ok := strings.CutPrefix(admin, "unix:"); ok {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		return &http.Client{Transport: tr}, "http://admin", nil // a backup takes as long as it takes; the server cuts a stalled one
	}
	if strings.HasPrefix(admin, "http://") || strings.HasPrefix(admin, "https://") {
		return &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: httpapi.ClientTimeout}}, strings.TrimSuffix(admin, "/"), nil
	}
	return nil, "", usagef("--admin must be unix:SOCKET or http://HOST:PORT, not %q", admin)
}

// Errors of a backup transfer.
var (
	errBackupTruncated = errors.New("backup is incomplete")
	errBackupDigest    = errors.New("backup does not match the server's digest")
)

// fetchBackup downloads url to out atomically, checking the length, the
// Repr-Digest and the bbolt header of what arrived.
func fetchBackup(ctx context.Context, c *http.Client, url, out string) (int64, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("couldn't reach the admin listener: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, nil, fmt.Errorf("the server refused the backup: %s: %s", resp.Status, httpapi.ErrorMessage(msg))
	}
	want, err := parseReprDigest(resp.Header.Get(serve.BackupDigestHeader))
	if err != nil {
		return 0, nil, err
	}
	if resp.ContentLength < 0 {
		return 0, nil, errors.New("the server sent no Content-Length with the backup")
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, nil, fmt.Errorf("--out: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-backup-*")
	if err != nil {
		return 0, nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	defer f.Close()
	d := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, d), resp.Body)
	if err != nil {
		return n, nil, fmt.Errorf("%w: %d of %d bytes arrived: %v", errBackupTruncated, n, resp.ContentLength, err)
	}
	if n != resp.ContentLength {
		return n, nil, fmt.Errorf("%w: %d of %d bytes arrived", errBackupTruncated, n, resp.ContentLength)
	}
	sum := d.Sum(nil)
	if string(sum) != string(want) {
		return n, nil, fmt.Errorf("%w: sha256 %x, the server sent %x", errBackupDigest, sum, want)
	}
	if err := f.Sync(); err != nil {
		return n, nil, err
	}
	if err := f.Close(); err != nil {
		return n, nil, err
	}
	if err := boltfile.Check(tmp); err != nil {
		return n, nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return n, nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return n, sum, nil
}

// parseReprDigest reads the sha-256 of an RFC 9530 Repr-Digest header.
func parseReprDigest(h string) ([]byte, error) {
	for _, item := range strings.Split(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(item), "sha-256=:")
		if !ok || !strings.HasSuffix(v, ":") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(v, ":"))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("malformed %s header %q", serve.BackupDigestHeader, h)
		}
		return b, nil
	}
	return nil, fmt.Errorf("the server sent no sha-256 %s header with the backup", serve.BackupDigestHeader)
}
