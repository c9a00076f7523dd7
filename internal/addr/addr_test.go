package addr

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPointerOffHeap maps a page, writes through the pointer Pointer makes
// of its address and reads the byte back through the mapping's own slice.
func TestPointerOffHeap(t *testing.T) {
	b, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	base := uintptr(unsafe.Pointer(&b[0]))
	p := Pointer(base + 100)
	*(*byte)(p) = 42
	if b[100] != 42 || uintptr(p) != base+100 {
		t.Fatalf("wrote through %p (base %#x): byte 100 is %d, want 42", p, base, b[100])
	}
}
