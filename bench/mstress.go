package bench

import (
	"sync/atomic"
	"unsafe"
)

// mstress (after mimalloc's test-stress): each thread keeps MstressLive
// objects of random sizes and random lifetimes; one step in ten swaps one
// of them with a slot of an array shared by all threads, so objects
// migrate and are freed far from where they were born. Sizes are mostly
// small with a rare medium or large one, so the large-object path runs.
func mstress(pool Pool, threads int, p *Params) measurement {
	transfer := make([]unsafe.Pointer, p.MstressTransfer)
	m := runPhase(threads, p.Duration, func(w int, ph *phase) {
		r := newRNG(p.Seed, w)
		a := pool.Worker()
		defer pool.Done(a)
		slots := fill(a, p.MstressLive, func() int { return mstressSize(&r) })
		ph.begin()
		ops := untilStopped(ph, func() { mstressStep(a, slots, transfer, &r) })
		ph.end(ops)
		freeAll(a, slots)
	})
	a := pool.Worker()
	freeAll(a, transfer)
	pool.Done(a)
	return m
}

// The step mix, in percent: swap with the shared array, free only (the
// slot stays empty until a later step refills it), else replace.
const (
	mstressSwapPct = 10
	mstressFreePct = 25
)

func mstressStep(a Allocator, slots, transfer []unsafe.Pointer, r *rng) {
	j := r.intn(len(slots))
	switch c := r.intn(100); {
	case c < mstressSwapPct:
		i := r.intn(len(transfer))
		slots[j] = atomic.SwapPointer(&transfer[i], slots[j])
	case c < mstressFreePct:
		if slots[j] != nil {
			a.Free(slots[j])
			slots[j] = nil
		}
	default:
		if slots[j] != nil {
			a.Free(slots[j])
		}
		sz := mstressSize(r)
		slots[j] = a.Alloc(sz)
		touch(slots[j], sz)
	}
}

// mstressSize: one in 1000 large (32 KiB-256 KiB, past every allocator's
// small classes), one in 100 medium (1-32 KiB), the rest 8-256 B.
func mstressSize(r *rng) int {
	switch c := r.intn(1000); {
	case c < 1:
		return r.uniform(32<<10+1, 256<<10)
	case c < 10:
		return r.uniform(1<<10, 32<<10)
	default:
		return r.uniform(8, 256)
	}
}
