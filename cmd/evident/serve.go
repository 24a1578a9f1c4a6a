package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/serve"
)

const serveUsage = `
Usage: evident serve [--data DIR] [--addr HOST:PORT] [--origin ORIGIN] [--store postgres://…] [TSA and trust flags]

Runs the evident server: the Merkle transparency log (bbolt store, group
commit, signed C2SP checkpoints, proofs, tlog-tiles) and the RFC 3161
timestamp authority, over HTTP. Every entry is verified before it is logged:
its timestamp against --tsa-roots, its signer's chain at the timestamp's time
against --functionary-roots, its signature.

On first start in an empty --data directory it generates development keys
(the log's note key, a TSA, a functionary CA) and keeps them there; every
start prints the URLs and the log's note verifier key, which clients pass as
--log-key.

Privileged endpoints are off unless asked for, except in a development data
directory (one without --functionary-roots), where both are on by default:
  --dev-svid      POST /dev/svid hands SVIDs from the development CA to any
                  local caller, without attestation
  --admin-socket  GET /admin/backup (see "evident backup") on a unix socket
                  (mode 0600; default DIR/admin.sock in a development data
                  directory), or --admin-addr on a separate address; never on
                  the public --addr
The start log says which are on.

SIGTERM or SIGINT: the listeners close, requests in flight get
--shutdown-grace to finish, those still running are cut, the batch being
committed completes, and the server exits 0.

With --witness (repeatable) or --witness-config, the latest checkpoint is
submitted every --witness-period to each witness (C2SP tlog-witness, e.g.
litewitness); their cosignatures are served with /log/checkpoint and kept,
so bundles can prove when their entry was first witnessed. A witness that is
down never stops the log: see /metrics.

The log is kept in DIR/log.db (bbolt), or with --store (or $EVIDENT_STORE)
in a PostgreSQL database that any number of frontends share: each answers
every read; one at a time, elected through the database, sequences appends,
and the others forward appends to it at the address it advertises
(--advertise, default http:// and the listening address). All frontends of
one log need the same log key (DIR/log.key and log.vkey) and trust roots:
copy one initialised data directory to each.

Examples:
  evident serve
  evident serve --witness witness.example/w1=https://w1.example,witness.example/w1+1a2b3c4d+BA…
  evident serve --data /var/lib/evident --addr 0.0.0.0:8080 --origin log.example.org/evident \
    --tsa-key /etc/evident/tsa.key --tsa-chain /etc/evident/tsa-chain.pem \
    --functionary-roots /etc/evident/spire-upstream-root.pem
  evident serve --data /etc/evident --addr 0.0.0.0:8080 --advertise http://10.0.0.11:8080 \
    --store 'postgres://evident@db.internal/evident?sslmode=verify-full'
`

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", serveUsage)
	var cfg serve.Config
	fs.StringVar(&cfg.DataDir, "data", string(serve.DefaultDataDir), "data `directory`: store and keys")
	fs.StringVar(&cfg.Addr, "addr", serve.DefaultAddr, "listen `address`; port 0 picks a free one")
	fs.StringVar(&cfg.Store, "store", os.Getenv("EVIDENT_STORE"), "PostgreSQL `URL` (postgres://…) to keep the log in, shared by several frontends (default $EVIDENT_STORE, else bbolt in --data)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "with --store: the `URL` other frontends forward appends to while this one sequences (default http://ADDR)")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 3*time.Second, "with --store: the sequencer lease's lifetime, 1s to 1m (a killed sequencer is replaced after about this long)")
	fs.StringVar(&cfg.Origin, "origin", "", "log origin (schema-less URL) for a new data directory (default "+serve.DefaultOrigin+")")
	fs.IntVar(&cfg.BatchSize, "batch-size", log.DefaultBatchSize, "most entries in one group commit")
	fs.DurationVar(&cfg.BatchPeriod, "batch-period", log.DefaultBatchPeriod, "longest wait for a batch to fill, at most 1s")
	fs.IntVar(&cfg.MaxPending, "max-pending", log.DefaultMaxPending, "entries waiting to be committed before adds get 503")
	fs.StringVar(&cfg.TSAKeyFile, "tsa-key", "", "production TSA private key `file` (PEM); default: the development TSA")
	fs.StringVar(&cfg.TSAChainFile, "tsa-chain", "", "production TSA chain `file` (PEM, TSA certificate first, root last)")
	fs.StringVar(&cfg.TSARootsFile, "tsa-roots", "", "TSA roots `file` (PEM) entries' timestamps must chain to (default: the serving TSA's root)")
	fs.DurationVar(&cfg.DevSVIDTTL, "dev-svid-ttl", serve.DefaultDevSVIDTTL, "lifetime of development SVIDs (POST /dev/svid)")
	fs.BoolVar(&cfg.DevSVID, "dev-svid", false, "serve POST /dev/svid (default: on in a development data directory)")
	fs.StringVar(&cfg.AdminSocket, "admin-socket", "", "admin endpoints (backups) on this unix `socket` (default: DIR/admin.sock in a development data directory; \"off\" for none)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "", "admin endpoints (backups) on this listen `address` instead of a socket")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "most concurrent connections (default: under the file descriptor limit, at most 16384)")
	fs.IntVar(&cfg.ConnReserve, "conn-reserve", serve.DefaultConnReserve, "connections beyond --max-conns kept for /healthz, /log/checkpoint and /metrics")
	fs.IntVar(&cfg.StoreMmapSize, "store-mmap-size", boltstore.DefaultInitialMmapSize, "initial memory map of log.db in `bytes`; larger maps are grown less often")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long requests in flight may take to finish at shutdown")
	fs.StringVar(&cfg.FunctionaryRootsFile, "functionary-roots", "", "functionary roots `file` (PEM) signers must chain to (default: the development CA)")
	var witnesses listFlag
	fs.Var(&witnesses, "witness", "a witness, `NAME=URL,VKEY` (repeat): NAME as in its cosignature verifier key VKEY")
	witnessFile := fs.String("witness-config", "", "`file` of witnesses, one NAME=URL,VKEY a line (# comments)")
	fs.DurationVar(&cfg.WitnessPeriod, "witness-period", serve.DefaultWitnessPeriod, "how often the latest checkpoint is submitted to the witnesses")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments")
	}
	if *witnessFile != "" {
		b, err := os.ReadFile(*witnessFile)
		if err != nil {
			return usagef("--witness-config: %v", err)
		}
		ws, err := serve.ParseWitnessConfig(b)
		if err != nil {
			return usagef("--witness-config %s: %v", *witnessFile, err)
		}
		cfg.Witnesses = append(cfg.Witnesses, ws...)
	}
	for _, w := range witnesses {
		c, err := serve.ParseWitness(w)
		if err != nil {
			return usagef("--witness: %v", err)
		}
		cfg.Witnesses = append(cfg.Witnesses, c)
	}
	if cfg.WitnessPeriod <= 0 {
		return usagef("--witness-period must be positive")
	}
	if cfg.Store != "" && !serve.IsPostgresURL(cfg.Store) {
		return usagef("--store must be a postgres:// URL")
	}
	if cfg.LeaseTTL < time.Second || cfg.LeaseTTL > time.Minute {
		return usagef("--lease-ttl must be in [1s, 1m]")
	}
	if cfg.BatchPeriod <= 0 || cfg.BatchPeriod > time.Second {
		return usagef("--batch-period must be in (0, 1s]")
	}
	if *grace <= 0 {
		return usagef("--shutdown-grace must be positive")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	development := cfg.FunctionaryRootsFile == ""
	if !set["dev-svid"] {
		cfg.DevSVID = development
	}
	switch {
	case cfg.AdminSocket == "off":
		cfg.AdminSocket = ""
	case !set["admin-socket"] && cfg.AdminAddr == "" && development:
		cfg.AdminSocket = serve.DataDir(cfg.DataDir).AdminSocket()
		if len(cfg.AdminSocket) > maxSocketPath {
			fmt.Fprintf(e.stderr, "evident: %s is too long a path for a unix socket: no admin listener (give --admin-socket or --admin-addr)\n", cfg.AdminSocket)
			cfg.AdminSocket = ""
		}
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
	fmt.Fprintf(e.stdout, "  timestamps:     POST %s/tsa (chain at %s/tsa/certchain)\n", u, u)
	fmt.Fprintf(e.stdout, "  TUF repository: %s/tuf/ (clients start from %s)\n", u, serve.TUFRoot(s.TUFDir()))
	fmt.Fprintf(e.stdout, "  log origin:     %s\n", s.Origin())
	fmt.Fprintf(e.stdout, "  log key:        %s\n", s.VerifierKey)
	fmt.Fprintf(e.stdout, "  tree size:      %d\n", s.Log.Head().Size)
	if a := s.AdminURL(); a != "" {
		fmt.Fprintf(e.stdout, "  admin (backups): %s\n", a)
	}
	for _, w := range cfg.Witnesses {
		fmt.Fprintf(e.stdout, "  witness:        %s at %s, every %v\n", w.Name, w.URL, cfg.WitnessPeriod)
	}
	if cfg.Store != "" {
		leading, id := s.Sequencer()
		fmt.Fprintf(e.stdout, "  log store:      PostgreSQL, frontend %s (sequencer now: %v)\n", id, leading)
	}
	if s.DevCA != nil {
		fmt.Fprintf(e.stdout, "  development functionary CA in %s: for development only\n", serve.DataDir(cfg.DataDir).DevCACert())
	}
	if cfg.DevSVID {
		fmt.Fprintf(e.stdout, "  development SVIDs: POST %s/dev/svid (any local caller; for development only)\n", u)
	}
	select {
	case <-ctx.Done():
	case err := <-waitErr(s):
		s.Close(context.Background())
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	return s.Close(sctx)
}

// maxSocketPath is the longest unix socket path every platform accepts.
const maxSocketPath = 103

func waitErr(s *serve.Server) <-chan error {
	c := make(chan error, 1)
	go func() { c <- s.Wait() }()
	return c
}
