package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/pgstore"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
	"golang.org/x/mod/sumdb/note"
)

// shapeOnly is an in-process log whose validator checks the entries' shape
// only: it measures the log apart from ingest verification. evident serve
// has no such mode.
type shapeOnly struct {
	log      *log.Log
	verifier note.Verifier
	url      string
	close    func()
}

func startShapeOnly(dir, pgURL string, batchSize int, batchPeriod time.Duration, logger *slog.Logger) (*shapeOnly, error) {
	store, err := openShapeStore(dir, pgURL, logger)
	if err != nil {
		return nil, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "evident-load/shape-only")
	if err != nil {
		return nil, err
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	l, err := log.Open(store, log.Config{Origin: signer.Name(), Signer: signer, Verifier: verifier,
		BatchSize: batchSize, BatchPeriod: batchPeriod, Logger: logger,
		Validate: func(b []byte) ([]byte, error) {
			_, canonical, err := evident.ParseEntry(b)
			return canonical, err
		}})
	if err != nil {
		store.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		store.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(log.TilesPrefix, log.Handler(l, logger))
	hs := httpapi.NewServer(mux, logger, 0)
	go hs.Serve(ln)
	return &shapeOnly{log: l, verifier: verifier, url: "http://" + ln.Addr().String(), close: func() {
		hs.Close()
		l.Close()
		store.Close()
	}}, nil
}

// mintRemote makes n distinct real entries for the evident server at url:
// one SVID from its POST /dev/svid (as one CI job signing many links), each
// signature countersigned by its TSA over HTTP (tokens verified against the
// root of the chain the server publishes).
func mintRemote(url string, n int) ([][]byte, error) {
	ctx := context.Background()
	signer, err := identity.FromDevServer(ctx, url, "spiffe://"+serve.DevTrustDomain+"/ci/load")
	if err != nil {
		return nil, fmt.Errorf("%w (the server must issue development SVIDs: a development data directory, or --dev-svid)", err)
	}
	resp, err := http.Get(url + "/tsa/certchain")
	if err != nil {
		return nil, err
	}
	pemChain, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	chain, err := pemfile.ParseCertificates(pemChain)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("the server's TSA chain: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	ts := &tsa.Client{URL: url + "/tsa", Roots: roots, Cache: rfc3161.NewChainCache(16),
		HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	out := make([][]byte, n)
	err = parallel(n, 32, func(i int) error {
		payload := fmt.Sprintf(`{"_type":"link","name":"load","n":%d}`, i)
		e, err := link.Countersign(ctx, ts, evident.PayloadTypeLink, []byte(payload), "load", signer.Key, signer.Chain)
		if err == nil {
			out[i], err = e.Marshal()
		}
		return err
	})
	return out, err
}

// openShapeStore opens bbolt in dir, or the (empty) PostgreSQL database at
// pgURL, leading it as the one sequencer.
func openShapeStore(dir, pgURL string, logger *slog.Logger) (log.Store, error) {
	if pgURL == "" {
		return boltstore.Open(serve.DataDir(dir).LogDB())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := pgstore.OpenLog(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	el := pg.Campaign(pgstore.ElectorConfig{ID: "evident-load", Logger: logger})
	for !el.Status().Leading {
		if ctx.Err() != nil {
			el.Close()
			pg.Close()
			return nil, fmt.Errorf("couldn't become the sequencer of %s", pgURL)
		}
		time.Sleep(10 * time.Millisecond) // waiting on the database
	}
	return &ledStore{LogStore: pg, elector: el}, nil
}

// ledStore is a PostgreSQL store with its elector, closed together.
type ledStore struct {
	*pgstore.LogStore
	elector *pgstore.Elector
}

func (s *ledStore) Close() error {
	s.elector.Close()
	return s.LogStore.Close()
}
