package serve

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/tsa"
)

// DataDir is a server's data directory: the one place that knows the names
// of the files in it (see the package doc for what each holds). Commands
// that read a server's files (evident log fsck, evident tsa serve,
// evident backup, evident timestamp) ask it rather than spelling the names.
type DataDir string

// DefaultDataDir is the data directory when none is given.
const DefaultDataDir DataDir = "evident-data"

func (d DataDir) join(name ...string) string {
	return filepath.Join(append([]string{string(d)}, name...)...)
}

// LogDB is the bbolt store of the log.
func (d DataDir) LogDB() string { return d.join(logDBName) }

// LinksDB is the bbolt store of the links.
func (d DataDir) LinksDB() string { return d.join(linksDBName) }

// LogKey is the log's note signing key (mode 0600).
func (d DataDir) LogKey() string { return d.join("log.key") }

// LogVerifierKey is the log's note verifier key (public).
func (d DataDir) LogVerifierKey() string { return d.join("log.vkey") }

// TSAKey is the development TSA's key (mode 0600).
func (d DataDir) TSAKey() string { return d.join("tsa.key") }

// TSAChain is the development TSA's chain, TSA certificate first, root last.
func (d DataDir) TSAChain() string { return d.join("tsa-chain.pem") }

// DevCAKey is the development functionary CA's key (mode 0600).
func (d DataDir) DevCAKey() string { return d.join("dev-ca.key") }

// DevCACert is the development functionary CA's certificate.
func (d DataDir) DevCACert() string { return d.join("dev-ca.pem") }

// TUF is the TUF repository.
func (d DataDir) TUF() string { return d.join("tuf") }

// TUFKeys is the TUF repository's keys directory.
func (d DataDir) TUFKeys() string { return d.join("tuf-keys") }

// AdminSocket is the default admin socket of a development data directory.
func (d DataDir) AdminSocket() string { return d.join("admin.sock") }

// TUFRoot is the first root metadata of a TUF repository directory: what
// clients obtain out of band and start from.
func TUFRoot(repo string) string { return filepath.Join(repo, "metadata", "1.root.json") }

// File names of the stores, as the admin endpoint names them too.
const (
	logDBName   = "log.db"
	linksDBName = "links.db"
)

// ErrTSAKeyPair: a production TSA key was given without its chain, or the
// chain without its key.
var ErrTSAKeyPair = errors.New("--tsa-key and --tsa-chain go together")

// LoadTSA loads the production TSA from keyFile and chainFile (PEM, chain
// TSA certificate first, root last) or, both empty, the development TSA of
// d, creating d and the TSA on first use. One of the two alone is
// ErrTSAKeyPair.
func (d DataDir) LoadTSA(keyFile, chainFile string, now time.Time) (crypto.Signer, []*x509.Certificate, error) {
	switch {
	case keyFile != "" && chainFile != "":
		return pemfile.LoadKeyAndChain(keyFile, chainFile)
	case keyFile != "" || chainFile != "":
		return nil, nil, ErrTSAKeyPair
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, nil, fmt.Errorf("couldn't create data directory: %w", err)
	}
	return tsa.LoadOrCreateDev(d.TSAKey(), d.TSAChain(), now)
}
