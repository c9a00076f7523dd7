package pages

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/offheap/offheap/mmap"
)

// overlapsMapping reports whether any line of /proc/self/maps overlaps
// [base, base+size): whether the kernel still has anything mapped there.
func overlapsMapping(t *testing.T, base, size uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rng, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, _ := strings.Cut(rng, "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad maps line %q", sc.Text())
		}
		if uintptr(l) < base+size && uintptr(h) > base {
			return true
		}
	}
	return false
}

// A Close whose munmap fails leaves the metadata mapped and the allocator
// closable: the retry unmaps it, and only a Close after that says errClosed.
// Before the fix the failed Close forgot the mapping and the retry said
// errClosed, leaking it.
func TestCloseRetryAfterFailedUnmap(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	a, err := newAllocatorKernel(testBase, 4*ChunkBytes, maxLevels, fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := grow(a, testBase, ChunkPages); err != nil {
		t.Fatal(err)
	}
	base, size := a.metaAddr()
	fi.FailNth(mmap.OpRelease, 1)
	if err := a.Close(); !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("Close with munmap failing = %v, want an error wrapping mmap.ErrInjected", err)
	}
	if !overlapsMapping(t, base, size) {
		t.Fatal("metadata unmapped although munmap failed")
	}
	if _, _, err := a.Alloc(1); !errors.Is(err, errClosed) {
		t.Errorf("Alloc after a failed Close = %v, want errClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close retry = %v, want nil", err)
	}
	if overlapsMapping(t, base, size) {
		t.Errorf("metadata [%#x, +%#x) still mapped after the retry", base, size)
	}
	if err := a.Close(); !errors.Is(err, errClosed) {
		t.Errorf("Close after a successful one = %v, want errClosed", err)
	}
	if got := fi.Calls(mmap.OpRelease); got != 2 {
		t.Errorf("munmaps = %d, want 2 (the failed one and the retry)", got)
	}
}
