//go:build invariants

package arena

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Invariant checks, compiled in only with the build tag invariants (as
// pebble does): `go test -tags invariants ./...`. invariants_off.go has
// the no-op versions, which inline away.
//
// checkedMutex records which goroutine holds it, so that
//
//   - a function named ...Locked can assert that its caller holds the
//     lock (assertHeld), and
//   - a panic raised for a failed check (raise) can assert that the
//     raising goroutine holds neither the heap lock nor a class lock
//     (doc.go: every panic a check raises is raised unlocked, so recover
//     leaves the heap usable).
//
// Raising a panic while pinned to a P needs no check of ours: the runtime
// refuses it with the fatal error "panic holding locks".
//
// The holder is a goroutine id read from runtime.Stack: about a
// microsecond per Lock, which only this build pays.

// checkedMutex is a sync.Mutex that records its holder. The embedded
// Mutex stays reachable (a test's kernel probe watches it); Lock, TryLock
// and Unlock here shadow its own.
type checkedMutex struct {
	sync.Mutex
	holder atomic.Int64 // goroutine id of the holder, 0 if none
}

func (m *checkedMutex) Lock() {
	m.Mutex.Lock()
	m.holder.Store(goid())
}

func (m *checkedMutex) TryLock() bool {
	if !m.Mutex.TryLock() {
		return false
	}
	m.holder.Store(goid())
	return true
}

func (m *checkedMutex) Unlock() {
	if m.holder.Load() != goid() {
		panic("offheap: invariant: unlocking a mutex this goroutine does not hold")
	}
	m.holder.Store(0)
	m.Mutex.Unlock()
}

// heldByMe reports whether the calling goroutine holds m.
func (m *checkedMutex) heldByMe() bool { return m.holder.Load() == goid() }

// assertHeld panics, naming fn, unless the calling goroutine holds m.
func (m *checkedMutex) assertHeld(fn string) {
	if !m.heldByMe() {
		panic("offheap: invariant: " + fn + " called without its lock held")
	}
}

// assertUnlocked panics, naming what was about to be raised, if the
// calling goroutine holds the heap lock or a class lock.
func (h *Heap) assertUnlocked(what string) {
	if h.lock.heldByMe() {
		panic("offheap: invariant: panic raised holding the heap lock: " + what)
	}
	for cl := range h.central {
		if h.central[cl].mu.heldByMe() {
			panic("offheap: invariant: panic raised holding the lock of class " +
				strconv.Itoa(cl) + ": " + what)
		}
	}
}

// goid returns the calling goroutine's id, from the first line of its
// stack trace ("goroutine 18 [running]:").
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		panic("offheap: invariant: cannot read the goroutine id from " + strconv.Quote(string(buf[:])))
	}
	return id
}
