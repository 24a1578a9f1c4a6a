package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
)

// inProcessOpts configures an in-process evident server.
type inProcessOpts struct {
	tsas        int // TSAs the server trusts, its own first
	batchPeriod time.Duration
	batchSize   int
	logger      *slog.Logger
}

// openInProcess opens an evident server (serve.Open, as evident serve
// runs it) in a new temporary directory, with o.tsas-1 more in-process
// TSAs whose roots it trusts; cleanup closes it and removes the directory.
func openInProcess(o inProcessOpts) (s *serve.Server, extra []*tsa.Server, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "evident-load-")
	if err != nil {
		return nil, nil, nil, err
	}
	extra, rootsFile, err := extraTSAs(dir, o.tsas-1)
	if err == nil {
		s, err = serve.Open(serve.Config{DataDir: dir, Addr: "127.0.0.1:0", BatchPeriod: o.batchPeriod, BatchSize: o.batchSize,
			TSARootsFile: rootsFile, Logger: o.logger})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return s, extra, func() { s.Close(context.Background()); os.RemoveAll(dir) }, nil
}

// ingestFormats are the entry formats -verify-ingest mints.
var ingestFormats = map[string]bool{"metablock": true, "dsse": true}

// runIngest measures verified ingest: for each round, each format on a
// new in-process server with entries minted for it (before the clock
// starts), the formats' order alternating from round to round. The last
// line is the figures of the one format, or for two the medians and their
// ratio, by wall time and by the process's CPU time per entry appended
// (the inverse ratio of CPU times, so that over 100% means faster too):
//
//	dsse/metablock ingest (median of R rounds): X/s vs Y/s = Z%; paired by round P%; by CPU time per entry C%
func runIngest(o inProcessOpts, formats []string, rounds, nmint int, withPayload bool, ph phases) error {
	if len(formats) > 2 || len(formats) == 2 && formats[0] == formats[1] {
		return errors.New("-format takes one format, or two to compare (dsse,metablock)")
	}
	for _, f := range formats {
		if !ingestFormats[f] {
			return fmt.Errorf("-format %q: want metablock or dsse", f)
		}
	}
	got := map[string][]figures{}
	for r := 0; r < rounds; r++ {
		for i := range formats {
			f := formats[(i+r)%len(formats)] // alternate which goes first
			rph := ph
			if ph.cpuprofile != "" && len(formats) > 1 { // a profile per format, of its last round
				rph.cpuprofile = strings.TrimSuffix(ph.cpuprofile, ".prof") + "." + f + ".prof"
			}
			fig, err := ingestRun(o, f, nmint, withPayload, rph)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, f, err)
			}
			got[f] = append(got[f], fig)
			if len(formats) > 1 || rounds > 1 {
				fmt.Printf("round %d, %s: %v; CPU %v per entry\n", r+1, f, fig, fig.cpuPerAppend.Round(time.Microsecond))
			}
		}
	}
	a := median(got[formats[0]])
	if len(formats) == 1 {
		fmt.Println(a)
		return nil
	}
	b := median(got[formats[1]])
	fmt.Printf("%s/%s ingest (median of %d rounds): %.0f/s vs %.0f/s = %.0f%%; paired by round %.0f%%; by CPU time per entry %.0f%%\n",
		formats[0], formats[1], rounds, a.appends, b.appends, 100*a.appends/b.appends,
		100*pairedRatio(got[formats[0]], got[formats[1]]), 100*b.cpuPerAppend.Seconds()/a.cpuPerAppend.Seconds())
	return nil
}

// pairedRatio is the median over rounds of a's appends/s over b's in the
// same round: the two formats of a round run back to back, so a load
// that comes and goes between rounds moves both alike.
func pairedRatio(a, b []figures) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i].appends / b[i].appends
	}
	return medianOf(r)
}

// ingestRun is one measurement of verified ingest of format entries.
func ingestRun(o inProcessOpts, format string, nmint int, withPayload bool, ph phases) (figures, error) {
	s, extra, cleanup, err := openInProcess(o)
	if err != nil {
		return figures{}, err
	}
	defer cleanup()
	start := time.Now()
	if ph.minted, ph.bodies, err = mintEntries(s, extra, nmint, withPayload, format); err != nil {
		return figures{}, err
	}
	fmt.Printf("minted %d real %s entries (one SVID, %d in-process TSAs, payload posted: %v) in %v\n", nmint, format, o.tsas,
		withPayload || format == "dsse", time.Since(start).Round(time.Millisecond))
	if err := s.Start(); err != nil {
		return figures{}, err
	}
	return measure(target{url: s.URL(), verifier: s.Verifier, local: s.Log}, ph)
}
