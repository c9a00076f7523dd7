//go:build invariants

package arena

import (
	"strings"
	"testing"
)

// catchInvariant runs f and returns the message it panicked with, or "".
func catchInvariant(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg, _ = r.(string)
		}
	}()
	f()
	return ""
}

// Invariants builds check the lock discipline that the ...Locked names
// promise: called without its lock, a Locked function panics naming
// itself; called with it, it runs.
func TestInvariantsLockedNeedsLock(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 64 << 20, ScavengeDelay: -1, MemoryLimit: 32 << 20})
	for name, f := range map[string]func(){
		"committedLocked":   func() { h.committedLocked() },
		"overLimitLocked":   func() { h.overLimitLocked(1) },
		"pageFiguresLocked": func() { h.pageFiguresLocked() },
	} {
		msg := catchInvariant(f)
		if !strings.Contains(msg, "invariant") || !strings.Contains(msg, name) {
			t.Errorf("%s without the heap lock: panic %q, want an invariant naming it", name, msg)
		}
		h.lock.Lock()
		msg = catchInvariant(f)
		h.lock.Unlock()
		if msg != "" {
			t.Errorf("%s with the heap lock: panic %q", name, msg)
		}
	}
	// Held by another goroutine is not held by the caller.
	h.lock.Lock()
	done := make(chan string)
	go func() { done <- catchInvariant(func() { h.committedLocked() }) }()
	msg := <-done
	h.lock.Unlock()
	if !strings.Contains(msg, "committedLocked") {
		t.Errorf("committedLocked with another goroutine holding the lock: panic %q, want an invariant", msg)
	}

	r := h.NewRegion()
	defer r.Free()
	if msg := catchInvariant(func() { _, _ = r.bumpLocked(8) }); !strings.Contains(msg, "Region.bumpLocked") {
		t.Errorf("bumpLocked without the region's mutex: panic %q, want an invariant naming it", msg)
	}
}

// A check's panic raised while a lock of the heap is held would leave the
// lock held after recover: invariants builds refuse it, naming the lock.
func TestInvariantsRaiseUnlocked(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 64 << 20, ScavengeDelay: -1})
	if msg := catchInvariant(func() { h.raise("offheap: test report") }); msg != "offheap: test report" {
		t.Fatalf("raise with nothing held panicked with %q, want the report itself", msg)
	}
	h.lock.Lock()
	msg := catchInvariant(func() { h.raise("offheap: test report") })
	h.lock.Unlock()
	if !strings.Contains(msg, "holding the heap lock") {
		t.Errorf("raise under the heap lock: panic %q, want an invariant", msg)
	}
	cl := &h.central[5]
	cl.mu.Lock()
	msg = catchInvariant(func() { h.raise("offheap: test report") })
	cl.mu.Unlock()
	if !strings.Contains(msg, "lock of class 5") {
		t.Errorf("raise under a class lock: panic %q, want an invariant", msg)
	}
	verifyOK(t, h)
}
