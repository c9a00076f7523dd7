package main

import (
	"errors"
	"fmt"
	"sync"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/container"
)

// offStore keeps keys off the Go heap: one container.BytesMap per shard,
// all on one arena.Heap. The GC sees 64 small structs, not millions of
// keys and values, so its cost does not grow with the data.
type offStore struct {
	h        *arena.Heap
	sh       sharder
	shards   []offShard
	sizeHint int // per shard, for Flush
	// entryHeader is the bytes a BytesMap entry takes besides its key and
	// value (MapStats.EntryBytes counts header + key + value per entry),
	// measured once by newOffStore. With it the data bytes come from the
	// maps' own counts, so Set and Delete need no extra lookup to learn
	// the size of the value they replace or remove.
	entryHeader uint64

	// defrag counts the active defragger's work (defrag.go); defragStop
	// and defragDone are set by startDefrag before serving (nil: no
	// defragger), then only read: Close closes defragStop and waits for
	// defragDone.
	defrag     defragStats
	defragStop chan struct{}
	defragDone chan struct{}

	// final is the heap's Stats taken by Close after every map was closed
	// and before the heap was: what the e2e test checks for balance.
	// Written once by Close, read after it returns.
	final arena.Stats
}

// offShard: mu guards m and closed. Get, Has and the counts (the map's
// O(1) MemStats) take it shared (a BytesMap's read methods may run
// together while no writer does); Set, Delete, Flush and Close take it
// exclusively.
type offShard struct {
	mu     sync.RWMutex
	m      *container.BytesMap
	closed bool
	_      [cacheLine]byte
}

// offheapConfig is the Heap configuration the server uses. Each choice:
//   - Reserve: the default 64 GiB of address space (free until used) is
//     room for any cache this server is meant for.
//   - MemoryLimit: -memlimit, a hard cap: SET fails with an OOM error
//     rather than letting the process grow without bound.
//   - Decommit: MADV_DONTNEED (the default), so deleted data leaves RSS
//     as soon as the scavenger returns it, visibly in INFO and top
//     (MADV_FREE would leave it counted until the kernel is short).
//   - Scavenger: the defaults: memory free for 1 s goes back to the
//     kernel, keeping 64 MiB + 10 % of the in-use bytes for reuse, so a
//     cache that deletes and refills at a steady rate does not fault the
//     same pages in and out. -retain sets the 64 MiB part (retain below:
//     < 0 the default, 0 none): a server that wants RSS to follow its
//     data closely after mass deletes sets it low.
//   - HugePages: off. With 4 KiB pages memory freed inside a 2 MiB range
//     can go back to the kernel; THP would keep whole huge pages resident
//     and khugepaged's collapsing adds pauses of its own.
//   - Debug, GuardSampleRate, ProfileRate: off; they cost time on every
//     allocation.
func offheapConfig(limit, retain int64) arena.Config {
	cfg := arena.Config{MemoryLimit: limit, Name: "kvserver"}
	switch {
	case retain == 0:
		cfg.RetainBytes = -1 // arena: negative is none, 0 the default
	case retain > 0:
		cfg.RetainBytes = retain
	}
	return cfg
}

// newOffStore makes the store with the scavenger's default retention.
func newOffStore(shards, sizeHint int, limit int64) (*offStore, error) {
	return newOffStoreRetain(shards, sizeHint, limit, -1)
}

// newOffStoreRetain is newOffStore keeping retain bytes of free memory
// for reuse (see offheapConfig).
func newOffStoreRetain(shards, sizeHint int, limit, retain int64) (*offStore, error) {
	h, err := arena.NewHeap(offheapConfig(limit, retain))
	if err != nil {
		return nil, err
	}
	sh, n := newSharder(shards)
	s := &offStore{h: h, sh: sh, shards: make([]offShard, n), sizeHint: sizeHint / n}
	if s.entryHeader, err = measureEntryHeader(h); err != nil {
		return nil, errors.Join(err, h.Close())
	}
	for i := range s.shards {
		// Sized up front: a BytesMap grows incrementally (a few entries
		// moved per write), but a presized one never needs to.
		m, err := container.NewBytesMap(h, s.sizeHint)
		if err != nil {
			for j := 0; j < i; j++ {
				s.shards[j].m.Close()
			}
			return nil, errors.Join(err, h.Close())
		}
		s.shards[i].m = m
	}
	return s, nil
}

// measureEntryHeader stores one entry with a 1-byte key and value and
// returns what its MapStats.EntryBytes says beyond those 2 bytes.
func measureEntryHeader(h *arena.Heap) (uint64, error) {
	m, err := container.NewBytesMap(h, 1)
	if err != nil {
		return 0, err
	}
	if err := m.Set([]byte("k"), []byte("v")); err != nil {
		return 0, errors.Join(err, m.Close())
	}
	st := m.MemStats()
	if err := m.Close(); err != nil {
		return 0, err
	}
	if st.Entries != 1 || st.EntryBytes < 2 {
		return 0, fmt.Errorf("offheap: BytesMap.MemStats reports %d entries, %d entry bytes for one 2-byte entry", st.Entries, st.EntryBytes)
	}
	return st.EntryBytes - 2, nil
}

func (s *offStore) Kind() string { return "offheap" }

func (s *offStore) shard(key []byte) *offShard { return &s.shards[s.sh.shard(key)] }

func (s *offStore) Get(dst, key []byte) ([]byte, bool, error) {
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.closed {
		return dst, false, ErrClosed
	}
	// The value must be copied out under the lock: once it is dropped a
	// Set or Delete may free the entry.
	v, ok := sh.m.Get(dst, key)
	return v, ok, nil
}

func (s *offStore) Set(key, value []byte) error {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return ErrClosed
	}
	return sh.m.Set(key, value)
}

func (s *offStore) Delete(key []byte) (bool, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false, ErrClosed
	}
	return sh.m.Delete(key), nil
}

func (s *offStore) Has(key []byte) (bool, error) {
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.closed {
		return false, ErrClosed
	}
	return sh.m.Has(key), nil
}

// counts sums the maps' entries and key+value bytes (0, 0 once closed).
func (s *offStore) counts() (n int, data int64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		if !sh.closed {
			st := sh.m.MemStats()
			n += st.Entries
			data += int64(st.EntryBytes - uint64(st.Entries)*s.entryHeader)
		}
		sh.mu.RUnlock()
	}
	return n, data
}

func (s *offStore) Len() int { n, _ := s.counts(); return n }

func (s *offStore) DataBytes() int64 { _, d := s.counts(); return d }

// UsedBytes is the heap's live object bytes (by size class): entries and
// bucket tables.
func (s *offStore) UsedBytes() uint64 { return s.h.Stats().HeapAlloc }

func (s *offStore) Flush() error {
	for i := range s.shards {
		sh := &s.shards[i]
		fresh, err := container.NewBytesMap(s.h, s.sizeHint)
		if err != nil {
			return err
		}
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			fresh.Close()
			return ErrClosed
		}
		old := sh.m
		sh.m = fresh
		sh.mu.Unlock()
		// Freeing every entry of the old map takes time proportional to
		// its size: done after the lock is dropped, so clients of this
		// shard wait only for the swap.
		if err := old.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *offStore) Info(w *infoWriter) {
	w.section("Store")
	w.str("store", s.Kind())
	w.int("shards", len(s.shards))
	var ms container.MapStats
	resizing := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		if !sh.closed {
			st := sh.m.MemStats()
			ms.TableBytes += st.TableBytes
			ms.EntryBytes += st.EntryBytes
			ms.Resizes += st.Resizes
			ms.MaxMoved = max(ms.MaxMoved, st.MaxMoved)
			if st.Resizing {
				resizing++
			}
		}
		sh.mu.RUnlock()
	}
	w.u64("map_table_bytes", ms.TableBytes)
	w.u64("map_entry_bytes", ms.EntryBytes)
	w.u64("map_resizes", ms.Resizes)
	w.int("map_resizing", resizing)
	w.int("map_max_moved", ms.MaxMoved)

	st := s.h.Stats()
	w.section("Offheap")
	w.u64("offheap_reserved", st.Reserved)
	w.u64("offheap_heap_sys", st.HeapSys)
	w.u64("offheap_heap_inuse", st.HeapInuse)
	w.u64("offheap_heap_alloc", st.HeapAlloc)
	w.u64("offheap_heap_idle", st.HeapIdle)
	w.u64("offheap_heap_released", st.HeapReleased)
	w.u64("offheap_heap_objects", st.HeapObjects)
	w.u64("offheap_committed", st.Committed)
	w.u64("offheap_memory_limit", st.MemoryLimit)
	w.u64("offheap_metadata", st.Metadata)
	w.u64("offheap_largest_free_run", st.LargestFreeRun)
	w.u64("offheap_mallocs", st.Mallocs)
	w.u64("offheap_frees", st.Frees)
	w.u64("offheap_scavenge_released", st.ScavengeReleased)
	w.u64("offheap_scavenge_cycles", st.ScavengeCycles)
	w.dur("offheap_scavenge_time_seconds", st.ScavengeTime)
	w.dur("offheap_scavenge_max_lock_hold_seconds", st.ScavengeMaxLockHold)
	w.u64("offheap_scavenge_goal", st.ScavengeGoal)
	w.u64("offheap_scavenge_free_committed", st.ScavengeFreeCommitted)
	s.defragInfo(w)
}

// Close closes every map, then checks that the heap balances (no object
// left live, Verify clean), then closes the heap. A leak or a Verify
// failure is returned, after the heap is closed either way.
func (s *offStore) Close() error {
	s.stopDefrag() // it takes shard locks and steps the maps
	var errs []error
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if !sh.closed {
			sh.closed = true
			errs = append(errs, sh.m.Close())
			sh.m = nil
		}
		sh.mu.Unlock()
	}
	s.final = s.h.Stats()
	if s.final.HeapObjects != 0 {
		errs = append(errs, fmt.Errorf("offheap: %d objects (%d bytes) still live after every map was closed", s.final.HeapObjects, s.final.HeapAlloc))
	}
	if err := s.h.Verify(); err != nil {
		errs = append(errs, fmt.Errorf("offheap: Verify after closing the maps: %w", err))
	}
	errs = append(errs, s.h.Close())
	return errors.Join(errs...)
}
