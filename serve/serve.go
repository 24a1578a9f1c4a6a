// Package serve assembles evident's server: the transparency log, the link
// store beside it, the RFC 3161 timestamp authority, the TUF repository,
// witnessing and the development CA behind one hardened HTTP server (limits
// and the JSON error dialect of internal/httpapi), with keys and data kept
// in one directory ([DataDir]) or the log and links in PostgreSQL.
//
// On first start in an empty data directory it generates development keys;
// every later start reuses them. The data directory holds ([DataDir] is
// the one place that knows these names):
//
//	log.db         the bbolt store of the log
//	links.db       the links beside it, by payload digest, and an artifact index
//	log.key        the log's note signing key (mode 0600)
//	log.vkey       the log's note verifier key, name+hash+base64 (public)
//	tsa.key        the development TSA's key (mode 0600), unless --tsa-key is given
//	tsa-chain.pem  the development TSA's chain, TSA certificate first, root last
//	dev-ca.key     the development functionary CA's key (mode 0600)
//	dev-ca.pem     the development functionary CA, trusted for entries unless
//	               --functionary-roots is given
//	tuf/           the TUF repository, served read-only at /tuf/ (clients start
//	               from tuf/metadata/1.root.json, obtained out of band)
//	tuf-keys/      its keys; in production only snapshot.pem and timestamp.pem
//	               need to be here, for re-signing before they expire
//
// Every entry is verified before it is logged (verify.EntryVerifier): its
// RFC 3161 tokens against the TSA roots (one must verify), its signer's
// chain at the tokens' times against the functionary roots, its signature
// over the payload posted with it (evident.Submission), or, for a bare
// ECDSA or RSA link entry, over the payload digest.
package serve

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/tsa"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/evident-dev/evident/verify"
	"golang.org/x/mod/sumdb/note"
)

// Config is everything a server needs; the zero value of each field means its
// documented default.
type Config struct {
	// DataDir holds the store and keys (default ./evident-data).
	DataDir string
	// Store, if set, is a postgres:// URL: the log is kept in that
	// PostgreSQL database, shared with any number of other frontends, one
	// of which sequences at a time (see store.go). Empty: bbolt in DataDir.
	Store string
	// Advertise is the URL other frontends forward appends to while this
	// one sequences (default: http:// and the listening address).
	Advertise string
	// LeaseTTL is the sequencer lease's lifetime with Store (default 3s).
	LeaseTTL time.Duration
	// Addr is the listen address (default 127.0.0.1:8080; port 0 picks one).
	Addr string
	// Origin is the log's checkpoint origin and key name (default: the name
	// of an existing key, else "localhost/evident").
	Origin string
	// BatchSize, BatchPeriod and MaxPending tune the log's group commit (see
	// log.Config).
	BatchSize   int
	BatchPeriod time.Duration
	MaxPending  int
	// Logger receives structured logs (default: text to stderr).
	Logger *slog.Logger
	// ReadHeaderTimeout overrides the default of the same name (tests use a
	// short one).
	ReadHeaderTimeout time.Duration

	// TSAKeyFile and TSAChainFile (PEM; chain leaf first, root last) are the
	// TSA's production key and chain; both empty means the development TSA.
	TSAKeyFile, TSAChainFile string
	// TSARootsFile (PEM) are the TSA roots entries' tokens must chain to
	// (default: the root of the serving TSA's chain).
	TSARootsFile string
	// FunctionaryRootsFile (PEM) are the roots signer chains must reach
	// (default: the development functionary CA).
	FunctionaryRootsFile string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TUFDir and TUFKeysDir are the TUF repository and its keys (default
	// DataDir/tuf and DataDir/tuf-keys). With embedded defaults a missing
	// repository is created, its trust root holding the development
	// functionary CA, the TSA root and the log key.
	TUFDir, TUFKeysDir string
	// TUFRefresh is how often the online roles are checked and re-signed
	// when they expire within half a day (default 10 minutes).
	TUFRefresh time.Duration
	// DevSVID serves POST /dev/svid: short-lived SVIDs from the development
	// CA for any local caller, without attestation. Only for a development
	// data directory (no FunctionaryRootsFile); off by default.
	DevSVID bool
	// DevSVIDTTL is the lifetime of development SVIDs handed out at
	// POST /dev/svid (default 5 minutes).
	DevSVIDTTL time.Duration
	// AdminSocket (a unix socket path, created mode 0600) or AdminAddr (a
	// listen address) is where the admin endpoints (GET /admin/backup)
	// listen, apart from the public API; both empty: no admin endpoints.
	AdminSocket, AdminAddr string
	// StoreMmapSize is log.db's initial memory map (default
	// boltstore.DefaultInitialMmapSize).
	StoreMmapSize int
	// MaxConns caps the public listener's concurrent connections; ConnReserve
	// more are kept for health and checkpoint reads (see connLimits for the
	// defaults, derived from the process's file descriptor limit).
	MaxConns, ConnReserve int
	// Witnesses are submitted the latest checkpoint every WitnessPeriod
	// (default 1s) with C2SP tlog-witness; see witness.go.
	Witnesses     []WitnessConfig
	WitnessPeriod time.Duration
}

// Defaults of Config: the one definition, which evident serve's flags and
// the client commands' --server show.
const (
	// DefaultOrigin is the origin of a log created without --origin.
	DefaultOrigin = "localhost/evident"
	// DefaultAddr is the listen address.
	DefaultAddr = "127.0.0.1:8080"
	// DefaultURL is the server's URL at DefaultAddr: what clients reach
	// without --server or $EVIDENT_SERVER.
	DefaultURL = "http://" + DefaultAddr
	// DefaultDevSVIDTTL is the lifetime of development SVIDs.
	DefaultDevSVIDTTL = 5 * time.Minute
)

// Server is a running evident server.
type Server struct {
	Log      *log.Log
	TSA      *tsa.Server
	Verifier note.Verifier
	// Entries is the ingest verifier the log's validator uses.
	Entries *verify.EntryVerifier
	// DevCA is the development functionary CA (nil with --functionary-roots).
	DevCA *DevCA
	// VerifierKey is the log's public key in note form: name+hash+base64.
	VerifierKey string

	cfg      Config
	logStore log.Store
	store    *boltstore.Store // nil with PostgreSQL
	cluster  *cluster         // nil with bbolt
	links    linkstore.Store
	stopTUF  chan struct{}
	tufDone  chan struct{}
	adds     addLatency
	listener net.Listener
	http     *http.Server
	served   chan error
	adminLn  net.Listener
	admin    *http.Server
	backups  sync.Mutex // one backup at a time
	status   statusCache
	conns    *capListener
	witness  *witnessing
}

// Open opens (creating on first use) the data directory, the keys and the
// log, but does not listen yet: see [Server.Start].
func Open(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = string(DefaultDataDir)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create data directory: %w", err)
	}
	ts, err := openTSA(cfg)
	if err != nil {
		return nil, err
	}
	ev, devCA, err := entryVerifier(cfg, ts)
	if err != nil {
		return nil, err
	}
	signer, vkey, err := loadOrCreateNoteKey(DataDir(cfg.DataDir), cfg.Origin)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log.vkey: %w", err)
	}
	cfg.Origin = signer.Name()
	if cfg.DevSVID && devCA == nil {
		return nil, errors.New("development SVIDs need the development CA: not with --functionary-roots")
	}
	if old, _ := filepath.Glob(filepath.Join(cfg.DataDir, backupTempPattern)); len(old) > 0 {
		for _, p := range old {
			os.Remove(p)
		}
	}
	store, bolt, cl, err := openLogStore(cfg)
	if err != nil {
		return nil, err
	}
	closeStore := func() {
		if cl != nil {
			cl.close()
		}
		store.Close()
	}
	l, err := log.Open(store, log.Config{
		Origin:      cfg.Origin,
		Signer:      signer,
		Verifier:    verifier,
		Validate:    validator(ev),
		MaxBodySize: evident.MaxSubmissionSize,
		LargeBody:   evident.IsSubmission,
		BatchSize:   cfg.BatchSize,
		BatchPeriod: cfg.BatchPeriod,
		MaxPending:  cfg.MaxPending,
		Logger:      cfg.Logger,
	})
	if err != nil {
		closeStore()
		return nil, err
	}
	if cl != nil {
		cl.start(l)
	}
	links, err := openLinks(cfg)
	if err != nil {
		l.Close()
		closeStore()
		return nil, err
	}
	srv := &Server{Log: l, TSA: ts, Entries: ev, DevCA: devCA, Verifier: verifier, VerifierKey: vkey, cfg: cfg,
		logStore: store, store: bolt, cluster: cl, links: links, served: make(chan error, 1), stopTUF: make(chan struct{}), tufDone: make(chan struct{})}
	if err := srv.openTUF(); err != nil {
		l.Close()
		closeStore()
		links.Close()
		return nil, err
	}
	go srv.refreshTUF()
	if srv.witness, err = newWitnessing(l, store, cfg.Witnesses, cfg.WitnessPeriod, cfg.Logger, cfg.Now); err != nil {
		srv.Close(context.Background())
		return nil, err
	}
	if cl != nil {
		srv.witness.leading = func() bool { return cl.elector.Status().Leading }
	}
	srv.witness.start()
	return srv, nil
}

// TUFDir is the TUF repository directory.
func (s *Server) TUFDir() string { return s.cfg.TUFDir }

// openTUF creates the development repository on first use.
func (s *Server) openTUF() error {
	cfg := &s.cfg
	if cfg.TUFDir == "" {
		cfg.TUFDir = DataDir(cfg.DataDir).TUF()
	}
	if cfg.TUFKeysDir == "" {
		cfg.TUFKeysDir = DataDir(cfg.DataDir).TUFKeys()
	}
	if cfg.TUFRefresh <= 0 {
		cfg.TUFRefresh = 10 * time.Minute
	}
	if _, err := os.Stat(TUFRoot(cfg.TUFDir)); err == nil {
		return nil
	}
	r, err := tufrepo.Init(cfg.TUFDir, cfg.TUFKeysDir, tufrepo.InitOptions{Now: cfg.Now})
	if err != nil {
		return fmt.Errorf("TUF: %w", err)
	}
	signers, err := tufrepo.LoadKeys(cfg.TUFKeysDir, tufrepo.Targets, tufrepo.Snapshot, tufrepo.Timestamp)
	if err != nil {
		return err
	}
	// Each item is trusted from when its key became valid: a certificate's
	// NotBefore; the log key's creation (now), less a minute of slack for
	// genTime's one-second resolution.
	now := cfg.Now().Add(-time.Minute)
	return r.EditTrustRoot(func(tr *evident.TrustRoot) error {
		chain := s.TSA.Chain()
		root := chain[len(chain)-1]
		if err := tr.Add(evident.KindTSA, "evident-dev-tsa", string(pemfile.EncodeCertificates([]*x509.Certificate{root})), root.NotBefore); err != nil {
			return err
		}
		if err := tr.Add(evident.KindLog, s.cfg.Origin, s.VerifierKey, now); err != nil {
			return err
		}
		if s.DevCA != nil {
			if err := tr.Add(evident.KindFunctionaryCA, "evident-dev-ca", string(pemfile.EncodeCertificates([]*x509.Certificate{s.DevCA.Cert})), s.DevCA.Cert.NotBefore); err != nil {
				return err
			}
			// The development CA vouches for its own trust domain only.
			return tr.SetTrustDomains("evident-dev-ca", []string{DevTrustDomain})
		}
		return nil
	}, signers)
}

// refreshTUF re-signs the online roles before they expire; with several
// frontends, only the sequencer does, and the others follow it (tufRound).
func (s *Server) refreshTUF() {
	defer close(s.tufDone)
	t := time.NewTicker(s.tufInterval())
	defer t.Stop()
	for {
		if err := s.tufRound(); err != nil {
			s.cfg.Logger.Error("couldn't refresh the TUF online roles", "err", err)
		}
		select {
		case <-s.stopTUF:
			return
		case <-t.C:
		}
	}
}

// validator is the log's validator: a submission (an entry and its
// payload) or a bare entry, the Entry shape, canonicalised, and every check
// of ev — with the payload, the signature over the very message it signs,
// whatever the key; without, what the payload digest allows (ECDSA or RSA
// over a link). Errors name the failed check. Only the entry is logged.
func validator(ev *verify.EntryVerifier) log.Validator {
	return func(b []byte) ([]byte, error) {
		e, canonical, payload, err := evident.ParseSubmission(b)
		if err != nil {
			return nil, err
		}
		if _, err := ev.VerifyPayload(e, payload); err != nil {
			return nil, err
		}
		return canonical, nil
	}
}

// openTSA loads the production TSA or the development one.
func openTSA(cfg Config) (*tsa.Server, error) {
	key, chain, err := DataDir(cfg.DataDir).LoadTSA(cfg.TSAKeyFile, cfg.TSAChainFile, cfg.Now())
	if errors.Is(err, ErrTSAKeyPair) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("TSA: %w", err)
	}
	ts, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("TSA: %w", err)
	}
	return ts, nil
}

// entryVerifier builds the ingest verifier from the configured roots.
func entryVerifier(cfg Config, ts *tsa.Server) (*verify.EntryVerifier, *DevCA, error) {
	ev := &verify.EntryVerifier{Cache: rfc3161.NewChainCache(4096), TSARoots: x509.NewCertPool(), FunctionaryRoots: x509.NewCertPool()}
	if cfg.TSARootsFile != "" {
		if err := pemfile.AddCertificates(ev.TSARoots, cfg.TSARootsFile); err != nil {
			return nil, nil, err
		}
	} else {
		chain := ts.Chain()
		ev.TSARoots.AddCert(chain[len(chain)-1])
	}
	ev.TSACertificates = ts.Chain()[:1]
	if cfg.FunctionaryRootsFile != "" {
		return ev, nil, pemfile.AddCertificates(ev.FunctionaryRoots, cfg.FunctionaryRootsFile)
	}
	dev, err := LoadOrCreateDevCA(cfg.DataDir, cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	ev.FunctionaryRoots.AddCert(dev.Cert)
	return ev, dev, nil
}

// Origin returns the log's origin.
func (s *Server) Origin() string { return s.cfg.Origin }

// Handler returns the server's whole HTTP API, with panics turned into 500s.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(log.TilesPrefix, s.logHandler())
	mux.HandleFunc("GET "+log.PathCheckpoint, s.witness.serveCheckpoint)
	mux.HandleFunc("GET "+PathWitnessed, s.witness.serveWitnessed)
	mux.Handle("/tsa", s.TSA.Handler())
	mux.Handle("/tsa/", s.TSA.Handler())
	files := http.StripPrefix("/tuf", http.FileServer(http.Dir(s.cfg.TUFDir)))
	mux.Handle("GET /tuf/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || strings.Contains(r.URL.Path, "/.") {
			httpapi.WriteError(w, "no such file", http.StatusNotFound) // no listings, no lock or temporary files
			return
		}
		files.ServeHTTP(w, r)
	}))
	if s.cfg.DevSVID {
		mux.HandleFunc("POST /dev/svid", s.devSVID)
	}
	links := s.linksHandler()
	mux.Handle(linkstore.PathLinks, links)
	mux.Handle(linkstore.PathLinks+"/", links)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /healthz", healthz)
	return recoverer(s.cfg.Logger, s.reserveOnly(s.timeAdds(httpapi.MuxErrors(mux, isAPIPath))))
}

// isAPIPath reports whether r is for the JSON API whose errors, a path or
// method no endpoint serves included, are the JSON of package
// internal/httpapi, and whose paths this mux may not serve: the link store
// and development SVIDs. (Every path under /log/ goes to the log's
// handler, which answers its own.) TUF files, the status page and /metrics
// answer as file servers and pages do.
func isAPIPath(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/links/") || p == "/links" || strings.HasPrefix(p, "/dev/")
}

// Start listens on the configured addresses and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("couldn't listen: %w", err)
	}
	admin, err := s.listenAdmin()
	if err != nil {
		ln.Close()
		return err
	}
	maxConns, reserve := connLimits(s.cfg.MaxConns, s.cfg.ConnReserve)
	s.conns = newCapListener(ln, maxConns, reserve)
	s.listener = s.conns
	if s.cluster != nil {
		s.cluster.listening(s.URL())
	}
	s.http = s.httpServer(s.Handler())
	s.http.ConnContext = s.conns.connContext
	s.http.ConnState = s.conns.connState
	go func() { s.served <- s.http.Serve(s.conns) }()
	s.cfg.Logger.Info("listening", "addr", ln.Addr().String(), "max_conns", maxConns, "reserve", reserve)
	if admin != nil {
		s.adminLn = admin
		s.admin = s.httpServer(s.AdminHandler())
		go s.admin.Serve(admin)
		s.cfg.Logger.Info("admin endpoints (GET /admin/backup) listening", "at", s.AdminURL())
	} else {
		s.cfg.Logger.Info("no admin listener: backups over HTTP are off (--admin-socket or --admin-addr turns them on)")
	}
	if s.cfg.DevSVID {
		s.cfg.Logger.Warn("POST /dev/svid issues development SVIDs to any local caller, without attestation: for development only (--dev-svid)")
	}
	return nil
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return httpapi.NewServer(h, s.cfg.Logger, s.cfg.ReadHeaderTimeout)
}

// URL is the server's base URL, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string {
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// Wait blocks until the HTTP server stops.
func (s *Server) Wait() error {
	err := <-s.served
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting connections, lets the requests in flight finish
// until the context is done (the grace), then cuts those still running;
// then the sequencer finishes the batch in progress and the stores close.
// Cutting slow clients at the end of the grace is not an error.
func (s *Server) Close(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, h := range []*http.Server{s.http, s.admin} {
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Shutdown(ctx); err != nil {
				s.cfg.Logger.Warn("the shutdown grace ended: cutting the connections still open", "err", err)
				h.Close()
			}
		}()
	}
	wg.Wait()
	close(s.stopTUF)
	<-s.tufDone
	if s.witness != nil {
		s.witness.close()
	}
	return errors.Join(s.Log.Close(), s.closeStore(), s.links.Close())
}

// loadOrCreateNoteKey reads log.key from dir, or generates it (and log.vkey)
// for origin on first use. An existing key for another origin is an error.
func loadOrCreateNoteKey(dir DataDir, origin string) (note.Signer, string, error) {
	keyPath, vkeyPath := dir.LogKey(), dir.LogVerifierKey()
	skey, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if origin == "" {
			origin = DefaultOrigin
		}
		sk, vk, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, "", fmt.Errorf("couldn't generate the log key: %w", err)
		}
		if err := os.WriteFile(vkeyPath, []byte(vk+"\n"), 0o644); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(keyPath, []byte(sk+"\n"), 0o600); err != nil {
			return nil, "", err
		}
		skey = []byte(sk)
	} else if err != nil {
		return nil, "", fmt.Errorf("couldn't read the log key: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", keyPath, err)
	}
	if origin != "" && signer.Name() != origin {
		return nil, "", fmt.Errorf("%s is the key of origin %q, not %q: a log's origin cannot change", keyPath, signer.Name(), origin)
	}
	vkey, err := os.ReadFile(vkeyPath)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read the log verifier key: %w", err)
	}
	return signer, strings.TrimSpace(string(vkey)), nil
}

// recoverer turns a handler panic into a logged 500 (threat model S1).
func recoverer(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				httpapi.WriteError(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// devSVID hands a short-lived SVID from the development CA to a loopback
// caller (development only: there is no attestation).
func (s *Server) devSVID(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		httpapi.WriteError(w, "development SVIDs are for local callers only", http.StatusForbidden)
		return
	}
	var req identity.DevSVIDRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req); err != nil {
		httpapi.WriteError(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	id, err := url.Parse(req.SPIFFEID)
	if err != nil || id.Scheme != "spiffe" || id.Host != DevTrustDomain || id.Path == "" || id.RawQuery != "" || id.Fragment != "" {
		httpapi.WriteError(w, "spiffe_id must be spiffe://"+DevTrustDomain+"/<path>", http.StatusBadRequest)
		return
	}
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		httpapi.WriteError(w, "public_key: "+err.Error(), http.StatusBadRequest)
		return
	}
	ttl := s.cfg.DevSVIDTTL
	if ttl <= 0 {
		ttl = DefaultDevSVIDTTL
	}
	cert, err := s.DevCA.IssueSVID(id, pub, s.cfg.Now(), ttl)
	if err != nil {
		httpapi.WriteError(w, "couldn't issue: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.cfg.Logger.Info("issued a development SVID", "spiffe_id", id.String(), "ttl", ttl)
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(pemfile.EncodeCertificates([]*x509.Certificate{cert}))
}

// DevTrustDomain is the trust domain of development SVIDs.
const DevTrustDomain = "evident.dev"
