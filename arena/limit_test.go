package arena

import (
	"errors"
	"runtime"
	"runtime/debug"
	"testing"
	"unsafe"
)

// TestMemoryLimit fills a heap with 1 MiB objects up to a 64 MiB limit:
// allocation must fail with ErrOutOfMemory before committed memory (or the
// resident set) passes the limit, succeed again after frees, and leave
// the heap consistent. It runs with and without the background scavenger.
func TestMemoryLimit(t *testing.T) {
	for _, bg := range []bool{false, true} {
		name := "no background scavenger"
		if bg {
			name = "background scavenger"
		}
		t.Run(name, func(t *testing.T) { testMemoryLimit(t, bg) })
	}
}

func testMemoryLimit(t *testing.T, bg bool) {
	const (
		limit = 64 << 20
		slack = 4 << 20
		size  = 1 << 20
	)
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := residentBytes(t)
	cfg := Config{Reserve: 512 << 20, MemoryLimit: limit}
	if !bg {
		cfg = quiet(cfg)
	}
	h := newTestHeap(t, cfg)
	c := h.NewCache()
	defer c.Close()

	checkCommitted := func(stage string) Stats {
		t.Helper()
		st := h.Stats()
		if st.Committed > limit+slack {
			t.Fatalf("%s: Committed %d MiB passes the %d MiB limit (+%d MiB)", stage, st.Committed>>20, limit>>20, slack>>20)
		}
		if st.MemoryLimit != limit {
			t.Fatalf("Stats.MemoryLimit = %d, want %d", st.MemoryLimit, limit)
		}
		if err := statsIdentities(st); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		return st
	}

	// fillUp allocates 1 MiB objects, alternating Heap and Cache, until
	// the limit refuses one.
	var objs []unsafe.Pointer
	fillUp := func(stage string) int {
		t.Helper()
		n := 0
		for {
			p, err := []allocFreer{h, c}[len(objs)%2].Alloc(size)
			checkCommitted(stage)
			if err != nil {
				if !errors.Is(err, ErrOutOfMemory) {
					t.Fatalf("%s: Alloc: %v, want ErrOutOfMemory", stage, err)
				}
				if p != nil {
					t.Fatalf("%s: Alloc returned %p with %v", stage, p, err)
				}
				return n
			}
			if k := firstByteNot(p, size, 0); k >= 0 {
				t.Fatalf("%s: new object byte %d not zero", stage, k)
			}
			fillBytes(p, size, byte(len(objs)+1)) // make every page resident
			objs = append(objs, p)
			if n++; len(objs) > 2*limit/size {
				t.Fatalf("%s: %d MiB allocated under a %d MiB limit", stage, len(objs), limit>>20)
			}
		}
	}

	n := fillUp("first fill")
	rss1 := residentBytes(t)
	t.Logf("limit %d MiB: %d objects of 1 MiB; RSS %d MiB before NewHeap, %d MiB when full (+%d MiB)",
		limit>>20, n, rss0>>20, rss1>>20, int64(rss1-rss0)>>20)
	if n < limit/size-slack/size {
		t.Fatalf("only %d MiB allocated under a %d MiB limit", n, limit>>20)
	}
	if rss1 > rss0+limit+2*slack {
		t.Errorf("RSS grew by %d MiB under a %d MiB limit", (rss1-rss0)>>20, limit>>20)
	}
	// A refused allocation refuses again, and small ones are refused too
	// once every page is taken.
	if _, err := h.Alloc(size); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("second Alloc at the limit: %v, want ErrOutOfMemory", err)
	}
	if _, err := h.Alloc(2 * limit); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Alloc of twice the limit: %v, want ErrOutOfMemory", err)
	}
	var small []unsafe.Pointer
	for {
		p, err := c.Alloc(4096)
		if err != nil {
			if !errors.Is(err, ErrOutOfMemory) {
				t.Fatalf("small Alloc at the limit: %v", err)
			}
			break
		}
		small = append(small, p)
		if len(small) > slack/4096+1024 {
			t.Fatalf("%d small objects allocated past a full limit", len(small))
		}
	}
	checkCommitted("small objects")
	verifyOK(t, h)

	// Free some: allocation works again, up to the limit again.
	const k = 10
	for i := 0; i < k; i++ {
		j := i * 5
		if err := []allocFreer{c, h}[i%2].Free(objs[j]); err != nil {
			t.Fatal(err)
		}
		objs[j] = nil
	}
	for _, p := range small {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	live := objs[:0]
	for _, p := range objs {
		if p != nil {
			live = append(live, p)
		}
	}
	objs = live
	again := fillUp("refill")
	if again < k {
		t.Fatalf("after freeing %d MiB only %d MiB could be allocated again", k, again)
	}
	checkCommitted("refilled")
	if rss2 := residentBytes(t); rss2 > rss0+limit+2*slack {
		t.Errorf("RSS grew by %d MiB under a %d MiB limit after refilling", (rss2-rss0)>>20, limit>>20)
	}
	verifyOK(t, h)

	// Every object kept its contents; free them all.
	for _, p := range objs {
		b := *(*byte)(p)
		if k := firstByteNot(p, size, b); k >= 0 || b == 0 {
			t.Fatalf("object %p: byte %d differs from its fill %#x", p, k, b)
		}
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := checkCommitted("emptied"); st.HeapObjects != 0 || st.HeapAlloc != 0 {
		t.Fatalf("after freeing everything: %s", statsLine(st))
	}
	verifyOK(t, h)
}

// TestMemoryLimitSmallObjects fills a limited heap with 4 KiB objects
// through several caches: committed memory stays under the limit and the
// heap fills it nearly completely.
func TestMemoryLimitSmallObjects(t *testing.T) {
	const limit = 16 << 20
	h := newTestHeap(t, quiet(Config{Reserve: 256 << 20, MemoryLimit: limit}))
	caches := []*Cache{h.NewCache(), h.NewCache(), h.NewCache()}
	var objs []unsafe.Pointer
	for i := 0; ; i++ {
		p, err := caches[i%len(caches)].Alloc(4000)
		if err != nil {
			if !errors.Is(err, ErrOutOfMemory) {
				t.Fatal(err)
			}
			break
		}
		*(*uint64)(p) = uint64(i) + 1
		objs = append(objs, p)
		if i%64 == 0 {
			if st := h.Stats(); st.Committed > limit {
				t.Fatalf("Committed %d > limit %d after %d objects", st.Committed, limit, i)
			}
		}
	}
	st := h.Stats()
	t.Logf("%d objects of 4000 bytes (%d KiB in use) under a %d KiB limit; Committed %d KiB",
		len(objs), st.HeapInuse>>10, limit>>10, st.Committed>>10)
	if st.Committed > limit || st.HeapInuse < limit-2<<20 {
		t.Fatalf("at the limit: %s", statsLine(st))
	}
	verifyOK(t, h)
	// Free half through other caches, then allocate that much again.
	for i := 0; i < len(objs); i += 2 {
		if err := caches[(i+1)%len(caches)].Free(objs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(objs); i += 2 {
		p, err := caches[i%len(caches)].Alloc(4000)
		if err != nil {
			t.Fatalf("re-allocating %d of %d: %v", i/2, len(objs)/2, err)
		}
		if *(*uint64)(p) != 0 {
			t.Fatal("re-allocated object not zeroed")
		}
		*(*uint64)(p) = uint64(i) + 1
		objs[i] = p
	}
	if st := h.Stats(); st.Committed > limit {
		t.Fatalf("Committed %d > limit %d after re-allocating", st.Committed, limit)
	}
	for i, p := range objs {
		if got := *(*uint64)(p); got != uint64(i)+1 {
			t.Fatalf("object %d holds %d", i, got)
		}
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range caches {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	publishBatches(t, h)
	if st := h.Stats(); st.HeapObjects != 0 || st.HeapInuse != 0 {
		t.Fatalf("after freeing everything: %s", statsLine(st))
	}
	verifyOK(t, h)
}
