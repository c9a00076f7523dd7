package arena

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Epoch-based reclamation: freeing objects that other goroutines may
// still be reading, without making the readers lock.
//
// A global epoch counter only grows. A reader announces the epoch it saw
// (Enter) before it reads shared objects and withdraws it (Exit) after. A
// writer first unlinks an object, so no new reader can reach it, and then
// retires it, tagged with the epoch at that moment, R. The epoch advances
// from G to G+1 only when every reader inside has announced G. A reader
// that can still see the object entered before the unlink, so it announced
// at most R, and while it stays inside the epoch cannot pass R+1. Hence
// once the epoch reaches R+2 no reader can hold the object, and it is
// freed. A reader that loads the epoch and is delayed before announcing it
// announces an old epoch, which only holds the advance back: announcing
// happens before the reader reads anything, and Go's atomics are
// sequentially consistent.
//
// Retired objects wait in three lists, by retire epoch modulo 3: when the
// epoch goes to G+1, the list of G-1 is what may go, and it is detached in
// one step under mu and freed after mu is released.

// epochBatch is how many retired objects wait before Retire tries to
// advance the epoch: one advance scans every reader, and an object needs
// two, so this keeps the scans rare (a few per hundred retirements) while
// holding back at most a few batches of memory when readers keep up.
const epochBatch = 64

// Epoch frees retired objects of a Heap once no reader can see them (see
// the package documentation, "Freeing what other goroutines may still be
// reading"). Readers, one EpochReader per goroutine, bracket their reads
// with Enter and Exit: two atomic stores and a load, no lock. Writers
// unlink an object so that no new reader can find it, then Retire it.
// Retire, Reclaim and the reader registry are safe for concurrent use.
type Epoch struct {
	h      *Heap
	global atomic.Uint64 // the epoch; advanced only under mu

	// mu guards readers and retired, and serialises advances. It is never
	// held while objects are freed: advance detaches a list under it and
	// frees the list after.
	mu      sync.Mutex
	readers map[*EpochReader]struct{}
	retired [3][]unsafe.Pointer // by retire epoch % 3
	pending int                 // objects in retired
}

// EpochReader is one goroutine's announcement to an Epoch. Its methods
// must not be called concurrently (like a Cache, it belongs to one
// goroutine at a time).
type EpochReader struct {
	e *Epoch
	// state is 0 outside, epoch<<1|1 inside. Written by the owner, read
	// by advancing writers.
	state atomic.Uint64
	_     [56]byte // one cache line per reader: writers scan, owners store
}

// NewEpoch returns an Epoch that frees retired objects through h.
func (h *Heap) NewEpoch() *Epoch {
	return &Epoch{h: h, readers: make(map[*EpochReader]struct{})}
}

// NewReader registers a reader. Close it when its goroutine is done, or
// it holds the epoch back while it is inside, and takes a map entry.
func (e *Epoch) NewReader() *EpochReader {
	r := &EpochReader{e: e}
	e.mu.Lock()
	e.readers[r] = struct{}{}
	e.mu.Unlock()
	return r
}

// Enter starts a read: objects reachable from now until Exit are not
// freed. Enter panics inside a read already (reads do not nest).
func (r *EpochReader) Enter() {
	if r.state.Load()&1 != 0 {
		panic("offheap: EpochReader.Enter inside a read: Exit first")
	}
	r.state.Store(r.e.global.Load()<<1 | 1)
}

// Exit ends a read: the objects it saw may be freed after it.
func (r *EpochReader) Exit() { r.state.Store(0) }

// Close unregisters the reader (it must be outside a read).
func (r *EpochReader) Close() {
	r.state.Store(0)
	r.e.mu.Lock()
	delete(r.e.readers, r)
	r.e.mu.Unlock()
}

// Retire frees p, an object of the Epoch's Heap, once every reader that
// may have seen it has left: call it after unlinking p from everything
// readers reach. Retire itself may free objects retired earlier, and
// returns the first error their Free reported (an object retired twice,
// or not an object: ErrDoubleFree, ErrInvalidPointer; ErrClosed after
// Close); p itself is only checked when it is freed. nil is ignored.
func (e *Epoch) Retire(p unsafe.Pointer) error {
	if p == nil {
		return nil
	}
	e.mu.Lock()
	g := e.global.Load()
	e.retired[g%3] = append(e.retired[g%3], p)
	e.pending++
	due := e.pending >= epochBatch
	e.mu.Unlock()
	if !due {
		return nil
	}
	_, err := e.advance()
	return err
}

// Reclaim tries to advance the epoch twice, freeing everything retired
// before the call if no reader inside a read holds it back, and returns
// how many objects it freed and the first error a Free reported. Retire
// reclaims on its own every few dozen objects; Reclaim is for draining
// (at shutdown, or in a test).
func (e *Epoch) Reclaim() (int, error) {
	var n int
	var errs []error
	for range 2 {
		k, err := e.advance()
		n += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// Pending returns how many retired objects are not freed yet.
func (e *Epoch) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending
}

// advance moves the epoch from G to G+1 if every reader inside has
// announced G, and frees the objects retired at G-1.
func (e *Epoch) advance() (int, error) {
	e.mu.Lock()
	g := e.global.Load()
	for r := range e.readers {
		if s := r.state.Load(); s&1 != 0 && s>>1 != g {
			e.mu.Unlock()
			return 0, nil // a reader is still in an older epoch
		}
	}
	free := e.retired[(g+2)%3] // retired at g-1
	e.retired[(g+2)%3] = nil
	e.pending -= len(free)
	e.global.Store(g + 1)
	e.mu.Unlock()
	var first error
	for _, p := range free {
		if err := e.h.Free(p); err != nil && first == nil {
			first = fmt.Errorf("offheap: freeing a retired object: %w", err)
		}
	}
	return len(free), first
}
