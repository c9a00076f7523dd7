package bench

import "unsafe"

// simpleSizes are glibc-simple's object sizes, cycled batch by batch: the
// small classes glibc's bench-malloc-simple covers.
func simpleSizes() []int { return []int{16, 32, 64, 128, 256} }

// glibcSimple (glibc's bench-malloc-simple): each thread allocates a batch
// of SimpleBatch objects of one size, then frees them all in order,
// cycling the size. It frees in bulk, so Go arenas run it too (one arena
// per batch). ops counts allocations.
func glibcSimple(pool Pool, threads int, p *Params) measurement {
	return runPhase(threads, p.Duration, func(w int, ph *phase) {
		a := pool.Worker()
		defer pool.Done(a)
		reset, _ := a.(Resetter)
		batch := make([]unsafe.Pointer, p.SimpleBatch)
		sizes := simpleSizes()
		ph.begin()
		var ops uint64
		for k := 0; !ph.stopped(); k++ {
			n := sizes[k%len(sizes)]
			for i := range batch {
				batch[i] = a.Alloc(n)
				touch(batch[i], n)
			}
			freeAll(a, batch)
			if reset != nil {
				reset.Reset()
			}
			ops += uint64(len(batch))
		}
		ph.end(ops)
	})
}
