package container

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/offheap/offheap/arena"
)

// defragUntilDone runs Defrag steps of per entries until a whole sweep
// has moved nothing (or maxSweeps sweeps have passed) and returns the
// entries moved and the steps taken.
func defragUntilDone(t *testing.T, step func(int) (int, error), stats func() MapStats, per, maxSweeps int) (moved, steps int) {
	t.Helper()
	start := stats().DefragSweeps
	sweepMoved := 0
	for {
		n, err := step(per)
		if err != nil {
			t.Fatalf("Defrag(%d): %v", per, err)
		}
		if n > per {
			t.Fatalf("Defrag(%d) moved %d entries", per, n)
		}
		moved += n
		sweepMoved += n
		steps++
		st := stats()
		if st.DefragSweeps != start {
			if sweepMoved == 0 || st.DefragSweeps-start >= uint64(maxSweeps) {
				return moved, steps
			}
			start, sweepMoved = st.DefragSweeps, 0
		}
	}
}

// A 90 % delete at random leaves HeapInuse many times HeapAlloc; Defrag
// steps bring it under 1.5 and the contents stay the model's.
func TestBytesMapDefrag(t *testing.T) {
	n := 200_000
	if raceEnabled {
		n = 50_000
	}
	h := newHeap(t, arena.Config{})
	m, err := NewBytesMap(h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string][]byte{}
	for i := range n {
		v := val(i, 3)
		v = append(v, make([]byte, i%160)...) // 0..200 bytes: several classes
		if err := m.Set(key(i), v); err != nil {
			t.Fatal(err)
		}
		model[string(key(i))] = v
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		if rng.IntN(10) != 0 {
			m.Delete(key(i))
			delete(model, string(key(i)))
		}
	}
	before := h.Stats()
	r0 := float64(before.HeapInuse) / float64(before.HeapAlloc)
	if r0 < 3 {
		t.Fatalf("the deletes left HeapInuse/HeapAlloc at %.2f: not fragmented", r0)
	}
	moved, steps := defragUntilDone(t, m.Defrag, m.MemStats, 256, 4)
	after := h.Stats()
	// Spans the heap's per-P caches own are out of Defrag's reach (new
	// allocations come from them; DefragHint says false there) and their
	// free slots are a hoard bounded per cache and class (arena's
	// ownedBytes), which at this size is a good part of the heap: the
	// promise is about the rest.
	var cached uint64
	for _, c := range after.Classes {
		cached += c.SpansCached * c.SpanBytes
	}
	r1 := float64(after.HeapInuse-cached) / float64(after.HeapAlloc)
	st := m.MemStats()
	t.Logf("%d entries: %d moved in %d steps of 256 (%d sweeps); HeapInuse/HeapAlloc %.2f -> %.2f (%d KiB in use, of which %d KiB in cache-owned spans; %d KiB live); without the caches' spans %.2f",
		len(model), moved, steps, st.DefragSweeps, r0, float64(after.HeapInuse)/float64(after.HeapAlloc), after.HeapInuse>>10, cached>>10, after.HeapAlloc>>10, r1)
	if r1 > 1.5 {
		t.Fatalf("after Defrag (HeapInuse - cache-owned spans)/HeapAlloc = %.2f, want <= 1.5", r1)
	}
	if st.DefragMoved != uint64(moved) || moved == 0 {
		t.Fatalf("MemStats.DefragMoved %d, steps moved %d", st.DefragMoved, moved)
	}
	checkBytesMap(t, m, model)
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Defrag(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Defrag after Close: %v, want ErrClosed", err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left after Close", st.HeapObjects)
	}
}

// Defrag during an incremental resize visits both tables, and neither the
// resize nor the entries suffer: the map is checked after each step.
func TestMapDefragWhileResizing(t *testing.T) {
	h := newHeap(t, arena.Config{})
	m, err := NewMap[uint64, [5]uint64](h, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := map[uint64][5]uint64{}
	const n = 20_000
	for i := range uint64(n) {
		v := [5]uint64{i, i * 3}
		if err := m.Set(i, v); err != nil {
			t.Fatal(err)
		}
		model[i] = v
	}
	// Delete 90 %, which also starts a shrink; defragment between deletes
	// so that steps run with entries in both tables.
	rng := rand.New(rand.NewPCG(5, 6))
	midResize, moved := 0, 0
	for i := range uint64(n) {
		if rng.IntN(10) != 0 {
			m.Delete(i)
			delete(model, i)
		}
		if i%64 == 63 {
			if m.MemStats().Resizing {
				midResize++
			}
			k, err := m.Defrag(32)
			if err != nil {
				t.Fatal(err)
			}
			moved += k
		}
	}
	more, _ := defragUntilDone(t, m.Defrag, m.MemStats, 64, 4)
	moved += more
	if midResize == 0 {
		t.Fatal("no Defrag step ran during a resize")
	}
	if moved == 0 {
		t.Fatal("Defrag moved nothing")
	}
	got := map[uint64][5]uint64{}
	m.Range(func(k uint64, v [5]uint64) bool { got[k] = v; return true })
	if len(got) != len(model) || m.Len() != len(model) {
		t.Fatalf("Range %d, Len %d, model %d", len(got), m.Len(), len(model))
	}
	for k, v := range model {
		if got[k] != v {
			t.Fatalf("key %d: %v, model %v", k, got[k], v)
		}
		if g, ok := m.Get(k); !ok || g != v {
			t.Fatalf("Get(%d) = %v %v, model %v", k, g, ok, v)
		}
	}
	st := h.Stats()
	t.Logf("%d entries, %d moved, %d steps mid-resize; HeapInuse/HeapAlloc %.2f", len(model), moved, midResize,
		float64(st.HeapInuse)/float64(st.HeapAlloc))
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Defrag(0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Defrag(0): %v, want ErrInvalidArgument", err)
	}
	// From inside Range: a writer, so it panics like Set.
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Defrag inside Range did not panic")
			}
		}()
		m.Range(func(uint64, [5]uint64) bool { m.Defrag(1); return false })
	}()
}
