// Package spiffetest is an in-process SPIFFE Workload API for tests, built
// on go-spiffe's public gRPC package: it serves X.509-SVIDs over a unix
// socket and pushes rotations to connected clients.
package spiffetest

import (
	"crypto"
	"crypto/x509"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WorkloadAPI is a fake SPIFFE Workload API (X.509-SVIDs only).
type WorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	// Socket is the unix socket path clients connect to.
	Socket string

	mu      sync.Mutex
	current *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced on every Set
}

// Start serves the API on a socket in a temporary directory until the test ends.
func Start(t testing.TB) *WorkloadAPI {
	t.Helper()
	w := &WorkloadAPI{Socket: filepath.Join(t.TempDir(), "agent.sock"), changed: make(chan struct{})}
	ln, err := net.Listen("unix", w.Socket)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(s, w)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return w
}

// Set makes (id, chain, key) the current SVID, with bundle as its trust
// bundle, and pushes it to connected clients: a rotation.
func (w *WorkloadAPI) Set(id string, chain []*x509.Certificate, key crypto.Signer, bundle []*x509.Certificate) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	var certs, roots []byte
	for _, c := range chain {
		certs = append(certs, c.Raw...)
	}
	for _, c := range bundle {
		roots = append(roots, c.Raw...)
	}
	w.mu.Lock()
	w.current = &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{SpiffeId: id, X509Svid: certs, X509SvidKey: keyDER, Bundle: roots}}}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return nil
}

// FetchX509SVID implements the Workload API: the current SVID, then every
// rotation, until the client goes away.
func (w *WorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		w.mu.Lock()
		cur, changed := w.current, w.changed
		w.mu.Unlock()
		if cur != nil {
			if err := stream.Send(cur); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}
