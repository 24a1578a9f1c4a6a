package pgstore

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/transparency-dev/merkle/compact"
)

// heapAfter returns the bytes the heap holds after fill, with what fill
// made still reachable through keep.
func heapAfter(fill func() any) (uint64, any) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep := fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc), keep
}

// fullAt returns a number of puts after which a genCache of bound and
// cost per value is at its fullest: both generations at half the bound,
// the next put dropping the older one.
func fullAt(bound, cost int) int {
	perHalf := (bound/2 + cost - 1) / cost
	return 4 * perHalf
}

// The tile cache's 128 MiB is what it really holds, counted in bytes of
// memory, maps included: filled until both its generations are full, a
// store's tile cache never takes more of the heap than
// tileCacheBytes.
func TestTileCacheHoldsAtMostItsBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 400 MiB")
	}
	row := make([]byte, tileBytes)
	used, keep := heapAfter(func() any {
		c := newTileCache(tileCacheBytes)
		for i := 0; i < fullAt(tileCacheBytes, tileCost); i++ {
			c.cacheRows([]int16{0}, []int64{int64(i)}, [][]byte{row})
		}
		return c
	})
	runtime.KeepAlive(keep)
	t.Logf("tile cache: %d bytes held, bound %d", used, tileCacheBytes)
	if used > tileCacheBytes {
		t.Errorf("the tile cache holds %d bytes, over its bound of %d", used, tileCacheBytes)
	}
}

// The node cache's bound is in bytes too: filled the same way, it takes no more
// of the heap than nodeCacheBytes.
func TestNodeCacheHoldsAtMostItsBytes(t *testing.T) {
	h := make([]byte, 32)
	used, keep := heapAfter(func() any {
		c := newNodeCache(nodeCacheBytes)
		for i := 0; i < fullAt(nodeCacheBytes, nodeCost); i++ {
			c.put([]compact.NodeID{compact.NewNodeID(0, uint64(i))}, [][]byte{h})
		}
		return c
	})
	runtime.KeepAlive(keep)
	t.Logf("node cache: %d bytes held, bound %d", used, nodeCacheBytes)
	if used > nodeCacheBytes {
		t.Errorf("the node cache holds %d bytes, over its bound of %d", used, nodeCacheBytes)
	}
}

// The entry cache's bound is in bytes of heap too, whatever the entries'
// size: filled until both its generations are full, it takes no more than
// entryCacheBytes.
func TestEntryCacheHoldsAtMostItsBytes(t *testing.T) {
	for _, size := range []int{1, 100, 300, 1000, 5000, 100000} {
		e := make([]byte, size)
		used, keep := heapAfter(func() any {
			c := newEntryCache()
			for i := 0; i < fullAt(entryCacheBytes, entryCost(e)); i++ {
				c.put(uint64(i), bytes.Clone(e))
			}
			return c
		})
		runtime.KeepAlive(keep)
		t.Logf("entries of %d bytes: %d bytes held, bound %d", size, used, entryCacheBytes)
		if used > entryCacheBytes {
			t.Errorf("entries of %d bytes: the entry cache holds %d bytes, over its bound of %d", size, used, entryCacheBytes)
		}
	}
}
