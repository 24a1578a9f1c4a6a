package link

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
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// FromFiles loads a signing identity from a PEM private key and, for an
// X.509 functionary, a PEM certificate chain (leaf first); certPath "" is a
// key-only functionary.
func FromFiles(keyPath, certPath string) (Signer, error) {
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return Signer{}, err
	}
	key, err := pemfile.ParsePrivateKey(kb)
	if err != nil {
		return Signer{}, fmt.Errorf("%s: %w", keyPath, err)
	}
	s := Signer{Key: key}
	if certPath != "" {
		if s.Chain, err = pemfile.LoadCertificates(certPath); err != nil {
			return Signer{}, err
		}
		pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(s.Chain[0].PublicKey) {
			return Signer{}, fmt.Errorf("%s does not hold the key of %s's first certificate", keyPath, certPath)
		}
	}
	return s, nil
}

// FromWorkloadAPI fetches the current X.509-SVID from the SPIFFE Workload
// API at socket ("unix:///path" or a bare path; "" uses
// SPIFFE_ENDPOINT_SOCKET). The leaf and intermediates are captured now, as
// SPIRE rotates both.
func FromWorkloadAPI(ctx context.Context, socket string) (Signer, string, error) {
	var opts []workloadapi.ClientOption
	if socket != "" {
		if !strings.Contains(socket, "://") {
			socket = "unix://" + socket
		}
		opts = append(opts, workloadapi.WithAddr(socket))
	}
	svid, err := workloadapi.FetchX509SVID(ctx, opts...)
	if err != nil {
		return Signer{}, "", fmt.Errorf("couldn't fetch an X.509-SVID from the Workload API: %w", err)
	}
	return Signer{Key: svid.PrivateKey, Chain: svid.Certificates}, svid.ID.String(), nil
}

// DevSVIDRequest asks a development server for an SVID.
type DevSVIDRequest struct {
	SPIFFEID  string `json:"spiffe_id"`
	PublicKey []byte `json:"public_key"` // PKIX DER
}

// FromDevServer gets a short-lived SVID for spiffeID from the development
// SPIFFE CA of an evident server (POST /dev/svid), for a fresh key. It is
// for development only: anyone who can reach the endpoint gets an SVID.
func FromDevServer(ctx context.Context, serverURL, spiffeID string) (Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Signer{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return Signer{}, err
	}
	body, _ := json.Marshal(DevSVIDRequest{SPIFFEID: spiffeID, PublicKey: der})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(serverURL, "/")+"/dev/svid", bytes.NewReader(body))
	if err != nil {
		return Signer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpapi.DefaultClient().Do(req)
	if err != nil {
		return Signer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Signer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Signer{}, fmt.Errorf("development SVID: server answered %s: %s", resp.Status, httpapi.ErrorMessage(b))
	}
	chain, err := pemfile.ParseCertificates(b)
	if err != nil {
		return Signer{}, fmt.Errorf("development SVID: %w", err)
	}
	return Signer{Key: key, Chain: chain}, nil
}
