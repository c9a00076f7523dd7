package bench

import "unsafe"

// cache-scratch and cache-thrash (from Hoard's suite) look for false
// sharing: two threads writing to objects that share a cache line slow
// each other down though they share no data. Each thread allocates
// ScratchIters objects of ScratchSize bytes, one at a time, writes every
// byte ScratchReps times, and frees it. The work per thread is fixed, so
// with as many cores as threads the wall time should not grow with the
// thread count: the report gives it relative to the 1-thread run.

// cacheThrash: active false sharing, from objects allocated concurrently.
func cacheThrash(pool Pool, threads int, p *Params) measurement {
	return runPhase(threads, 0, func(w int, ph *phase) {
		a := pool.Worker()
		defer pool.Done(a)
		ph.begin()
		scribble(a, p)
		ph.end(uint64(p.ScratchIters))
	})
}

// cacheScratch: passive false sharing. The main goroutine allocates one
// object per thread, back to back (neighbours in one cache line with most
// allocators), and each thread starts by freeing its object: an allocator
// that hands the slot back to that thread puts the threads on one line.
func cacheScratch(pool Pool, threads int, p *Params) measurement {
	main := pool.Worker()
	first := make([]unsafe.Pointer, threads)
	for i := range first {
		first[i] = main.Alloc(p.ScratchSize)
		touch(first[i], p.ScratchSize)
	}
	pool.Done(main)
	return runPhase(threads, 0, func(w int, ph *phase) {
		a := pool.Worker()
		defer pool.Done(a)
		ph.begin()
		a.Free(first[w])
		scribble(a, p)
		ph.end(uint64(p.ScratchIters))
	})
}

// scribble is the threads' fixed work: allocate, write each byte
// ScratchReps times (a load and a store each, so no write is dropped),
// free.
func scribble(a Allocator, p *Params) {
	n := p.ScratchSize
	for range p.ScratchIters {
		q := a.Alloc(n)
		touch(q, n)
		for range p.ScratchReps {
			for k := range n {
				*(*byte)(unsafe.Add(q, k))++
			}
		}
		a.Free(q)
	}
}
