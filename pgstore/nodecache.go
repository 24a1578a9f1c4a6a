package pgstore

import (
	"sync"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
)

// What a frontend keeps in memory of the log (see [LogStore]): node hashes
// and entries this frontend committed or read. Both never change once
// committed — the tree only grows, and a commit applies whole or not at
// all — so a cached value is as good as a read; only values of commits
// that succeeded, and values read back from the database, are cached.

// nodeCacheBytes bounds the memory the node hashes a store caches take
// (16 MiB): at nodeCost each, the nodes of the last 65,536 leaves (2 per
// leaf) or every proof path to them many times over.
const nodeCacheBytes = 16 << 20

// nodeCost is what a cached node takes of the heap, counted against
// nodeCacheBytes: its 16-byte key and 32-byte hash and the map's share,
// which is about as much again and doubles while a map grows
// (TestNodeCacheHoldsAtMostItsBytes measures it).
const nodeCost = 128

// entryCacheBytes bounds the entries a store caches (8 MiB): the entries
// just appended, which a link upload naming them reads next.
const entryCacheBytes = 8 << 20

// maxCachedRead is the most entries one Entries call looks for in the
// cache; longer reads (entry bundles) go to the database.
const maxCachedRead = 16

// genCache is a bounded map in two generations: new values go into the
// current one, and when its cost reaches half the bound the older one is
// dropped and the current one becomes the older one. A hit in the older
// generation moves the value to the current one, so values in use survive.
// It never holds more than the bound (plus one value's cost), in whatever
// unit cost counts: the caches of a store count bytes of memory.
type genCache[K comparable, V any] struct {
	mu       sync.Mutex
	cur, old map[K]V
	curCost  int
	half     int
	cost     func(V) int
}

func newGenCache[K comparable, V any](bound int, cost func(V) int) *genCache[K, V] {
	return &genCache[K, V]{cur: make(map[K]V), half: max(bound/2, 1), cost: cost}
}

func (c *genCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(k)
}

// getEach calls found for each of keys the cache holds, and missing for
// the others, under one lock: a proof's twenty nodes take the cache's
// mutex once, not twenty times.
func (c *genCache[K, V]) getEach(keys []K, found func(i int, v V), missing func(i int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if v, ok := c.getLocked(k); ok {
			found(i, v)
		} else {
			missing(i)
		}
	}
}

func (c *genCache[K, V]) getLocked(k K) (V, bool) {
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *genCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *genCache[K, V]) putLocked(k K, v V) {
	if c.curCost >= c.half {
		c.old, c.cur, c.curCost = c.cur, make(map[K]V), 0
	}
	if _, ok := c.cur[k]; !ok {
		c.curCost += c.cost(v)
	}
	c.cur[k] = v
}

// len is the number of values held.
func (c *genCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

// nodeCache holds node hashes.
type nodeCache struct {
	c *genCache[compact.NodeID, [log.HashSize]byte]
}

// newNodeCache returns a node cache that holds at most bytes of them.
func newNodeCache(bytes int) *nodeCache {
	return &nodeCache{newGenCache[compact.NodeID](bytes, func([log.HashSize]byte) int { return nodeCost })}
}

// get fills out[i] for each ids[i] in the cache and returns the indexes of
// those that are not.
func (n *nodeCache) get(ids []compact.NodeID, out [][]byte) (missing []int) {
	buf := make([]byte, 0, len(ids)*log.HashSize)
	n.c.getEach(ids, func(i int, h [log.HashSize]byte) {
		buf = append(buf, h[:]...)
		out[i] = buf[len(buf)-log.HashSize:]
	}, func(i int) { missing = append(missing, i) })
	return missing
}

// put caches hashes[i] as the hash of ids[i]; hashes of another length
// are not cached.
func (n *nodeCache) put(ids []compact.NodeID, hashes [][]byte) {
	for i, id := range ids {
		if len(hashes[i]) == log.HashSize {
			n.c.put(id, [log.HashSize]byte(hashes[i]))
		}
	}
}

// entryCost is what an entry takes of the heap, counted against
// entryCacheBytes: its bytes, rounded up by Go's allocator to a size class
// (at most an eighth more), and its share of the cache's maps
// (TestEntryCacheHoldsAtMostItsBytes measures it).
func entryCost(e []byte) int { return len(e) + len(e)/8 + 128 }

func newEntryCache() *genCache[uint64, []byte] {
	return newGenCache[uint64](entryCacheBytes, entryCost)
}
