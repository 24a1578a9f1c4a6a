package pgstore

import (
	"sync"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
)

// nodeCache keeps node hashes this frontend committed or read, so that
// the inclusion proof returned with each append — whose nodes the
// sequencer has just written — and proofs near the top of the tree cost
// no round trip. A node is never rewritten once committed (the tree only
// grows, and a commit either applies whole or not at all), so a cached
// hash is as good as a read; only hashes of commits that succeeded, and
// hashes read back from the database, are cached.
//
// It holds at most size nodes in two generations: new hashes go into the
// current one, and when it is full the older one is dropped and the
// current one becomes the older one. A hit in the older generation moves
// the hash to the current one, so nodes in use survive.
type nodeCache struct {
	mu       sync.Mutex
	cur, old map[compact.NodeID][log.HashSize]byte
	half     int
}

// nodeCacheSize is the most nodes a store caches: about 12 MiB, the
// nodes of the last 32,768 leaves (2 per leaf) and every proof path to
// them many times over.
const nodeCacheSize = 1 << 17

func newNodeCache(size int) *nodeCache {
	half := max(size/2, 1)
	return &nodeCache{cur: make(map[compact.NodeID][log.HashSize]byte, half), half: half}
}

// get fills out[i] for each ids[i] in the cache and returns the indexes of
// those that are not.
func (c *nodeCache) get(ids []compact.NodeID, out [][]byte) (missing []int) {
	buf := make([]byte, 0, len(ids)*log.HashSize)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		h, ok := c.cur[id]
		if !ok {
			if h, ok = c.old[id]; ok {
				c.putLocked(id, h)
			}
		}
		if !ok {
			missing = append(missing, i)
			continue
		}
		buf = append(buf, h[:]...)
		out[i] = buf[len(buf)-log.HashSize:]
	}
	return missing
}

// put caches hashes[i] as the hash of ids[i]; hashes of another length
// are not cached.
func (c *nodeCache) put(ids []compact.NodeID, hashes [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if len(hashes[i]) == log.HashSize {
			c.putLocked(id, [log.HashSize]byte(hashes[i]))
		}
	}
}

func (c *nodeCache) putLocked(id compact.NodeID, h [log.HashSize]byte) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[compact.NodeID][log.HashSize]byte, c.half)
	}
	c.cur[id] = h
}
