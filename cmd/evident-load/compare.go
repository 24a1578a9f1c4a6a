package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/log/logclient"
)

// shapeOpts configures runs of the shape-only log.
type shapeOpts struct {
	// store is "" (bbolt), an empty PostgreSQL database's URL, or
	// "pgtest": a throwaway PostgreSQL cluster started for the runs (initdb
	// from the machine's PostgreSQL, fsync and synchronous_commit on).
	store string
	// vsBbolt runs the same measurement on bbolt after each PostgreSQL one.
	vsBbolt bool
	// rounds is how many times to measure (alternately, with vsBbolt).
	rounds int
	// frontends > 1 starts that many frontends of the PostgreSQL log in all
	// and measures proofs from all of them after proofs from the sequencer.
	frontends   int
	prefill     int
	batchSize   int
	batchPeriod time.Duration
	logger      *slog.Logger
}

// pgtestSettings give the throwaway cluster the room a database server
// has (buffers that hold a 10⁶-entry log, checkpoints far apart); fsync and
// synchronous_commit stay on.
var pgtestSettings = []string{"shared_buffers=1GB", "max_wal_size=8GB"}

// maxFrontends bounds -frontends: each is a server and a connection pool.
const maxFrontends = 16

// runShape measures the shape-only log as o says and prints one line of
// figures last.
func runShape(o shapeOpts, ph phases) error {
	if o.rounds < 1 || o.frontends < 1 || o.frontends > maxFrontends {
		return fmt.Errorf("-rounds must be at least 1 and -frontends 1 to %d", maxFrontends)
	}
	if o.store == "" && (o.vsBbolt || o.frontends > 1) {
		return errors.New("-vs-bbolt and -frontends need -store (a PostgreSQL URL or pgtest)")
	}
	if o.store != "" && o.store != "pgtest" && o.rounds > 1 {
		return errors.New("-rounds > 1 needs an empty database per round: use -store pgtest")
	}
	var cluster *pgtest.Cluster
	if o.store == "pgtest" {
		var err error
		if cluster, err = pgtest.New(io.Discard, pgtestSettings...); err != nil {
			return err
		}
		defer cluster.Close()
	}
	var pg, bolt []figures
	for r := 0; r < o.rounds; r++ {
		url := o.store
		if cluster != nil {
			name := fmt.Sprintf("load%d", r)
			if err := cluster.CreateDatabase(name); err != nil {
				return err
			}
			url = cluster.URL(name)
		}
		f, err := shapeRun(o, url, ph)
		if err != nil {
			return err
		}
		pg = append(pg, f)
		if o.vsBbolt {
			fmt.Printf("round %d on PostgreSQL: %v\n", r+1, f)
			if f, err = shapeRun(o, "", ph); err != nil {
				return err
			}
			fmt.Printf("round %d on bbolt: %v\n", r+1, f)
			bolt = append(bolt, f)
		}
	}
	if !o.vsBbolt {
		f := median(pg)
		if o.frontends > 1 {
			fmt.Printf("%v; from %d frontends: %.0f/s (%.2f×)\n", f, o.frontends, f.spread, f.spread/f.proofs)
			return nil
		}
		fmt.Println(f)
		return nil
	}
	p, b := median(pg), median(bolt)
	fmt.Printf("postgres vs bbolt (median of %d rounds): append %.0f vs %.0f entries/s (%.0f%%), p99 %v vs %v | proofs %.0f vs %.0f/s\n",
		o.rounds, p.appends, b.appends, 100*p.appends/b.appends, p.p99, b.p99, p.proofs, b.proofs)
	return nil
}

// shapeRun is one measurement of a new shape-only log on bbolt (pgURL "")
// or on the empty PostgreSQL database at pgURL.
func shapeRun(o shapeOpts, pgURL string, ph phases) (figures, error) {
	dir, err := os.MkdirTemp("", "evident-load-")
	if err != nil {
		return figures{}, err
	}
	defer os.RemoveAll(dir)
	sl, err := startShapeOnly(dir, pgURL, o.batchSize, o.batchPeriod, o.logger)
	if err != nil {
		return figures{}, err
	}
	defer sl.close()
	if o.prefill > 0 {
		start := time.Now()
		if err := fill(sl.log, o.prefill, ph.entryBytes); err != nil {
			return figures{}, err
		}
		fmt.Printf("prefill: %d entries in %v\n", o.prefill, time.Since(start).Round(time.Millisecond))
	}
	f, err := measure(target{url: sl.url, verifier: sl.verifier, local: sl.log}, ph)
	if err != nil || pgURL == "" || o.frontends < 2 {
		return f, err
	}
	readers := []string{sl.url}
	for i := 1; i < o.frontends; i++ {
		fl, err := sl.follower(pgURL, o.logger)
		if err != nil {
			return figures{}, err
		}
		defer fl.close()
		if _, err := fl.log.Sync(); err != nil {
			return figures{}, err
		}
		readers = append(readers, fl.url)
	}
	lc := &logclient.Client{URL: sl.url, Origin: sl.verifier.Name(), Verifier: sl.verifier, HTTP: newHTTPClient(ph.conc)}
	spread, err := proofPhase(lc, readers, sl.log.Head().Size, ph)
	f.spread = spread.proofs
	return f, err
}

// medianOf is the lower median of v, which it leaves as it is.
func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// median returns, figure by figure, the median of fs.
func median(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		return medianOf(v)
	}
	dur := func(get func(figures) time.Duration) time.Duration {
		return time.Duration(pick(func(f figures) float64 { return float64(get(f)) }))
	}
	return figures{
		appends:      pick(func(f figures) float64 { return f.appends }),
		proofs:       pick(func(f figures) float64 { return f.proofs }),
		spread:       pick(func(f figures) float64 { return f.spread }),
		p50:          dur(func(f figures) time.Duration { return f.p50 }),
		p99:          dur(func(f figures) time.Duration { return f.p99 }),
		proofP50:     dur(func(f figures) time.Duration { return f.proofP50 }),
		proofP99:     dur(func(f figures) time.Duration { return f.proofP99 }),
		cpuPerAppend: dur(func(f figures) time.Duration { return f.cpuPerAppend }),
	}
}
