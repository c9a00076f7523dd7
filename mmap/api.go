package mmap

// api.go declares the package's errors, operations and modes, and the
// Kernel seam. The implementations live in errors.go (OpError, Op names),
// kernel_linux.go (Real), inject.go (FaultInjector) and mapping.go
// (Mapping, Reserve).

import "errors"

// Named errors. Every failure is wrapped in *OpError naming the operation and
// the range; errors.Is works through it.
var (
	ErrMisaligned = errors.New("mmap: address or length not aligned to the OS page size")
	ErrOutOfRange = errors.New("mmap: range outside the mapping")
	ErrReleased   = errors.New("mmap: mapping already released")
	ErrInjected   = errors.New("mmap: injected fault")
	// ErrInvalidMode: Decommit was given a DecommitMode it does not know.
	ErrInvalidMode = errors.New("mmap: unknown decommit mode")
	// ErrInvalidName: SetName was given a name the kernel would reject
	// (too long, or holding a character /proc/PID/maps cannot show).
	ErrInvalidName = errors.New("mmap: invalid VMA name")
)

// Op names a memory operation; used in OpError and for fault injection.
type Op int

const (
	OpReserve Op = iota
	OpCommit
	OpDecommit
	OpRelease
	OpHugePage
	OpName
)

// DecommitMode says how Decommit gives physical pages back.
type DecommitMode int

const (
	DecommitDontNeed DecommitMode = iota // MADV_DONTNEED: RSS drops now, pages read back as zero
	DecommitFree                         // MADV_FREE: cheaper, RSS drops under pressure, contents undefined
	DecommitStrict                       // MADV_DONTNEED then PROT_NONE: access faults until Commit
)

// Kernel is the seam to the real system calls. Real() is the default;
// FaultInjector wraps one to fail chosen calls.
//
// Addresses and lengths are raw uintptrs; implementations do no checking of
// their own (Mapping checks before it calls). Errors are the kernel's errno
// (a unix.Errno) or, from a FaultInjector, ErrInjected.
type Kernel interface {
	Mmap(length uintptr, prot, flags int) (uintptr, error)
	Munmap(addr, length uintptr) error
	Mprotect(addr, length uintptr, prot int) error
	Madvise(addr, length uintptr, advice int) error
	SetVMAName(addr, length uintptr, name string) error
}
