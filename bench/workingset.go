package bench

// workingSet runs the replace step over a per-thread live set of live
// objects with sizes from size: alloc-test and glibc-thread.
func workingSet(pool Pool, threads int, p *Params, live int, size func(r *rng) int) measurement {
	return runPhase(threads, p.Duration, func(w int, ph *phase) {
		r := newRNG(p.Seed, w)
		sz := func() int { return size(&r) }
		a := pool.Worker()
		defer pool.Done(a)
		slots := fill(a, live, sz)
		ph.begin()
		ops := untilStopped(ph, func() { replace(a, slots, &r, sz) })
		ph.end(ops)
		freeAll(a, slots)
	})
}

// allocTest (alloc-test, ithare.com): a working set of AllocTestLive
// objects whose sizes, AllocTestMin to AllocTestMax, favour small ones.
func allocTest(pool Pool, threads int, p *Params) measurement {
	return workingSet(pool, threads, p, p.AllocTestLive, func(r *rng) int {
		return r.logUniform(p.AllocTestMin, p.AllocTestMax)
	})
}

// glibcThread (glibc's bench-malloc-thread): ThreadLive objects of
// ThreadMin to ThreadMax bytes, about 1/size likely, each thread on its
// own set.
func glibcThread(pool Pool, threads int, p *Params) measurement {
	return workingSet(pool, threads, p, p.ThreadLive, func(r *rng) int {
		return r.logUniform(p.ThreadMin, p.ThreadMax)
	})
}
