package arena

import (
	"errors"
	"sync"
	"testing"
	"unsafe"
)

func TestRegionAllocAndFree(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	r := h.NewRegion()
	type obj struct {
		p    unsafe.Pointer
		size int
	}
	var objs []obj
	sizes := []int{0, 1, 8, 15, 16, 100, 4000, regionMaxBump, regionMaxBump + 1, 100 << 10}
	for round := 0; round < 50; round++ {
		for i, n := range sizes {
			p, err := r.Alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			if uintptr(p)%regionAlign != 0 {
				t.Fatalf("Alloc(%d) = %p, misaligned", n, p)
			}
			b := unsafe.Slice((*byte)(p), n)
			for k := range b {
				if b[k] != 0 {
					t.Fatalf("Alloc(%d): byte %d not zero", n, k)
				}
				b[k] = byte(round + i + 1)
			}
			objs = append(objs, obj{p, n})
		}
	}
	// Nothing overlapped: every object still holds its fill.
	for j, o := range objs {
		fill := byte(j/len(sizes) + j%len(sizes) + 1)
		for k, v := range unsafe.Slice((*byte)(o.p), o.size) {
			if v != fill {
				t.Fatalf("object %d (size %d) byte %d = %d, want %d", j, o.size, k, v, fill)
			}
		}
	}
	rs := r.Stats()
	st := h.Stats()
	if rs.Spans == 0 || rs.Held < rs.Used || st.RegionInuse != rs.Held || st.Regions != 1 {
		t.Fatalf("region stats %+v, heap RegionInuse %d Regions %d", rs, st.RegionInuse, st.Regions)
	}
	if st.HeapAlloc != 0 {
		t.Fatalf("region memory counted in HeapAlloc: %d", st.HeapAlloc)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	// Region memory cannot be freed object by object.
	if err := h.Free(objs[0].p); !errors.Is(err, ErrInvalidPointer) {
		t.Fatalf("Heap.Free of region memory: %v", err)
	}
	if err := r.Free(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Alloc(8); !errors.Is(err, ErrClosed) {
		t.Fatalf("Alloc after Free: %v", err)
	}
	if err := r.Free(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Free: %v", err)
	}
	st = h.Stats()
	if st.HeapInuse != 0 || st.RegionInuse != 0 || st.Regions != 0 {
		t.Fatalf("after Free: HeapInuse %d RegionInuse %d Regions %d", st.HeapInuse, st.RegionInuse, st.Regions)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Alloc(-1); !errors.Is(err, ErrInvalidSize) {
		t.Fatalf("Alloc(-1): %v", err)
	}
}

func TestRegionConcurrentAlloc(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	r := h.NewRegion()
	const workers, per = 4, 5000
	ptrs := make([][]uintptr, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				n := 16 + (i*7+w)%200
				p, err := r.Alloc(n)
				if err != nil {
					t.Error(err)
					return
				}
				b := unsafe.Slice((*byte)(p), n)
				for k := range b {
					b[k] = byte(w + 1)
				}
				ptrs[w] = append(ptrs[w], uintptr(p)|uintptr(n)<<48)
			}
		}()
	}
	wg.Wait()
	for w, ps := range ptrs {
		for _, v := range ps {
			p, n := v&(1<<48-1), int(v>>48)
			for k, b := range unsafe.Slice((*byte)(addrPointer(p)), n) {
				if b != byte(w+1) {
					t.Fatalf("worker %d object %#x byte %d = %d: overlapping allocations", w, p, k, b)
				}
			}
		}
	}
	if err := r.Free(); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}
