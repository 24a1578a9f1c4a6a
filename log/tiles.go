package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/compact"
)

// C2SP tlog-tiles (https://c2sp.org/tlog-tiles) geometry: tiles are 8 levels
// high, so a full tile holds 256 hashes (or 256 entries).
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	// maxTileLevel: tree levels above 63 do not exist for uint64 sizes.
	maxTileLevel = 63
)

// ErrBadTilePath wraps every error from [ParseTilePath].
var ErrBadTilePath = errors.New("bad tile path")

// TilePath names one tile or entry bundle.
type TilePath struct {
	// Entries selects the entry bundle at Index; otherwise the hash tile at
	// Level and Index.
	Entries bool
	Level   int
	Index   uint64
	// Width is the number of hashes or entries: TileWidth for a full tile,
	// 1 to 255 for a partial one.
	Width int
}

// String returns the path below "tile/", e.g. "0/x001/234.p/7" or "entries/000".
func (t TilePath) String() string {
	var b strings.Builder
	if t.Entries {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	n := fmt.Sprintf("%03d", t.Index%1000)
	for rest := t.Index / 1000; rest > 0; rest /= 1000 {
		n = fmt.Sprintf("x%03d/%s", rest%1000, n)
	}
	b.WriteByte('/')
	b.WriteString(n)
	if t.Width < TileWidth {
		fmt.Fprintf(&b, ".p/%d", t.Width)
	}
	return b.String()
}

// ParseTilePath parses a path below "tile/" strictly, as [TilePath.String]
// writes it: level 0–63 (or "entries") without leading zeros, the index in
// 3-digit elements all but the last prefixed "x" and no leading "x000", and
// an optional ".p/<W>" with W from 1 to 255.
func ParseTilePath(p string) (TilePath, error) {
	bad := func(format string, args ...any) (TilePath, error) {
		return TilePath{}, fmt.Errorf("%w %q: "+format, append([]any{ErrBadTilePath, p}, args...)...)
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 10 {
		return bad("wrong number of elements")
	}
	t := TilePath{Width: TileWidth}
	if parts[0] == "entries" {
		t.Entries = true
	} else {
		lvl, ok := canonicalDecimal(parts[0], maxTileLevel)
		if !ok {
			return bad("level must be 0 to %d", maxTileLevel)
		}
		t.Level = int(lvl)
	}
	parts = parts[1:]
	if last := parts[len(parts)-1]; len(parts) >= 2 && strings.HasSuffix(parts[len(parts)-2], ".p") {
		w, ok := canonicalDecimal(last, TileWidth-1)
		if !ok || w == 0 {
			return bad("partial width must be 1 to %d", TileWidth-1)
		}
		t.Width = int(w)
		parts = parts[:len(parts)-1]
		parts[len(parts)-1] = strings.TrimSuffix(parts[len(parts)-1], ".p")
	}
	if len(parts) > 7 {
		return bad("index too large")
	}
	for i, e := range parts {
		if i < len(parts)-1 {
			if !strings.HasPrefix(e, "x") {
				return bad("index element %q must start with x", e)
			}
			e = e[1:]
			if i == 0 && e == "000" {
				return bad("index has a leading x000")
			}
		}
		if len(e) != 3 {
			return bad("index element %q must have 3 digits", e)
		}
		for j := 0; j < 3; j++ {
			if e[j] < '0' || e[j] > '9' {
				return bad("index element %q must have 3 digits", e)
			}
		}
		d := uint64(e[0]-'0')*100 + uint64(e[1]-'0')*10 + uint64(e[2]-'0')
		if t.Index > (^uint64(0)-d)/1000 {
			return bad("index overflows 64 bits")
		}
		t.Index = t.Index*1000 + d
	}
	return t, nil
}

// canonicalDecimal parses a decimal with no sign and no leading zeros, at most max.
func canonicalDecimal(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= max
}

// ReadTile returns the tile or entry bundle t as tlog-tiles defines it: the
// concatenated 32-byte hashes of tree level 8·Level, or each entry prefixed by
// its big-endian 16-bit length. It returns ErrNotFound unless the current tree
// holds all Width hashes or entries.
func (l *Log) ReadTile(t TilePath) ([]byte, error) {
	size := l.head.Load().Size
	if t.Width < 1 || t.Width > TileWidth {
		return nil, fmt.Errorf("%w: width %d", ErrBadTilePath, t.Width)
	}
	if t.Index > (^uint64(0))>>TileHeight {
		return nil, fmt.Errorf("tile %s: %w", t, ErrNotFound)
	}
	first := t.Index << TileHeight
	avail := size
	if !t.Entries {
		avail = size >> (TileHeight * uint(t.Level))
		if t.Level*TileHeight >= 64 {
			avail = 0
		}
	}
	if first >= avail || uint64(t.Width) > avail-first {
		return nil, fmt.Errorf("tile %s at tree size %d: %w", t, size, ErrNotFound)
	}
	if t.Entries {
		entries, err := l.store.Entries(first, t.Width)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, e := range entries {
			n += 2 + len(e)
		}
		out := make([]byte, 0, n)
		for _, e := range entries {
			out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
			out = append(out, e...)
		}
		return out, nil
	}
	ids := make([]compact.NodeID, t.Width)
	for i := range ids {
		ids[i] = compact.NewNodeID(uint(t.Level*TileHeight), first+uint64(i))
	}
	hashes, err := l.store.Nodes(ids)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, HashSize*len(hashes))
	for _, h := range hashes {
		out = append(out, h...)
	}
	return out, nil
}
