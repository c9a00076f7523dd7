package arena

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// epochRec is a shared offheap record: Val is never zero and Check is
// ^Val, and neither changes once the record is published, so a reader
// that sees either change saw the record freed (cleared by Free) or
// reused under it.
type epochRec struct {
	Val   uint64
	Pad   [6]uint64
	Check uint64
}

// TestEpochReclaim has readers traverse a shared record, published by
// Handle in an atomic, while writers replace it and retire the old one
// through an Epoch. A reader must never see a record freed under it, every
// retired record must be freed by the end, and the heap must verify.
func TestEpochReclaim(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	torn := runEpochWorkload(t, h, true)
	if torn != 0 {
		t.Fatalf("%d reads saw a record freed under them", torn)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left after the epoch drained", st.HeapObjects)
	}
	verifyOK(t, h)
}

// TestEpochControl runs the same workload freeing each record at once
// instead of retiring it, to show that the readers' check does catch a
// record freed under them: without the epoch they see torn records.
func TestEpochControl(t *testing.T) {
	if testing.Short() {
		t.Skip("a control: shows the check works")
	}
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	if torn := runEpochWorkload(t, h, false); torn == 0 {
		t.Skip("no torn read seen without the epoch this run (timing); the check is unproven here")
	}
}

// runEpochWorkload runs readers against writers for a fixed number of
// replacements and returns how many torn reads the readers saw. With
// useEpoch false the writers free at once (the control).
func runEpochWorkload(t *testing.T, h *Heap, useEpoch bool) int64 {
	t.Helper()
	const readers, writers = 4, 2
	replacements := 20000
	if testing.Short() {
		replacements = 4000
	}
	e := h.NewEpoch()
	newRec := func(v uint64) uintptr {
		r, err := NewRef[epochRec](h)
		if err != nil {
			t.Error(err)
			return 0
		}
		p := r.Get(h)
		p.Val, p.Check = v, ^v
		return uintptr(r)
	}
	var cur atomic.Uintptr
	cur.Store(newRec(1))
	var torn, reads atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := e.NewReader()
			defer rd.Close()
			for !stop.Load() {
				rd.Enter()
				p := Ref[epochRec](cur.Load()).Get(h)
				// Read it again and again, as a traversal would: a
				// published record never changes, so any change means it
				// was freed (cleared) or reused under the reader.
				v0 := atomic.LoadUint64(&p.Val)
				for range 64 {
					v, c := atomic.LoadUint64(&p.Val), atomic.LoadUint64(&p.Check)
					if v != v0 || c != ^v0 || v0 == 0 {
						torn.Add(1)
						break
					}
				}
				rd.Exit()
				reads.Add(1)
			}
		}()
	}
	// Writers start once the readers run (two cores are shared with
	// everything else), so every run interleaves them.
	for reads.Load() < 100*readers {
		runtime.Gosched()
	}
	var next atomic.Uint64
	next.Store(1)
	var wwg sync.WaitGroup
	for range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 0; i < replacements/writers; i++ {
				n := newRec(next.Add(1))
				old := cur.Swap(n)
				var err error
				if useEpoch {
					err = e.Retire(Handle(old).Pointer(h))
				} else {
					err = h.Free(Handle(old).Pointer(h))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wwg.Wait()
	stop.Store(true)
	wg.Wait()
	if err := h.Free(Handle(cur.Load()).Pointer(h)); err != nil {
		t.Fatal(err)
	}
	if useEpoch {
		if _, err := e.Reclaim(); err != nil {
			t.Fatal(err)
		}
		if n := e.Pending(); n != 0 {
			t.Fatalf("%d retired objects still pending with no reader inside", n)
		}
	}
	t.Logf("%d reads, %d torn", reads.Load(), torn.Load())
	return torn.Load()
}

// TestEpochHoldsBack checks the rule itself, step by step: an object
// retired while a reader is inside is not freed until that reader exits,
// however often the epoch is pushed, and is freed once it has.
func TestEpochHoldsBack(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	e := h.NewEpoch()
	rd := e.NewReader()
	idle := e.NewReader() // registered, outside: must not hold anything back
	defer idle.Close()
	p, err := h.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	rd.Enter()
	if err := e.Retire(p); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if n, err := e.Reclaim(); n != 0 || err != nil {
			t.Fatalf("Reclaim with a reader inside freed %d, %v", n, err)
		}
	}
	if _, err := h.UsableSize(p); err != nil {
		t.Fatalf("the retired object was freed under a reader: %v", err)
	}
	rd.Exit()
	if n, err := e.Reclaim(); n != 1 || err != nil {
		t.Fatalf("Reclaim after the reader left freed %d, %v; want 1", n, err)
	}
	if _, err := h.UsableSize(p); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("after Reclaim the object is still live: %v", err)
	}
	// A reader that entered after the retire does not hold it back.
	q, _ := h.Alloc(64)
	if err := e.Retire(q); err != nil {
		t.Fatal(err)
	}
	e.advance() // the epoch moves past q's
	rd.Enter()
	if n, err := e.Reclaim(); n != 1 || err != nil {
		t.Fatalf("a reader entering after the retire held it back: freed %d, %v", n, err)
	}
	rd.Exit()
	rd.Close()
	// Retiring twice is reported when the second free fails.
	r, _ := h.Alloc(64)
	_ = e.Retire(r)
	_ = e.Retire(r)
	if _, err := e.Reclaim(); !errors.Is(err, ErrDoubleFree) {
		t.Fatalf("double retire: %v, want ErrDoubleFree", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("nested Enter did not panic")
			}
		}()
		rd2 := e.NewReader()
		defer rd2.Close()
		rd2.Enter()
		rd2.Enter()
	}()
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
	verifyOK(t, h)
}
