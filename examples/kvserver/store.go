package main

import (
	"errors"
	"hash/maphash"
)

// Store is what the server keeps its keys in. Both implementations are
// sharded: a key's shard is picked by hash, and each shard is one map
// behind its own mutex, so clients on different shards never wait for each
// other and no lock covers more than one shard's map.
//
// Every method is safe for concurrent use. After Close every method
// returns ErrClosed (or zero values); Close waits for calls in progress on
// a shard by taking that shard's lock.
type Store interface {
	// Kind is "goheap" or "offheap".
	Kind() string
	// Get appends the value of key to dst.
	Get(dst, key []byte) ([]byte, bool, error)
	// Set stores a copy of key and value.
	Set(key, value []byte) error
	// Delete removes key and says whether it was there.
	Delete(key []byte) (bool, error)
	// Has says whether key is there.
	Has(key []byte) (bool, error)
	// Len is the number of keys.
	Len() int
	// DataBytes is the sum of len(key)+len(value) over the keys held: what
	// the data itself needs, without any overhead of the store.
	DataBytes() int64
	// UsedBytes is the memory the store itself says it holds for its data
	// (Go heap in use, or off-heap bytes in spans).
	UsedBytes() uint64
	// Flush removes every key.
	Flush() error
	// Info appends the store's own INFO section.
	Info(w *infoWriter)
	// Close releases everything; the store cannot be used afterwards.
	Close() error
}

// ErrClosed is returned by a Store's methods after Close.
var ErrClosed = errors.New("store closed")

// defaultShards: enough shards that 2-16 cores' worth of clients rarely
// meet on one lock, and that a shard's map stays small (a few MiB at
// millions of keys) so nothing done to one shard takes long.
const defaultShards = 64

// cacheLine pads shard structs to a multiple of a cache line so that two
// shards' locks and counters never share a line.
const cacheLine = 64

// sharder picks shards. It is immutable after newSharder.
type sharder struct {
	seed maphash.Seed
	mask uint64
}

// newSharder rounds n up to a power of two so that a shard is picked with a
// mask instead of a division.
func newSharder(n int) (sharder, int) {
	if n < 1 {
		n = 1
	}
	p := 1
	for p < n {
		p <<= 1
	}
	return sharder{seed: maphash.MakeSeed(), mask: uint64(p - 1)}, p
}

func (s sharder) shard(key []byte) int {
	// The top bits: the maps hash with their own seeds, but taking the
	// high bits keeps the shard choice independent of any low-bit use.
	return int((maphash.Bytes(s.seed, key) >> 32) & s.mask)
}
