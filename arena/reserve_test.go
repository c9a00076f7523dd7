package arena

import (
	"testing"
	"unsafe"
)

// A 1 TiB reservation: its span records reach the 32-bit ID cap, which
// must still give a page-aligned mapping (it failed with mmap's
// "not aligned" error from about 910 GiB).
func TestNewHeapOneTiB(t *testing.T) {
	const reserve = 1 << 40
	h := newTestHeap(t, quiet(Config{Reserve: reserve}))
	if got := h.Stats().Reserved; got != reserve {
		t.Fatalf("Stats().Reserved = %d, want %d", got, uint64(reserve))
	}
	var live []unsafe.Pointer
	for _, size := range []int{8, 64, 1000, 32 << 10, 1 << 20, 64 << 20} {
		for range 3 {
			p, err := h.Alloc(size)
			if err != nil {
				t.Fatalf("Alloc(%d): %v", size, err)
			}
			fillBytes(p, size, 0x5a)
			live = append(live, p)
		}
	}
	verifyOK(t, h)
	for _, p := range live {
		if err := h.Free(p); err != nil {
			t.Fatalf("Free(%p): %v", p, err)
		}
	}
	verifyOK(t, h)
	if st := h.Stats(); st.HeapObjects != 0 || st.HeapAlloc != 0 {
		t.Fatalf("after freeing everything: %s", statsLine(st))
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
