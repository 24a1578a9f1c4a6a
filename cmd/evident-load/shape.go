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
	signer   note.Signer
	verifier note.Verifier
	url      string
	close    func()
}

// startShapeOnly starts the shape-only log on bbolt in dir, or as the
// sequencer of the empty PostgreSQL database at pgURL.
func startShapeOnly(dir, pgURL string, batchSize int, batchPeriod time.Duration, logger *slog.Logger) (*shapeOnly, error) {
	store, err := openShapeStore(dir, pgURL, logger)
	if err != nil {
		return nil, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "evident-load/shape-only")
	if err != nil {
		store.Close()
		return nil, err
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	return serveShape(store, signer, verifier, log.Config{BatchSize: batchSize, BatchPeriod: batchPeriod, Logger: logger})
}

// follower starts another frontend of sl's PostgreSQL log at pgURL, which
// reads but does not sequence (it is never elected).
func (sl *shapeOnly) follower(pgURL string, logger *slog.Logger) (*shapeOnly, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := openFollower(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	return serveShape(store, sl.signer, sl.verifier, log.Config{Logger: logger})
}

// openFollower opens the PostgreSQL log at pgURL as a frontend that reads
// and is never elected.
func openFollower(ctx context.Context, pgURL string) (log.Store, error) {
	return pgstore.OpenLog(ctx, pgURL)
}

// serveShape opens the shape-only log on store and serves it on 127.0.0.1;
// close stops both and closes the store.
func serveShape(store log.Store, signer note.Signer, verifier note.Verifier, cfg log.Config) (*shapeOnly, error) {
	cfg.Origin, cfg.Signer, cfg.Verifier = signer.Name(), signer, verifier
	cfg.Validate = func(b []byte) ([]byte, error) {
		_, canonical, err := evident.ParseEntry(b)
		return canonical, err
	}
	l, err := log.Open(store, cfg)
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
	mux.Handle(log.TilesPrefix, log.Handler(l, cfg.Logger))
	hs := httpapi.NewServer(mux, cfg.Logger, 0)
	go hs.Serve(ln)
	return &shapeOnly{log: l, signer: signer, verifier: verifier, url: "http://" + ln.Addr().String(), close: func() {
		// Requests still being answered finish before the store closes.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(ctx)
		cancel()
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
