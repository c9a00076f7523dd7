package bench

// pair returns the alloc+free microbenchmark at one size: allocate,
// touch, free, as fast as the allocator goes.
func pair(size int) func(Pool, int, *Params) measurement {
	return func(pool Pool, threads int, p *Params) measurement {
		return runPhase(threads, p.Duration, func(w int, ph *phase) {
			a := pool.Worker()
			defer pool.Done(a)
			ph.begin()
			ops := untilStopped(ph, func() {
				q := a.Alloc(size)
				touch(q, size)
				a.Free(q)
			})
			ph.end(ops)
		})
	}
}
