package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/offheap/offheap/arena"
)

// tinyParams are small enough that every workload runs in milliseconds.
func tinyParams() Params {
	p := Defaults()
	p.Duration = 20 * time.Millisecond
	p.LarsonLive = 200
	p.LarsonBigLive = 1000
	p.LarsonRound = 1000
	p.ScratchIters = 50
	p.ScratchReps = 20
	p.MstressLive = 100
	p.MstressTransfer = 50
	p.AllocTestLive = 200
	p.SimpleBatch = 100
	p.ThreadLive = 100
	return p
}

// TestEveryWorkloadEveryAllocator runs each shape once on each allocator
// built in (offheap Heap and Cache, Go heap, and cgo or arenas where this
// build has them), at 1 and 2 threads, and checks that the run did work
// and that the offheap heap balances: Pool.Close fails when objects are
// left live, and the test also reads Stats itself before the close.
func TestEveryWorkloadEveryAllocator(t *testing.T) {
	p := tinyParams()
	for _, pv := range Providers() {
		for _, w := range Workloads() {
			if pv.BulkOnly && !w.Bulk {
				continue
			}
			for _, threads := range []int{1, 2} {
				pool, err := pv.Open()
				if err != nil {
					t.Fatalf("%s: open: %v", pv.Name, err)
				}
				oh, isOffheap := pool.(*offheapPool)
				var before arena.Stats
				if isOffheap {
					before = oh.Heap().Stats()
				}
				m := w.run(pool, threads, &p)
				if isOffheap {
					st := oh.Heap().Stats()
					if st.HeapObjects != before.HeapObjects || st.Mallocs-before.Mallocs != st.Frees-before.Frees || st.Mallocs == before.Mallocs {
						t.Errorf("%s/%s/%d: HeapObjects %d → %d, %d mallocs and %d frees during the run; want as many live as before and every malloc freed",
							w.Name, pv.Name, threads, before.HeapObjects, st.HeapObjects, st.Mallocs-before.Mallocs, st.Frees-before.Frees)
					}
				}
				if err := pool.Close(); err != nil {
					t.Errorf("%s/%s/%d: close: %v", w.Name, pv.Name, threads, err)
				}
				if m.ops == 0 || m.elapsed <= 0 {
					t.Errorf("%s/%s/%d: %d ops in %v; want work done", w.Name, pv.Name, threads, m.ops, m.elapsed)
				}
			}
		}
	}
}

// TestOffheapPoolReportsLeak checks the balance check itself: an object
// left live makes Close fail.
func TestOffheapPoolReportsLeak(t *testing.T) {
	pool, err := heapProvider().Open()
	if err != nil {
		t.Fatal(err)
	}
	a := pool.Worker()
	a.Alloc(64)
	pool.Done(a)
	err = pool.Close()
	if err == nil || !strings.Contains(err.Error(), "1 objects still live") {
		t.Fatalf("Close with one live object = %v; want the leak reported", err)
	}
}
