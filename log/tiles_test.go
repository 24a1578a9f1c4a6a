package log_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
)

func TestTilePath(t *testing.T) {
	for _, c := range []struct {
		path string
		want log.TilePath
	}{
		{"0/000", log.TilePath{Level: 0, Index: 0, Width: 256}},
		{"1/x001/x234/067", log.TilePath{Level: 1, Index: 1234067, Width: 256}},
		{"2/005.p/7", log.TilePath{Level: 2, Index: 5, Width: 7}},
		{"entries/x001/000.p/255", log.TilePath{Entries: true, Index: 1000, Width: 255}},
		{"63/x018/x446/x744/x073/x709/x551/615", log.TilePath{Level: 63, Index: 18446744073709551615, Width: 256}},
	} {
		got, err := log.ParseTilePath(c.path)
		if err != nil || got != c.want {
			t.Errorf("ParseTilePath(%q) = %+v, %v, want %+v", c.path, got, err, c.want)
		}
		if got.String() != c.path {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), c.path)
		}
	}
	for _, bad := range []string{"", "0", "64/000", "01/000", "-1/000", "0/00", "0/0000", "0/x000/001", "0/001/002",
		"0/x1/001", "0/000.p/0", "0/000.p/256", "0/000.p/07", "0/000.p", "0/000.q/5", "entries/abc",
		"0/x018/x446/x744/x073/x709/x551/616", "0/x001/x002/x003/x004/x005/x006/x007/008"} {
		if _, err := log.ParseTilePath(bad); !errors.Is(err, log.ErrBadTilePath) {
			t.Errorf("ParseTilePath(%q) = %v, want ErrBadTilePath", bad, err)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"0/000", "1/x001/x234/067", "2/005.p/7", "entries/x001/000.p/255"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := log.ParseTilePath(s)
		if err != nil {
			return
		}
		if tp.String() != s {
			t.Fatalf("ParseTilePath(%q).String() = %q", s, tp.String())
		}
	})
}

// TestReadTile checks tiles against the stored nodes and entry bundles
// against the entries, for full and partial tiles at levels 0 and 1.
func TestReadTile(t *testing.T) {
	k := newKey(t)
	s := log.NewMemStore()
	l := openLog(t, s, k, nil)
	const n = 256*256 + 44
	var batch [][]byte
	for i := 0; i < n; i++ {
		batch = append(batch, entry(i))
	}
	addAll(t, l, batch)
	leaf := func(i uint64) []byte { e, _ := l.Entry(i); return log.LeafHash(e) }

	full, err := l.ReadTile(log.TilePath{Level: 0, Index: 1, Width: 256})
	if err != nil || len(full) != 256*32 {
		t.Fatalf("ReadTile(0/001) = %d bytes, %v", len(full), err)
	}
	if !bytes.Equal(full[:32], leaf(256)) || !bytes.Equal(full[255*32:], leaf(511)) {
		t.Error("level-0 tile does not hold the leaf hashes")
	}
	part, err := l.ReadTile(log.TilePath{Level: 0, Index: 256, Width: 44})
	if err != nil || !bytes.Equal(part[43*32:], leaf(256*256+43)) {
		t.Errorf("ReadTile(0/256.p/44) = %v", err)
	}
	up, err := l.ReadTile(log.TilePath{Level: 1, Index: 0, Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Nodes([]compact.NodeID{compact.NewNodeID(8, 3)})
	if !bytes.Equal(up[3*32:4*32], want[0]) {
		t.Error("level-1 tile does not hold the level-8 subtree hashes")
	}
	b, err := l.ReadTile(log.TilePath{Entries: true, Index: 256, Width: 2})
	if err != nil {
		t.Fatal(err)
	}
	e0, _ := l.Entry(256 * 256)
	e1, _ := l.Entry(256*256 + 1)
	wantBundle := binary.BigEndian.AppendUint16(nil, uint16(len(e0)))
	wantBundle = append(wantBundle, e0...)
	wantBundle = binary.BigEndian.AppendUint16(wantBundle, uint16(len(e1)))
	wantBundle = append(wantBundle, e1...)
	if !bytes.Equal(b, wantBundle) {
		t.Errorf("entry bundle = %q, want %q", b, wantBundle)
	}
	for _, tp := range []log.TilePath{
		{Level: 0, Index: 256, Width: 256}, // only partial
		{Level: 0, Index: 256, Width: 45},  // past the end
		{Level: 1, Index: 1, Width: 1},     // level 1 holds 256 hashes only
		{Level: 2, Index: 0, Width: 1},     // the one complete 2^16-leaf subtree
		{Level: 40, Index: 0, Width: 1},    // far too high
		{Entries: true, Index: 257, Width: 1},
		{Level: 0, Index: ^uint64(0), Width: 1},
	} {
		if tp.Level == 2 {
			if _, err := l.ReadTile(tp); err != nil {
				t.Errorf("ReadTile(%v) = %v, want the one level-16 hash", tp, err)
			}
			continue
		}
		if _, err := l.ReadTile(tp); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("ReadTile(%v) = %v, want ErrNotFound", tp, err)
		}
	}
}

// addAll adds entries from many goroutines, so they go in large batches.
func addAll(t testing.TB, l *log.Log, entries [][]byte) {
	t.Helper()
	errc := make(chan error, len(entries))
	sem := make(chan struct{}, 512)
	for _, e := range entries {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := l.Add(context.Background(), e)
			errc <- err
		}()
	}
	for range entries {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
