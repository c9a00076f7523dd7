package main

import (
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// goStore keeps keys in ordinary Go maps: map[string][]byte, sharded. It
// is the baseline: every key and value is a Go heap object that the
// garbage collector scans and marks on every cycle.
type goStore struct {
	sh       sharder
	shards   []goShard
	sizeHint int // per shard, for Flush
}

// goShard: mu guards m and closed; Get and Has take it shared (Go maps
// allow concurrent readers), writers exclusively. n and bytes are written
// under the exclusive lock and read without it (INFO, DBSIZE), hence
// atomics.
type goShard struct {
	mu     sync.RWMutex
	m      map[string][]byte
	closed bool
	n      atomic.Int64
	bytes  atomic.Int64
	_      [cacheLine]byte
}

func newGoStore(shards, sizeHint int) *goStore {
	sh, n := newSharder(shards)
	s := &goStore{sh: sh, shards: make([]goShard, n), sizeHint: sizeHint / n}
	for i := range s.shards {
		// Sizing the maps up front means no shard grows while clients
		// wait (Go's maps grow incrementally anyway, a table at a time).
		s.shards[i].m = make(map[string][]byte, s.sizeHint)
	}
	return s
}

func (s *goStore) Kind() string { return "goheap" }

func (s *goStore) shard(key []byte) *goShard { return &s.shards[s.sh.shard(key)] }

func (s *goStore) Get(dst, key []byte) ([]byte, bool, error) {
	sh := s.shard(key)
	sh.mu.RLock()
	if sh.closed {
		sh.mu.RUnlock()
		return dst, false, ErrClosed
	}
	v, ok := sh.m[string(key)]
	sh.mu.RUnlock()
	// Values are never modified in place (Set stores a fresh copy), so v
	// can be copied out after the lock is dropped.
	return append(dst, v...), ok, nil
}

func (s *goStore) Set(key, value []byte) error {
	// Copy before locking: the allocation may assist the GC.
	v := append([]byte(nil), value...)
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return ErrClosed
	}
	old, ok := sh.m[string(key)]
	if ok {
		sh.bytes.Add(int64(len(v) - len(old)))
	} else {
		sh.n.Add(1)
		sh.bytes.Add(int64(len(key) + len(v)))
	}
	sh.m[string(key)] = v
	return nil
}

func (s *goStore) Delete(key []byte) (bool, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false, ErrClosed
	}
	old, ok := sh.m[string(key)]
	if ok {
		delete(sh.m, string(key))
		sh.n.Add(-1)
		sh.bytes.Add(-int64(len(key) + len(old)))
	}
	return ok, nil
}

func (s *goStore) Has(key []byte) (bool, error) {
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.closed {
		return false, ErrClosed
	}
	_, ok := sh.m[string(key)]
	return ok, nil
}

func (s *goStore) Len() int {
	var n int64
	for i := range s.shards {
		n += s.shards[i].n.Load()
	}
	return int(n)
}

func (s *goStore) DataBytes() int64 {
	var n int64
	for i := range s.shards {
		n += s.shards[i].bytes.Load()
	}
	return n
}

// UsedBytes is the Go heap's live objects as of the last GC plus what was
// allocated since (the runtime's own count, read without stopping the
// world): the store has no finer view of its own.
func (s *goStore) UsedBytes() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

func (s *goStore) Flush() error {
	for i := range s.shards {
		sh := &s.shards[i]
		// A fresh map is swapped in: the old one becomes garbage and the
		// GC frees it later, off the lock.
		fresh := make(map[string][]byte, s.sizeHint)
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			return ErrClosed
		}
		sh.m = fresh
		sh.n.Store(0)
		sh.bytes.Store(0)
		sh.mu.Unlock()
	}
	return nil
}

func (s *goStore) Info(w *infoWriter) {
	w.section("Store")
	w.str("store", s.Kind())
	w.int("shards", len(s.shards))
}

func (s *goStore) Close() error {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.m = nil
		sh.n.Store(0)
		sh.bytes.Store(0)
		sh.mu.Unlock()
	}
	return nil
}
