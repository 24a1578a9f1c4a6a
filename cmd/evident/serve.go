package main

import (
	"context"
	"fmt"
	"time"

	"github.com/evident-dev/evident/serve"
)

const serveUsage = `
Usage: evident serve [--data DIR] [--addr HOST:PORT] [--origin ORIGIN]

Runs the evident server: the Merkle transparency log (bbolt store, group
commit, signed C2SP checkpoints, proofs, tlog-tiles) over HTTP.

On first start in an empty --data directory it generates development keys
(log.key, log.vkey) and keeps them there; every start prints the URLs and the
log's note verifier key, which clients pass as --key.

Examples:
  evident serve
  evident serve --data /var/lib/evident --addr 0.0.0.0:8080 --origin log.example.org/evident
`

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", serveUsage)
	var cfg serve.Config
	fs.StringVar(&cfg.DataDir, "data", "evident-data", "data `directory`: store and keys")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen `address`; port 0 picks a free one")
	fs.StringVar(&cfg.Origin, "origin", "", "log origin (schema-less URL) for a new data directory (default "+serve.DefaultOrigin+")")
	fs.IntVar(&cfg.BatchSize, "batch-size", 4096, "most entries in one group commit")
	fs.DurationVar(&cfg.BatchPeriod, "batch-period", 2*time.Millisecond, "longest wait for a batch to fill, at most 1s")
	fs.IntVar(&cfg.MaxPending, "max-pending", 65536, "entries waiting to be committed before adds get 503")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments")
	}
	if cfg.BatchPeriod <= 0 || cfg.BatchPeriod > time.Second {
		return usagef("--batch-period must be in (0, 1s]")
	}
	s, err := serve.Open(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		s.Close(context.Background())
		return err
	}
	u := s.URL()
	fmt.Fprintf(e.stdout, "evident serving at %s (data in %s)\n", u, cfg.DataDir)
	fmt.Fprintf(e.stdout, "  log checkpoint: %s/log/checkpoint\n", u)
	fmt.Fprintf(e.stdout, "  log entries:    POST %s/log/v1/entries\n", u)
	fmt.Fprintf(e.stdout, "  log tiles:      %s/log/tile/\n", u)
	fmt.Fprintf(e.stdout, "  log origin:     %s\n", s.Origin())
	fmt.Fprintf(e.stdout, "  log key:        %s\n", s.VerifierKey)
	fmt.Fprintf(e.stdout, "  tree size:      %d\n", s.Log.Head().Size)
	select {
	case <-ctx.Done():
	case err := <-waitErr(s):
		s.Close(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Close(sctx)
}

func waitErr(s *serve.Server) <-chan error {
	c := make(chan error, 1)
	go func() { c <- s.Wait() }()
	return c
}
