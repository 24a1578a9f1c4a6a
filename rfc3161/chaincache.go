package rfc3161

import (
	"crypto/x509"
	"fmt"
	"sync"
	"time"
)

// ChainCache remembers certificate paths that verified, so that a chain seen
// again — the same SVID signing many links, the same TSA certificate on
// every token — costs a map lookup and validity checks instead of signature
// verifications. A nil *ChainCache caches nothing. It is safe for concurrent
// use and holds at most its size in paths (then it starts afresh).
//
// Reuse is sound because X.509 path validation depends on the time only
// through validity periods: a path that verified once verifies at any other
// time inside every one of its certificates' validity periods.
type ChainCache struct {
	mu    sync.Mutex
	max   int
	paths map[chainKey][]*x509.Certificate
}

type chainKey struct {
	leaf  [32]byte
	roots *x509.CertPool
	usage x509.ExtKeyUsage
}

// NewChainCache returns a cache holding at most max paths.
func NewChainCache(max int) *ChainCache {
	return &ChainCache{max: max, paths: make(map[chainKey][]*x509.Certificate)}
}

// Verify returns a path from leaf to one of roots, with usage allowed along
// it, on which every certificate is valid over the whole window [from, to].
func (c *ChainCache) Verify(leaf *x509.Certificate, inters []*x509.Certificate, roots *x509.CertPool,
	usage x509.ExtKeyUsage, from, to time.Time) ([]*x509.Certificate, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("empty time window %v to %v", from, to)
	}
	key := chainKey{certHash(leaf), roots, usage}
	if c != nil {
		c.mu.Lock()
		path, ok := c.paths[key]
		c.mu.Unlock()
		if ok && covers(path, from, to) {
			return path, nil
		}
	}
	pool := x509.NewCertPool()
	for _, ic := range inters {
		pool.AddCert(ic)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: from,
		KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		return nil, err
	}
	for _, path := range chains {
		if covers(path, from, to) {
			if c != nil {
				c.mu.Lock()
				if len(c.paths) >= c.max {
					clear(c.paths)
				}
				c.paths[key] = path
				c.mu.Unlock()
			}
			return path, nil
		}
	}
	return nil, fmt.Errorf("%s is valid from %v to %v (or its chain is shorter-lived), which does not cover %v to %v",
		describe(leaf), leaf.NotBefore.UTC(), leaf.NotAfter.UTC(), from.UTC(), to.UTC())
}

func covers(path []*x509.Certificate, from, to time.Time) bool {
	for _, c := range path {
		if from.Before(c.NotBefore) || to.After(c.NotAfter) {
			return false
		}
	}
	return true
}

func describe(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	if c.Subject.String() != "" {
		return c.Subject.String()
	}
	return "the certificate with serial " + c.SerialNumber.String()
}
