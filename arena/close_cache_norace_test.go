//go:build !race && !offheap_nolinkname

package arena

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseWaitsForCacheSection checks the unpinned Cache sections (fast,
// and the allocation slow path's): Close must not unmap while a Cache's
// sequence word says a section is open. The section is held open by hand (the owner's odd store), as a
// goroutine preempted inside take would hold it; Close must still be
// waiting 50 ms later, and return once the section ends.
func TestCloseWaitsForCacheSection(t *testing.T) {
	for _, kind := range []string{"fast", "slow"} {
		t.Run(kind, func(t *testing.T) { testCloseWaitsForCacheSection(t, kind == "slow") })
	}
}

func testCloseWaitsForCacheSection(t *testing.T, slow bool) {
	h, err := NewHeap(Config{Reserve: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c := h.NewCache()
	p, err := c.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	open, end := c.openCache, c.closeCache
	if slow {
		open, end = c.openSlow, c.closeSlow
	}
	if !open() {
		t.Fatal("heap closed")
	}
	var closed atomic.Bool
	done := make(chan error)
	go func() {
		err := h.Close()
		closed.Store(true)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if closed.Load() {
		t.Fatal("Close returned while a Cache fast section was open")
	}
	// Still inside the section: the memory is mapped.
	*(*byte)(p) = 1
	end()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Alloc(64); err != ErrClosed {
		t.Fatalf("Alloc after Close: %v, want ErrClosed", err)
	}
}
