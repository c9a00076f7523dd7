package bench

import "unsafe"

// larson (Larson & Krishnan's server benchmark, as mimalloc-bench runs
// it): each thread owns a live set of objects of random sizes and, in a
// loop, frees a random one and allocates a new one in its place. Every
// LarsonRound operations the thread ends and a new thread carries on with
// its objects, so objects are freed by threads that did not allocate
// them, and thread caches are born and retired (for offheap-cache, a new
// Cache each round).
func larsonSmall(pool Pool, threads int, p *Params) measurement {
	return larson(pool, threads, p, p.LarsonLive)
}

// larsonBig is larson with LarsonBigLive objects a thread.
func larsonBig(pool Pool, threads int, p *Params) measurement {
	return larson(pool, threads, p, p.LarsonBigLive)
}

func larson(pool Pool, threads int, p *Params, live int) measurement {
	return runPhase(threads, p.Duration, func(w int, ph *phase) {
		r := newRNG(p.Seed, w)
		size := func() int { return r.uniform(p.LarsonMin, p.LarsonMax) }
		a := pool.Worker()
		slots := fill(a, live, size)
		pool.Done(a)
		ph.begin()
		var ops uint64
		for !ph.stopped() {
			// One round, on a goroutine of its own: the lane's previous
			// goroutine has ended, as larson's threads do.
			done := make(chan uint64)
			go func() { done <- larsonRound(pool, slots, &r, size, p.LarsonRound, ph) }()
			ops += <-done
		}
		ph.end(ops)
		a = pool.Worker()
		freeAll(a, slots)
		pool.Done(a)
	})
}

// larsonRound is one thread's life: up to n replacements, in blocks of
// checkEvery, until the phase stops.
func larsonRound(pool Pool, slots []unsafe.Pointer, r *rng, size func() int, n int, ph *phase) uint64 {
	a := pool.Worker()
	defer pool.Done(a)
	var ops uint64
	for ops < uint64(n) && !ph.stopped() {
		for range checkEvery {
			replace(a, slots, r, size)
		}
		ops += checkEvery
	}
	return ops
}
