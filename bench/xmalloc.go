package bench

import (
	"sync"
	"unsafe"
)

// xmalloc (xmalloc-test): producer threads allocate XmallocSize-byte
// objects and hand them, XmallocBatch at a time, through a bounded queue
// to consumer threads that free them. Every free is of another thread's
// object, the case thread caches find hardest. threads is the number of
// producer/consumer pairs; ops counts frees.
func xmalloc(pool Pool, threads int, p *Params) measurement {
	queue := make(chan []unsafe.Pointer, p.XmallocQueue)
	// Batches are recycled through empty so the Go heap carries no
	// allocation of the harness's own: enough for a full queue plus one
	// held by every producer and consumer.
	empty := make(chan []unsafe.Pointer, p.XmallocQueue+2*threads)
	for range cap(empty) {
		empty <- make([]unsafe.Pointer, 0, p.XmallocBatch)
	}
	var producers sync.WaitGroup
	producers.Add(threads)
	return runPhase(2*threads, p.Duration, func(w int, ph *phase) {
		a := pool.Worker()
		defer pool.Done(a)
		if w >= threads {
			ph.begin()
			var ops uint64
			for b := range queue {
				for i, q := range b {
					a.Free(q)
					b[i] = nil
				}
				ops += uint64(len(b))
				empty <- b[:0]
			}
			ph.end(ops)
			return
		}
		ph.begin()
		n := p.XmallocSize
		for !ph.stopped() {
			b := <-empty
			for range p.XmallocBatch {
				q := a.Alloc(n)
				touch(q, n)
				b = append(b, q)
			}
			queue <- b
		}
		ph.end(0)
		producers.Done()
		if w == 0 {
			producers.Wait()
			close(queue)
		}
	})
}
