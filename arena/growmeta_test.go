package arena

import (
	"errors"
	"testing"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
)

// A page allocator metadata commit the kernel refuses while the heap
// grows fails the allocation with ErrOutOfMemory and leaves the heap
// usable; before the fix it panicked ("offheap: growing ..."). The page
// allocator maps its metadata with the real kernel, so the test swaps in
// one over a fault injector before the heap has grown.
func TestGrowPageMetadataFailure(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 256 << 20}))
	fi := mmap.NewFaultInjector(nil)
	pa, err := pages.New(h.base, h.limit-h.base, fi)
	if err != nil {
		t.Fatal(err)
	}
	old := h.pages
	h.pages = pa
	t.Cleanup(func() { old.Close() })
	const size = 200 << 20 // far enough to need metadata beyond the eager part
	commits := fi.Calls(mmap.OpCommit)
	fi.FailNth(mmap.OpCommit, 1)
	p, err := h.Alloc(size)
	if fi.Calls(mmap.OpCommit) == commits {
		t.Fatal("growing committed no page metadata: the test does not test")
	}
	if err == nil || !errors.Is(err, ErrOutOfMemory) || !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("Alloc with a failing page metadata commit = %p, %v; want ErrOutOfMemory wrapping mmap.ErrInjected", p, err)
	}
	if st := h.Stats(); st.HeapObjects != 0 || st.HeapInuse != 0 {
		t.Fatalf("failed Alloc left %s", statsLine(st))
	}
	verifyOK(t, h)
	if p, err = h.Alloc(size); err != nil {
		t.Fatalf("Alloc after the failure: %v", err)
	}
	fillBytes(p, size, 1)
	verifyOK(t, h)
	if err := h.Free(p); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, h)
}
