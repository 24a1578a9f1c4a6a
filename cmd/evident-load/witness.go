package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// benchWitness is -mode witness: in one run, the append rate of a log with
// no witnesses, then of a log whose checkpoints two litewitnesses cosign
// every period, while samplers measure add-to-witnessed-bundle latency: from
// the add until a checkpoint that both witnesses cosigned covers the entry
// and its inclusion proof against it is verified. The last line is
//
//	witness: unwitnessed N/s, witnessed M/s (P%) | witnessed bundle p50=… p99=…
func benchWitness(bin string, conc int, dur, period time.Duration, entryBytes, samplers int) error {
	dir, err := os.MkdirTemp("", "evident-load-witness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	open := func(sub string, ws []serve.WitnessConfig) (*serve.Server, error) {
		s, err := serve.Open(serve.Config{DataDir: filepath.Join(dir, sub), Addr: "127.0.0.1:0", ShapeOnlyIngest: true,
			Logger: logger, Witnesses: ws, WitnessPeriod: period})
		if err != nil {
			return nil, err
		}
		return s, s.Start()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}}

	// Unwitnessed.
	s, err := open("plain", nil)
	if err != nil {
		return err
	}
	plain, _, err := appendFor(client, s.URL(), conc, dur, entryBytes, 1)
	s.Close(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("unwitnessed: %.0f entries/s\n", plain)

	// Witnessed by two litewitnesses.
	origin := "load.test/witnessed"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return err
	}
	wdir := filepath.Join(dir, "witnessed")
	os.MkdirAll(wdir, 0o700)
	os.WriteFile(filepath.Join(wdir, "log.key"), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(wdir, "log.vkey"), []byte(vkey+"\n"), 0o644)
	var cfgs []serve.WitnessConfig
	var verifiers []*tlog.CosignatureVerifier
	for i := 1; i <= 2; i++ {
		w, stop, err := startLitewitness(bin, filepath.Join(dir, "w"+strconv.Itoa(i)), "load.test/w"+strconv.Itoa(i), origin, vkey)
		if err != nil {
			return err
		}
		defer stop()
		cfgs = append(cfgs, w)
		v, _ := tlog.NewCosignatureVerifier(w.VerifierKey)
		verifiers = append(verifiers, v)
	}
	s, err = open("witnessed", cfgs)
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	lc := &log.Client{URL: s.URL(), Origin: s.Verifier.Name(), Verifier: s.Verifier, HTTP: client}
	witnessed, bundleLat, err := appendFor(client, s.URL(), conc, dur, entryBytes, samplers, func(ctx context.Context, n uint64) (time.Duration, error) {
		e := makeEntry(n|1<<62, entryBytes)
		t0 := time.Now()
		res, err := lc.Add(ctx, e)
		if err != nil {
			return 0, err
		}
		q := url.Values{"index": {strconv.FormatUint(res.Index, 10)}, "cosignatures": {"2"}, "wait": {"20s"}}
		resp, err := client.Get(s.URL() + serve.PathWitnessed + "?" + q.Encode())
		if err != nil {
			return 0, err
		}
		signed, err := io.ReadAll(io.LimitReader(resp.Body, tlog.MaxCheckpointSize))
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return 0, fmt.Errorf("witnessed checkpoint of %d: %s %v", res.Index, resp.Status, err)
		}
		cp, err := log.OpenCheckpoint(signed, lc.Origin, lc.Verifier)
		if err != nil {
			return 0, err
		}
		if cs, _, err := tlog.VerifyCosignatures(signed, verifiers); err != nil || len(cs) != 2 {
			return 0, fmt.Errorf("checkpoint %d has %d cosignatures (%v)", cp.Size, len(cs), err)
		}
		p, err := lc.InclusionProof(ctx, res.Index, cp.Size)
		if err != nil {
			return 0, err
		}
		if err := log.VerifyInclusion(res.Index, cp, log.LeafHash(e), p); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	})
	if err != nil {
		return err
	}
	slices.Sort(bundleLat)
	fmt.Printf("witnessed (2 litewitnesses, period %v): %.0f entries/s, %d witnessed bundles\n", period, witnessed, len(bundleLat))
	fmt.Printf("witness: unwitnessed %.0f/s, witnessed %.0f/s (%.0f%%) | witnessed bundle p50=%v p99=%v\n",
		plain, witnessed, 100*witnessed/plain, pct(bundleLat, 50), pct(bundleLat, 99))
	return nil
}

// appendFor runs conc clients appending distinct entries for dur, and
// samplers running sample in a loop beside them; it returns the append rate
// and the samples.
func appendFor(client *http.Client, url string, conc int, dur time.Duration, entryBytes, samplers int,
	sample ...func(context.Context, uint64) (time.Duration, error)) (float64, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var n, seq atomic.Uint64
	var mu sync.Mutex
	var samples []time.Duration
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := post(client, url+log.PathEntries, makeEntry(seq.Add(1), entryBytes)); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					continue
				}
				n.Add(1)
			}
		}()
	}
	for w := 0; w < samplers && len(sample) > 0; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d, err := sample[0](context.Background(), seq.Add(1))
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				samples = append(samples, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, nil, *p
	}
	return float64(n.Load()) / time.Since(start).Seconds(), samples, nil
}

// startLitewitness starts a litewitness (from bin, as tools/litewitness
// builds it) with a fresh key in its own ssh-agent, registers the log, and
// returns its configuration and a function that stops it.
func startLitewitness(bin, dir, name, origin, logVkey string) (serve.WitnessConfig, func(), error) {
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}
	fail := func(err error) (serve.WitnessConfig, func(), error) { stop(); return serve.WitnessConfig{}, nil, err }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	key, sock := filepath.Join(dir, "key"), filepath.Join(dir, "agent.sock")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("ssh-keygen: %v %s", err, out))
	}
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		return fail(err)
	}
	procs = append(procs, agent)
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", "-q", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		if err == nil {
			break
		}
		if i == 100 {
			return fail(fmt.Errorf("ssh-add: %v %s", err, out))
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Output()
	if err != nil || len(strings.Fields(string(out))) < 2 {
		return fail(fmt.Errorf("ssh-keygen -l: %v", err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := filepath.Join(dir, "w.db")
	lw := exec.Command(filepath.Join(bin, "litewitness"), "-name", name, "-db", db, "-ssh-agent", sock,
		"-key", strings.Fields(string(out))[1], "-listen", addr)
	stderr, _ := lw.StderrPipe()
	if err := lw.Start(); err != nil {
		return fail(err)
	}
	procs = append(procs, lw)
	sc := bufio.NewScanner(stderr)
	vkey := ""
	for vkey == "" && sc.Scan() {
		if i := strings.Index(sc.Text(), "vkey="); i >= 0 {
			vkey = strings.Trim(strings.Fields(sc.Text()[i+5:])[0], `"`)
		}
	}
	go io.Copy(io.Discard, stderr)
	if vkey == "" {
		return fail(fmt.Errorf("litewitness %s printed no verifier key", name))
	}
	if out, err := exec.Command(filepath.Join(bin, "registerlog"), "-db", db, "-origin", origin, "-key", logVkey).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("registerlog: %v %s", err, out))
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			return fail(fmt.Errorf("litewitness %s does not listen on %s", name, addr))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return serve.WitnessConfig{Name: name, URL: "http://" + addr, VerifierKey: vkey}, stop, nil
}
