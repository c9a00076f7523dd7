//go:build linux && (amd64 || arm64)

package mmap

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Real returns the Kernel that makes the real system calls. It holds no
// state; every call returns an equal value.
func Real() Kernel { return realKernel{} }

// realKernel issues the raw system calls. It works in uintptrs so no Go
// slice ever describes off-heap memory, and it does no checks of its own.
type realKernel struct{}

// noFD is the file descriptor argument for an anonymous mapping.
const noFD = ^uintptr(0) // -1

func (realKernel) Mmap(length uintptr, prot, flags int) (uintptr, error) {
	addr, _, e := unix.Syscall6(unix.SYS_MMAP, 0, length, uintptr(prot), uintptr(flags), noFD, 0)
	if e != 0 {
		return 0, e
	}
	return addr, nil
}

func (realKernel) Munmap(addr, length uintptr) error {
	if _, _, e := unix.Syscall(unix.SYS_MUNMAP, addr, length, 0); e != 0 {
		return e
	}
	return nil
}

func (realKernel) Mprotect(addr, length uintptr, prot int) error {
	if _, _, e := unix.Syscall(unix.SYS_MPROTECT, addr, length, uintptr(prot)); e != 0 {
		return e
	}
	return nil
}

func (realKernel) Madvise(addr, length uintptr, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// SetVMAName names [addr, addr+length) with prctl(PR_SET_VMA,
// PR_SET_VMA_ANON_NAME). An empty name clears the name. The kernel's
// EINVAL (no CONFIG_ANON_VMA_NAME, or a kernel older than 5.17) is
// returned as is; Mapping.SetName decides to ignore it.
func (realKernel) SetVMAName(addr, length uintptr, name string) error {
	var p *byte
	if name != "" {
		var err error
		if p, err = unix.BytePtrFromString(name); err != nil {
			return errors.Join(ErrInvalidName, err)
		}
	}
	_, _, e := unix.Syscall6(unix.SYS_PRCTL, unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME,
		addr, length, uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return e
	}
	return nil
}
