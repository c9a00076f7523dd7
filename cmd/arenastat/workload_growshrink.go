package main

import (
	"sync"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

const (
	// growPeak is the live bytes growshrink grows to (unless time, -ops or
	// the memory limit stops it first).
	growPeak = 256 << 20
	// growKeepEvery: after the peak, one object in this many survives.
	growKeepEvery = 10
)

func init() {
	register(workload{name: "growshrink", about: "grow to a peak, free most objects, then Scavenge: memory coming back", run: runGrowShrink})
}

// runGrowShrink grows the heap to a peak, frees all but one object in
// growKeepEvery, and calls Scavenge, snapshotting each step: the report
// shows committed and resident memory coming back, and what the scattered
// survivors keep from coming back.
func runGrowShrink(w *worker) ([]Phase, func(), error) {
	caches := make([]*arena.Cache, w.goroutines)
	held := make([][]unsafe.Pointer, w.goroutines)
	var wg sync.WaitGroup
	for i := range w.goroutines {
		caches[i] = w.h.NewCache()
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r := w.wrap(caches[i]), rng(i)
			for !w.stopped() && w.allocBytes.Load() < growPeak && w.oom.Load() == 0 {
				if p := w.alloc(a, mixedSize(r)); p != nil {
					held[i] = append(held[i], p)
				}
			}
		}()
	}
	wg.Wait()
	w.stop.Store(true)
	phases := []Phase{w.snapshot("peak")}

	for i := range w.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := w.wrap(caches[i])
			kept := held[i][:0]
			for j, p := range held[i] {
				if j%growKeepEvery == 0 {
					kept = append(kept, p)
				} else {
					w.free(a, p)
				}
			}
			held[i] = kept
		}()
	}
	wg.Wait()
	// Hand the caches' spans back so Scavenge sees all free memory.
	for _, c := range caches {
		c.Close()
	}
	phases = append(phases, w.snapshot("after freeing 9 in 10"))
	w.scavenged = w.h.Scavenge()
	phases = append(phases, w.snapshot("after Scavenge"))

	cleanup := func() {
		for i := range held {
			for _, p := range held[i] {
				w.h.Free(p)
			}
		}
	}
	return phases, cleanup, nil
}
