//go:build linux && (amd64 || arm64)

package mmap

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// FaultInjector wraps a Kernel and makes chosen calls fail with ErrInjected
// instead of reaching the wrapped Kernel. Safe for concurrent use.
//
// It counts Kernel calls, sorting each into an Op by its arguments:
//
//	Mmap                                   OpReserve
//	Mprotect to anything but PROT_NONE     OpCommit
//	Mprotect to PROT_NONE                  OpDecommit
//	Madvise MADV_HUGEPAGE, MADV_NOHUGEPAGE OpHugePage
//	Madvise, any other advice              OpDecommit
//	Munmap                                 OpRelease
//	SetVMAName                             OpName
//
// One Mapping method makes one Kernel call, except a strict Decommit, which
// makes two OpDecommit calls: the madvise, then the mprotect. So after
// FailNth(OpDecommit, 2), a strict Decommit has its madvise succeed and its
// mprotect fail: the way to test a half-done strict decommit.
type FaultInjector struct {
	k Kernel

	mu    sync.Mutex
	calls [numOps]int
	fail  [numOps][]int // call numbers (1-based, absolute) that must fail
}

// NewFaultInjector returns a FaultInjector that passes calls to k (nil
// means Real()) until told to fail some.
func NewFaultInjector(k Kernel) *FaultInjector {
	if k == nil {
		k = Real()
	}
	return &FaultInjector{k: k}
}

// FailNth makes the n-th (1-based) future call of op fail with ErrInjected:
// FailNth(op, 1) fails the very next one. Calls may be queued: FailNth(op,1)
// and FailNth(op,3) fail the next and the one after that but one. It panics
// on an unknown op or n < 1, which are mistakes in the test.
func (f *FaultInjector) FailNth(op Op, n int) {
	if op < 0 || int(op) >= numOps || n < 1 {
		panic(fmt.Sprintf("mmap: FailNth(%v, %d): bad argument", op, n))
	}
	f.mu.Lock()
	f.fail[op] = append(f.fail[op], f.calls[op]+n)
	f.mu.Unlock()
}

// Calls reports how many calls of op the injector has seen so far, failed
// ones included.
func (f *FaultInjector) Calls(op Op) int {
	if op < 0 || int(op) >= numOps {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// enter counts one call of op and reports whether it must fail.
func (f *FaultInjector) enter(op Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	n := f.calls[op]
	for i, want := range f.fail[op] {
		if want == n {
			last := len(f.fail[op]) - 1
			f.fail[op][i] = f.fail[op][last]
			f.fail[op] = f.fail[op][:last]
			return ErrInjected
		}
	}
	return nil
}

func (f *FaultInjector) Mmap(length uintptr, prot, flags int) (uintptr, error) {
	if err := f.enter(OpReserve); err != nil {
		return 0, err
	}
	return f.k.Mmap(length, prot, flags)
}

func (f *FaultInjector) Munmap(addr, length uintptr) error {
	if err := f.enter(OpRelease); err != nil {
		return err
	}
	return f.k.Munmap(addr, length)
}

func (f *FaultInjector) Mprotect(addr, length uintptr, prot int) error {
	op := OpCommit
	if prot == unix.PROT_NONE {
		op = OpDecommit
	}
	if err := f.enter(op); err != nil {
		return err
	}
	return f.k.Mprotect(addr, length, prot)
}

func (f *FaultInjector) Madvise(addr, length uintptr, advice int) error {
	op := OpDecommit
	if advice == unix.MADV_HUGEPAGE || advice == unix.MADV_NOHUGEPAGE {
		op = OpHugePage
	}
	if err := f.enter(op); err != nil {
		return err
	}
	return f.k.Madvise(addr, length, advice)
}

func (f *FaultInjector) SetVMAName(addr, length uintptr, name string) error {
	if err := f.enter(OpName); err != nil {
		return err
	}
	return f.k.SetVMAName(addr, length, name)
}
