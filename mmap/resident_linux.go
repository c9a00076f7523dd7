//go:build linux && (amd64 || arm64)

package mmap

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ResidentPages reports how many OS pages of [addr, addr+n) are resident,
// as mincore(2) sees them: what tests and tools use to prove a range was
// released (or touched) without reading /proc. addr must be page-aligned;
// an unmapped page in the range is an error (ENOMEM). It goes straight to
// the kernel, not through a Kernel seam: it changes nothing.
func ResidentPages(addr, n uintptr) (int, error) {
	if n == 0 {
		return 0, nil
	}
	ps := PageSize()
	vec := make([]byte, (n+ps-1)/ps)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, addr, n, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return 0, fmt.Errorf("mmap: mincore(%#x, %d): %w", addr, n, e)
	}
	c := 0
	for _, v := range vec {
		c += int(v & 1)
	}
	return c, nil
}
