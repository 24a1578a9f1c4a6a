package tlog

import "errors"

// MaxEntrySize is the largest entry a log can hold: a tlog-tiles entry
// bundle (https://c2sp.org/tlog-tiles) prefixes each entry with a 16-bit
// length. The log refuses larger entries and evident.ParseEntry refuses
// larger canonical entries; both name this one constant.
const MaxEntrySize = 65535

// ErrInvalidEntry is wrapped by every refusal of an entry: by the entry
// format (evident.ParseEntry) and by a log's validator (log.Log.Add). One
// sentinel, so that a caller branches on one name whichever refused.
var ErrInvalidEntry = errors.New("invalid entry")
