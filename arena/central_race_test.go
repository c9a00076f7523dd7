package arena

import (
	"sync"
	"testing"
	"unsafe"
)

// TestConcurrentLastFrees frees the objects of spans no cache owns from
// many goroutines at once, so that the frees of a span's last objects race
// each other: exactly one of them must free the span, and no other may
// touch it after.
func TestConcurrentLastFrees(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 256 << 20}))
	const workers = 8
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	for round := 0; round < rounds; round++ {
		c := h.NewCache()
		var ps []unsafe.Pointer
		for i := 0; i < 128*40; i++ { // 40 spans of 128 64-byte objects
			p, err := c.Alloc(64)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		if err := c.Close(); err != nil { // every span goes central
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Worker w frees objects w, w+workers, ...: neighbours in a
				// span go to different workers, so last frees collide.
				for i := w; i < len(ps); i += workers {
					if err := h.Free(ps[i]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		if err := h.Verify(); err != nil {
			t.Fatal(err)
		}
		if st := h.Stats(); st.HeapObjects != 0 {
			t.Fatalf("round %d: %d objects left", round, st.HeapObjects)
		}
	}
}
