package main

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

const (
	// mixedBatch is how many objects a producer sends in one message.
	mixedBatch = 64
	// mixedChanDepth is how many batches wait in the channel at most.
	mixedChanDepth = 16
	// mixedRetain is how many objects each consumer keeps alive.
	mixedRetain = 1024
	// consumerSeed offsets the consumers' random seeds from the producers'.
	consumerSeed = 1000
)

func init() {
	register(workload{name: "mixed", about: "producers allocate mixed sizes, consumers keep a random live set and free the rest", run: runMixed})
}

// mixedSize draws a size: mostly small objects, some medium ones, a few
// large ones past 32 KiB.
func mixedSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 70:
		return between(r, 8, 256)
	case x < 95:
		return between(r, 257, 4096)
	case x < 99:
		return between(r, 4097, 32<<10)
	default:
		return between(r, 32<<10+1, 256<<10)
	}
}

// runMixed: half the goroutines produce, each through its own Cache,
// sending batches over a channel; the other half consume, each keeping a
// random live set and freeing evicted objects through its own Cache, so
// most frees are remote frees into spans another cache owns.
func runMixed(w *worker) ([]Phase, func(), error) {
	nprod := max(w.goroutines/2, 1)
	ncons := max(w.goroutines-nprod, 1)
	ch := make(chan []unsafe.Pointer, mixedChanDepth)
	var prod, cons sync.WaitGroup
	for i := range nprod {
		prod.Add(1)
		go func() {
			defer prod.Done()
			c := w.h.NewCache()
			defer c.Close()
			a, r := w.wrap(c), rng(i)
			batch := make([]unsafe.Pointer, 0, mixedBatch)
			for !w.stopped() {
				p := w.alloc(a, mixedSize(r))
				if p == nil {
					runtime.Gosched() // out of memory: let the consumers free
					continue
				}
				if batch = append(batch, p); len(batch) == mixedBatch {
					ch <- batch
					batch = make([]unsafe.Pointer, 0, mixedBatch)
				}
			}
			ch <- batch
		}()
	}
	caches := make([]*arena.Cache, ncons)
	sets := make([]*retained, ncons)
	for i := range ncons {
		caches[i], sets[i] = w.h.NewCache(), newRetained(mixedRetain)
		cons.Add(1)
		go func() {
			defer cons.Done()
			a, r := w.wrap(caches[i]), rng(consumerSeed+i)
			for batch := range ch {
				for _, p := range batch {
					if old := sets[i].put(r, p); old != nil {
						w.free(a, old)
					}
				}
			}
		}()
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	cleanup := func() {
		for i := range ncons {
			sets[i].drain(caches[i])
			caches[i].Close()
		}
	}
	return nil, cleanup, nil
}
