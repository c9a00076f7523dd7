package main

import (
	"sync"

	"github.com/offheap/offheap/arena"
)

const (
	// smallRetain is how many objects each goroutine keeps alive.
	smallRetain = 4096
	// smallMin and smallMax bound the sizes of the small workload.
	smallMin, smallMax = 8, 256
)

func init() {
	register(workload{name: "small", about: "each goroutine allocates small objects through its Cache, keeping a steady live set", run: runSmall})
}

// runSmall: every goroutine allocates and frees small objects through its
// own Cache, keeping smallRetain of them alive: the steady state of a
// cache of small records, all frees local.
func runSmall(w *worker) ([]Phase, func(), error) {
	caches := make([]*arena.Cache, w.goroutines)
	sets := make([]*retained, w.goroutines)
	var wg sync.WaitGroup
	for i := range w.goroutines {
		caches[i], sets[i] = w.h.NewCache(), newRetained(smallRetain)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r := w.wrap(caches[i]), rng(i)
			for !w.stopped() {
				p := w.alloc(a, between(r, smallMin, smallMax))
				if p == nil {
					continue
				}
				if old := sets[i].put(r, p); old != nil {
					w.free(a, old)
				}
			}
		}()
	}
	wg.Wait()
	cleanup := func() {
		for i := range caches {
			sets[i].drain(caches[i])
			caches[i].Close()
		}
	}
	return nil, cleanup, nil
}
