// Package identity gets a functionary's signing identity ([link.Signer]):
// from a PEM key and certificate chain on disk ([FromFiles]), from the
// SPIFFE Workload API, an X.509-SVID fetched at signing time so rotations
// are picked up ([FromWorkloadAPI]), or from a development server's
// POST /dev/svid ([FromDevServer], whose request is [DevSVIDRequest], the
// type the server decodes too).
//
// It is apart from package link so that link stays the in-toto link format
// and its signing, with no network code, and so that the server shares the
// development-SVID request type without importing link.
package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// FromFiles loads a signing identity from a PEM private key and, for an
// X.509 functionary, a PEM certificate chain (leaf first); certPath "" is a
// key-only functionary.
func FromFiles(keyPath, certPath string) (link.Signer, error) {
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return link.Signer{}, err
	}
	key, err := pemfile.ParsePrivateKey(kb)
	if err != nil {
		return link.Signer{}, fmt.Errorf("%s: %w", keyPath, err)
	}
	s := link.Signer{Key: key}
	if certPath != "" {
		if s.Chain, err = pemfile.LoadCertificates(certPath); err != nil {
			return link.Signer{}, err
		}
		pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(s.Chain[0].PublicKey) {
			return link.Signer{}, fmt.Errorf("%s does not hold the key of %s's first certificate", keyPath, certPath)
		}
	}
	return s, nil
}

// FromWorkloadAPI fetches the current X.509-SVID from the SPIFFE Workload
// API at socket ("unix:///path" or a bare path; "" uses
// SPIFFE_ENDPOINT_SOCKET). The leaf and intermediates are captured now, as
// SPIRE rotates both.
func FromWorkloadAPI(ctx context.Context, socket string) (link.Signer, string, error) {
	var opts []workloadapi.ClientOption
	if socket != "" {
		if !strings.Contains(socket, "://") {
			socket = "unix://" + socket
		}
		opts = append(opts, workloadapi.WithAddr(socket))
	}
	svid, err := workloadapi.FetchX509SVID(ctx, opts...)
	if err != nil {
		return link.Signer{}, "", fmt.Errorf("couldn't fetch an X.509-SVID from the Workload API: %w", err)
	}
	return link.Signer{Key: svid.PrivateKey, Chain: svid.Certificates}, svid.ID.String(), nil
}

// DevSVIDRequest asks a development server for an SVID.
type DevSVIDRequest struct {
	SPIFFEID  string `json:"spiffe_id"`
	PublicKey []byte `json:"public_key"` // PKIX DER
}

// FromDevServer gets a short-lived SVID for spiffeID from the development
// SPIFFE CA of an evident server (POST /dev/svid), for a fresh key. It is
// for development only: anyone who can reach the endpoint gets an SVID.
func FromDevServer(ctx context.Context, serverURL, spiffeID string) (link.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return link.Signer{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return link.Signer{}, err
	}
	body, _ := json.Marshal(DevSVIDRequest{SPIFFEID: spiffeID, PublicKey: der})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(serverURL, "/")+"/dev/svid", bytes.NewReader(body))
	if err != nil {
		return link.Signer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpapi.DefaultClient().Do(req)
	if err != nil {
		return link.Signer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return link.Signer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return link.Signer{}, fmt.Errorf("development SVID: server answered %s: %s", resp.Status, httpapi.ErrorMessage(b))
	}
	chain, err := pemfile.ParseCertificates(b)
	if err != nil {
		return link.Signer{}, fmt.Errorf("development SVID: %w", err)
	}
	return link.Signer{Key: key, Chain: chain}, nil
}
