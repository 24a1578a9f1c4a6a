package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tufrepo"
)

// clientTrust is what a client checks a server's answers with: the log's
// note verifier key and the TSA roots. The flags (--log-key, --tsa-roots)
// win; otherwise, with --tuf-root, the trust root published through TUF at
// --tuf (default SERVER/tuf); otherwise the files of a local development
// server in ./evident-data. A CI job thus needs the server's URL and the
// TUF root.json only.
type clientTrust struct {
	e                                         *env
	server, logKey, tsaRoots, tufRoot, tufURL string
	tr                                        *evident.TrustRoot
}

// addTrustFlags adds --tuf-root and --tuf to a client command.
func addTrustFlags(fs interface {
	String(string, string, string) *string
}) (tufRoot, tufURL *string) {
	return fs.String("tuf-root", "", "trusted TUF root.json `file`: take the log key, TSA roots and witness threshold from the trust root"),
		fs.String("tuf", "", "TUF repository `URL` (default SERVER/tuf)")
}

// serverURL is --server, or its default.
func serverURL(e *env, server string) string {
	if server == "" {
		server = e.getenv("EVIDENT_SERVER")
	}
	if server == "" {
		server = serve.DefaultURL
	}
	return strings.TrimSuffix(server, "/")
}

// trustRoot fetches the trust root through TUF, once.
func (t *clientTrust) trustRoot() (*evident.TrustRoot, error) {
	if t.tr != nil {
		return t.tr, nil
	}
	root, err := os.ReadFile(t.tufRoot)
	if err != nil {
		return nil, usagef("--tuf-root: %v", err)
	}
	if !json.Valid(root) {
		return nil, usagef("--tuf-root %s is not a TUF root.json: pass the root.json obtained out of band (a server's evident-data/tuf/metadata/1.root.json)", t.tufRoot)
	}
	url := t.tufURL
	if url == "" {
		url = serverURL(t.e, t.server) + "/tuf"
	}
	// The verified metadata is kept between runs (rollbacks across runs are
	// caught) where the user has a cache directory.
	cache, _ := tufrepo.DefaultCacheDir(root)
	c, err := tufrepo.NewClient(tufrepo.ClientOptions{Root: root, URL: url, CacheDir: cache})
	if err != nil {
		return nil, fmt.Errorf("TUF repository %s: %w", url, err)
	}
	if t.tr, err = c.TrustRoot(); err != nil {
		return nil, fmt.Errorf("TUF repository %s: %w", url, err)
	}
	return t.tr, nil
}

// logClient is a client of the server's log that checks what it answers.
func (t *clientTrust) logClient(ctx context.Context) (*logclient.Client, error) {
	if t.logKey != "" || t.tufRoot == "" {
		return newLogClient(t.e, t.server, t.logKey)
	}
	tr, err := t.trustRoot()
	if err != nil {
		return nil, err
	}
	verifiers, err := tr.LogVerifiers(time.Now())
	if err != nil {
		return nil, err
	}
	var clients []*logclient.Client
	for _, v := range verifiers {
		clients = append(clients, &logclient.Client{URL: serverURL(t.e, t.server), Origin: v.Name(), Verifier: v})
	}
	switch len(clients) {
	case 0:
		return nil, errors.New("the trust root names no log key valid now: ask the release managers to add one (evident tuf trust add --kind log), or pass --log-key")
	case 1:
		return clients[0], nil
	}
	// Several keys valid now (a rotation): the one the server signs with.
	var errs []error
	for _, c := range clients {
		if _, _, err := c.Checkpoint(ctx); err == nil {
			return c, nil
		} else {
			errs = append(errs, err)
		}
	}
	return nil, fmt.Errorf("no log key of the trust root verifies %s's checkpoint: %w", clients[0].URL, errors.Join(errs...))
}

// roots are the TSA roots timestamps must chain to.
func (t *clientTrust) roots() (*x509.CertPool, error) {
	if t.tsaRoots != "" || t.tufRoot == "" {
		return loadRoots(t.tsaRoots)
	}
	tr, err := t.trustRoot()
	if err != nil {
		return nil, err
	}
	items, _ := tr.At(evident.KindTSA, time.Now())
	if len(items) == 0 {
		return nil, errors.New("the trust root names no TSA root valid now: ask the release managers to add one (evident tuf trust add --kind tsa), or pass --tsa-roots")
	}
	pool := x509.NewCertPool()
	for _, it := range items {
		certs, err := pemfile.ParseCertificates([]byte(it.Value))
		if err != nil {
			return nil, fmt.Errorf("the trust root's TSA %q: %w", it.Name, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}
