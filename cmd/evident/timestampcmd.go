package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
)

const timestampUsage = `
Usage: evident timestamp FILE [--tsa URL] [--tsa-roots ROOTS.pem] [--out FILE.tsr]
       evident timestamp verify FILE FILE.tsr [--tsa-roots ROOTS.pem]

Gets a trusted RFC 3161 timestamp on a file's SHA-256, verifies it against the
TSA roots you trust, and writes the TimeStampResp (readable by "openssl ts").
"verify" checks one later, offline: the token's signature, its chain to
--tsa-roots at the time it states (so an expired TSA certificate that was
valid then is fine), and that it is over the file's SHA-256.

--tsa-roots defaults to the root of ./evident-data/tsa-chain.pem (the
development TSA of a local evident serve).

Examples:
  evident timestamp release.tar.gz --tsa http://127.0.0.1:8080/tsa
  evident timestamp verify release.tar.gz release.tar.gz.tsr --tsa-roots tsa-root.pem
`

func runTimestamp(ctx context.Context, e *env, args []string) error {
	verifying := len(args) > 0 && args[0] == "verify"
	if verifying {
		args = args[1:]
	}
	fs := newFlags(e, "timestamp", timestampUsage)
	url := fs.String("tsa", "", "TSA `URL` (default SERVER/tsa; of a comma-separated list, as $EVIDENT_TSA may hold for run, the first)")
	server := fs.String("server", "", "evident server `URL` (default http://127.0.0.1:8080)")
	rootsFile := fs.String("tsa-roots", "", "trusted TSA root certificates (PEM; default: from --tuf-root's trust root, else the root of ./evident-data/tsa-chain.pem)")
	tufRoot, tufURL := addTrustFlags(fs)
	out := fs.String("out", "", "where to write the TimeStampResp (default FILE.tsr)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if verifying && fs.NArg() != 2 || !verifying && fs.NArg() != 1 {
		return usagef("see evident timestamp -h")
	}
	roots, err := (&clientTrust{e: e, server: *server, tsaRoots: *rootsFile, tufRoot: *tufRoot, tufURL: *tufURL}).roots()
	if err != nil {
		return err
	}
	*url, _, _ = strings.Cut(*url, ",")
	if *url = strings.TrimSpace(*url); *url == "" {
		*url = serverURL(e, *server) + "/tsa"
	}
	digest, err := fileSHA256(fs.Arg(0))
	if err != nil {
		return err
	}
	var tok *rfc3161.Token
	if verifying {
		b, err := os.ReadFile(fs.Arg(1))
		if err != nil {
			return err
		}
		token, err := tsa.ParseResponse(b)
		if err != nil {
			if !errors.Is(err, rfc3161.ErrTokenMalformed) {
				return err
			}
			token = b // a bare TimeStampToken
		}
		if tok, err = rfc3161.Verify(token, rfc3161.Options{Roots: roots, Hash: crypto.SHA256, Digest: digest}); err != nil {
			return err
		}
	} else {
		c := &tsa.Client{URL: *url, Roots: roots}
		var token []byte
		if tok, token, err = c.Timestamp(ctx, crypto.SHA256, digest); err != nil {
			return err
		}
		path := *out
		if path == "" {
			path = fs.Arg(0) + ".tsr"
		}
		resp, err := grantedResponse(token)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, resp, 0o644); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(e.stdout, "wrote %s\n", path)
		}
	}
	if *asJSON {
		return printJSON(e, map[string]any{"file": fs.Arg(0), "sha256": fmt.Sprintf("%x", digest), "gen_time": tok.GenTime,
			"accuracy": tok.Accuracy.String(), "policy": tok.Policy.String(), "serial": tok.Serial.Text(16),
			"tsa": tok.Chain[0].Subject.String()})
	}
	fmt.Fprintf(e.stdout, "ok: %s existed at %s (± %v), timestamped by %q\n", fs.Arg(0),
		tok.GenTime.UTC().Format(time.RFC3339), tok.Accuracy, tok.Chain[0].Subject.String())
	return nil
}

// grantedResponse wraps a token in a granted TimeStampResp.
func grantedResponse(token []byte) ([]byte, error) {
	return asn1.Marshal(struct {
		Status struct{ Status int }
		Token  asn1.RawValue
	}{Token: asn1.RawValue{FullBytes: token}})
}

// loadRoots reads trusted TSA roots from path, or by default the root of
// the local development TSA's chain.
func loadRoots(path string) (*x509.CertPool, error) {
	onlyRoot := path == ""
	if onlyRoot {
		path = serve.DefaultDataDir.TSAChain()
		if _, err := os.Stat(path); err != nil {
			return nil, usagef("--tsa-roots or --tuf-root is required (no %s here)", path)
		}
	}
	certs, err := pemfile.LoadCertificates(path)
	if err != nil {
		return nil, err
	}
	if onlyRoot {
		certs = certs[len(certs)-1:]
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
