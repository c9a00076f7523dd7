package bench

import (
	"strings"
	"testing"
	"time"
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
				m := w.run(pool, threads, &p)
				if oh, ok := pool.(*offheapPool); ok {
					st := oh.Heap().Stats()
					if st.HeapObjects != 0 || st.Mallocs != st.Frees || st.Mallocs == 0 {
						t.Errorf("%s/%s/%d: HeapObjects %d, Mallocs %d, Frees %d after the run; want 0 live and every malloc freed",
							w.Name, pv.Name, threads, st.HeapObjects, st.Mallocs, st.Frees)
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
