package arena

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

// A page allocator metadata commit the kernel refuses while the heap
// grows fails the allocation with ErrOutOfMemory and leaves the heap
// usable; before the fix it panicked ("offheap: growing ..."). The page
// allocator maps its metadata through Config.Kernel, so the fault
// injector reaches it.
func TestGrowPageMetadataFailure(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	h := newTestHeap(t, quiet(Config{Reserve: 256 << 20, Kernel: fi}))
	const size = 200 << 20 // far enough to need metadata beyond the eager part
	_, meta := h.pages.MetadataBytes()
	// Commit 1 is the chunks, 2 the span page map, 3 the page
	// allocator's chunk bitmaps.
	fi.FailNth(mmap.OpCommit, 3)
	p, err := h.Alloc(size)
	if _, after := h.pages.MetadataBytes(); after != meta {
		t.Fatalf("failed Alloc committed %d bytes of page metadata, want none", after-meta)
	}
	if !strings.Contains(fmt.Sprint(err), "page metadata") {
		t.Fatalf("Alloc error %v: want the page metadata commit to fail", err)
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

// Growing the heap makes no system call under the heap lock: the page
// allocator's metadata for new chunks is committed (CommitGrow) before the
// lock is taken, and Grow under it only flips bits. Before the fix Grow
// committed the metadata with mprotect while the heap lock was held. The
// reservation is wide enough (1 GiB: 32 chunks' bitmaps per 4 KiB page)
// that growing 200 MiB commits several metadata pages, each through the
// probe (Config.Kernel reaches the page allocator's metadata).
func TestGrowNoSyscallUnderHeapLock(t *testing.T) {
	k := &lockProbe{Kernel: mmap.Real()}
	h := newTestHeap(t, quiet(Config{Reserve: 1 << 30, Kernel: k}))
	k.mu.Store(&h.lock.Mutex)
	_, meta := h.pages.MetadataBytes()
	var ps []unsafe.Pointer
	for _, size := range []int{64, 1 << 20, 200 << 20, 100 << 20} {
		p, err := h.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if _, after := h.pages.MetadataBytes(); after <= meta {
		t.Fatalf("growing committed no page metadata (%d bytes before and after): the test tests nothing", meta)
	}
	if n := k.held.Load(); n > 0 {
		t.Fatalf("%d of %d system calls made holding the heap lock", n, k.calls.Load())
	}
	for _, p := range ps {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, h)
}
