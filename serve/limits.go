package serve

import (
	"context"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
)

// Connection cap (threat model S1). Every connection costs a file descriptor;
// without a cap, enough slow clients exhaust them and the server can no
// longer accept anyone, nor open a file. The public listener holds at most
// maxConns connections for the whole API, and reserve more that serve only
// the cheap reads a monitor or a load balancer needs (GET /healthz,
// /log/checkpoint and /metrics), each with a short deadline; a new connection beyond
// both evicts the oldest reserve connection that has not yet sent a request
// (a slow client's), or is closed at once.

// Defaults of the connection cap.
const (
	// fdHeadroom descriptors are left for files (stores, TUF, backups) and
	// the admin listener.
	fdHeadroom = 256
	// DefaultConnReserve connections are kept for health and checkpoint reads.
	DefaultConnReserve = 64
	// maxDefaultConns bounds the default cap on a very high file limit.
	maxDefaultConns = 16384
	// reserveDeadline is how long a reserve connection may live.
	reserveDeadline = 5 * time.Second
)

// connLimits returns the cap and the reserve: the configured ones, or
// defaults under the process's file descriptor limit.
func connLimits(maxConns, reserve int) (int, int) {
	if reserve <= 0 {
		reserve = DefaultConnReserve
	}
	if maxConns <= 0 {
		maxConns = maxDefaultConns
		var rl syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(maxConns+reserve+fdHeadroom) {
			maxConns = max(int(rl.Cur)-reserve-fdHeadroom, 16)
		}
	}
	return maxConns, reserve
}

// capListener counts the connections it accepted and not yet closed.
type capListener struct {
	net.Listener
	max, reserve int

	mu       sync.Mutex
	open     int                    // normal connections
	reserved map[*capConn]time.Time // reserve connections, by when accepted
	fresh    map[*capConn]bool      // reserve connections without a request yet
}

func newCapListener(ln net.Listener, max, reserve int) *capListener {
	return &capListener{Listener: ln, max: max, reserve: reserve,
		reserved: make(map[*capConn]time.Time), fresh: make(map[*capConn]bool)}
}

type capConn struct {
	net.Conn
	l       *capListener
	reserve bool // set once, before the connection is served
	counted bool // guarded by l.mu
}

func (c *capConn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// forget stops counting c; l.mu is held.
func (l *capListener) forget(c *capConn) {
	if !c.counted {
		return
	}
	c.counted = false
	if c.reserve {
		delete(l.reserved, c)
		delete(l.fresh, c)
	} else {
		l.open--
	}
}

// Accept implements net.Listener.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if cc := l.admit(c); cc != nil {
			return cc, nil
		}
	}
}

// admit returns c counted as a normal or reserve connection, or nil after
// closing it.
func (l *capListener) admit(c net.Conn) *capConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	cc := &capConn{Conn: c, l: l, counted: true}
	if l.open < l.max {
		l.open++
		return cc
	}
	if len(l.reserved) >= l.reserve {
		var oldest *capConn
		var at time.Time
		for r := range l.fresh {
			if t := l.reserved[r]; oldest == nil || t.Before(at) {
				oldest, at = r, t
			}
		}
		if oldest == nil {
			c.Close()
			return nil
		}
		l.forget(oldest)
		oldest.Conn.Close() // its server goroutine sees the error and ends
	}
	cc.reserve = true
	l.reserved[cc] = time.Now()
	l.fresh[cc] = true
	c.SetDeadline(time.Now().Add(reserveDeadline))
	return cc
}

// connState notes when a reserve connection starts a request: it is no
// longer evictable.
func (l *capListener) connState(c net.Conn, st http.ConnState) {
	cc, ok := c.(*capConn)
	if !ok || !cc.reserve || st != http.StateActive {
		return
	}
	l.mu.Lock()
	delete(l.fresh, cc)
	l.mu.Unlock()
}

type reserveKey struct{}

// connContext marks the requests of reserve connections.
func (l *capListener) connContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*capConn); ok && cc.reserve {
		return context.WithValue(ctx, reserveKey{}, true)
	}
	return ctx
}

// counts returns the open normal and reserve connections.
func (l *capListener) counts() (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, len(l.reserved)
}

// reserveOnly answers a reserve connection's requests other than the cheap
// reads with 503, and closes every reserve connection after its response.
func (s *Server) reserveOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(reserveKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		cheap := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			(r.URL.Path == "/healthz" || r.URL.Path == "/log/checkpoint" || r.URL.Path == "/metrics")
		if !cheap {
			w.Header().Set("Retry-After", "1")
			httpapi.WriteError(w, "the server is at its connection limit; retry later", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
