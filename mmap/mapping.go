//go:build linux && (amd64 || arm64)

package mmap

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// Protections and flags. Named so each call site says what it asks for.
const (
	// protReserved: reserved address space; any access faults.
	protReserved = unix.PROT_NONE
	// protCommitted: committed memory, readable and writable, never executable.
	protCommitted = unix.PROT_READ | unix.PROT_WRITE
	// reserveFlags: private anonymous memory with no swap/commit charge
	// taken up front (MAP_NORESERVE), so a reservation of any size costs
	// only a VMA until pages are touched.
	reserveFlags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE
)

// Limits of a VMA name, as the kernel checks them (mm/madvise.c and
// kernel/sys.c): at most 80 bytes with the terminating NUL, printable
// ASCII without the characters that would confuse /proc/PID/maps parsers.
const (
	maxNameLen   = 80 - 1
	badNameChars = "\\`$[]"
)

// PageSize returns the OS page size, the unit of alignment for every
// Mapping method.
func PageSize() uintptr { return uintptr(unix.Getpagesize()) }

// Mapping is one reserved range of address space. Methods are safe for
// concurrent use on disjoint ranges.
//
// Concurrency: range operations hold a read lock, Release the write lock, so
// a Commit racing with Release either finishes first or sees ErrReleased; it
// can never touch an address the kernel has since handed to someone else.
// Operations on overlapping ranges from different goroutines are the
// caller's race: each call is atomic only as far as its system call is.
type Mapping struct {
	k        Kernel
	base     uintptr
	size     uintptr
	pageSize uintptr

	mu       sync.RWMutex // read: range operations; write: Release
	released bool
}

// Reserve maps size bytes PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE.
// k nil means Real(). size must be a positive multiple of the page size.
func Reserve(size uintptr, k Kernel) (*Mapping, error) {
	if k == nil {
		k = Real()
	}
	ps := PageSize()
	if size == 0 {
		return nil, &OpError{OpReserve, 0, size, ErrOutOfRange}
	}
	if size%ps != 0 {
		return nil, &OpError{OpReserve, 0, size, ErrMisaligned}
	}
	base, err := k.Mmap(size, protReserved, reserveFlags)
	if err != nil {
		return nil, &OpError{OpReserve, 0, size, err}
	}
	return &Mapping{k: k, base: base, size: size, pageSize: ps}, nil
}

// ReserveAligned is Reserve with a base address that is a multiple of
// align (a power of two, at least the page size), e.g. the 2 MiB of a huge
// page or a heap chunk. It over-reserves size+align and unmaps the excess
// on both sides, so the Kernel sees one Mmap and up to two Munmaps (the
// latter counted as OpRelease by a FaultInjector). If trimming fails, the
// whole over-reservation is unmapped and the error returned.
func ReserveAligned(size, align uintptr, k Kernel) (*Mapping, error) {
	if k == nil {
		k = Real()
	}
	ps := PageSize()
	if align < ps || align&(align-1) != 0 {
		return nil, &OpError{OpReserve, 0, size, ErrMisaligned}
	}
	if align == ps {
		return Reserve(size, k)
	}
	if size == 0 || size+align < size {
		return nil, &OpError{OpReserve, 0, size, ErrOutOfRange}
	}
	if size%ps != 0 {
		return nil, &OpError{OpReserve, 0, size, ErrMisaligned}
	}
	total := size + align
	raw, err := k.Mmap(total, protReserved, reserveFlags)
	if err != nil {
		return nil, &OpError{OpReserve, 0, size, err}
	}
	base := (raw + align - 1) &^ (align - 1)
	if head := base - raw; head > 0 {
		if err := k.Munmap(raw, head); err != nil {
			_ = k.Munmap(raw, total)
			return nil, &OpError{OpReserve, 0, size, err}
		}
	}
	if tail := raw + total - (base + size); tail > 0 {
		if err := k.Munmap(base+size, tail); err != nil {
			_ = k.Munmap(base, size+tail)
			return nil, &OpError{OpReserve, 0, size, err}
		}
	}
	return &Mapping{k: k, base: base, size: size, pageSize: ps}, nil
}

// Base returns the first address of the mapping. It stays valid as a
// number after Release, but must not be accessed.
func (m *Mapping) Base() uintptr { return m.base }

// Size returns the mapping's length in bytes.
func (m *Mapping) Size() uintptr { return m.size }

// check validates [addr, addr+n) for op. The caller holds m.mu (read).
func (m *Mapping) check(op Op, addr, n uintptr) error {
	var err error
	switch {
	case m.released:
		err = ErrReleased
	case addr%m.pageSize != 0 || n%m.pageSize != 0:
		err = ErrMisaligned
	case n == 0 || addr < m.base || n > m.size || addr-m.base > m.size-n:
		err = ErrOutOfRange
	default:
		return nil
	}
	return &OpError{op, addr, n, err}
}

// Commit makes [addr, addr+n) readable and writable (mprotect
// PROT_READ|PROT_WRITE). Physical pages arrive on first touch, zeroed by
// the kernel. On error part of the range may have changed protection (the
// kernel works VMA by VMA); treat the range as not committed.
func (m *Mapping) Commit(addr, n uintptr) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(OpCommit, addr, n); err != nil {
		return err
	}
	if err := m.k.Mprotect(addr, n, protCommitted); err != nil {
		return &OpError{OpCommit, addr, n, err}
	}
	return nil
}

// Decommit gives the physical pages of [addr, addr+n) back to the kernel.
//
//   - DecommitDontNeed: madvise(MADV_DONTNEED). RSS drops at once; the range
//     stays accessible and reads back as zeros.
//   - DecommitFree: madvise(MADV_FREE). Cheaper; the kernel takes the pages
//     only under memory pressure, so RSS stays high until then, and reads
//     return old contents or zeros. Where the kernel lacks MADV_FREE
//     (EINVAL, before 4.5) it falls back to MADV_DONTNEED, which keeps
//     every promise DecommitFree makes.
//   - DecommitStrict: MADV_DONTNEED, then mprotect(PROT_NONE), so a stray
//     access faults until Commit. Each strict range can split a VMA.
//
// On error no later step runs. If the madvise fails the range is still
// accessible and its contents are undefined (some pages may be gone). If a
// strict decommit's madvise succeeds and its mprotect fails, the error is
// returned (never swallowed) and the range is decommitted but still
// readable and writable: RSS released, contents zero. Retrying Decommit, or
// Commit to reuse the range, are both safe.
func (m *Mapping) Decommit(addr, n uintptr, mode DecommitMode) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(OpDecommit, addr, n); err != nil {
		return err
	}
	var err error
	switch mode {
	case DecommitDontNeed:
		err = m.k.Madvise(addr, n, unix.MADV_DONTNEED)
	case DecommitFree:
		err = m.k.Madvise(addr, n, unix.MADV_FREE)
		if errors.Is(err, unix.EINVAL) {
			err = m.k.Madvise(addr, n, unix.MADV_DONTNEED)
		}
	case DecommitStrict:
		if err = m.k.Madvise(addr, n, unix.MADV_DONTNEED); err == nil {
			err = m.k.Mprotect(addr, n, protReserved)
		}
	default:
		err = ErrInvalidMode
	}
	if err != nil {
		return &OpError{OpDecommit, addr, n, err}
	}
	return nil
}

// HugePage asks the kernel to back [addr, addr+n) with transparent huge
// pages (MADV_HUGEPAGE). A hint: it changes no contents. Only whole 2 MiB
// aligned blocks inside the range can be huge.
func (m *Mapping) HugePage(addr, n uintptr) error {
	return m.advise(OpHugePage, addr, n, unix.MADV_HUGEPAGE)
}

func (m *Mapping) advise(op Op, addr, n uintptr, advice int) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.check(op, addr, n); err != nil {
		return err
	}
	if err := m.k.Madvise(addr, n, advice); err != nil {
		return &OpError{op, addr, n, err}
	}
	return nil
}

// SetName names the whole mapping with prctl(PR_SET_VMA,
// PR_SET_VMA_ANON_NAME), so /proc/PID/maps shows it as [anon:NAME]. An
// empty name clears it. Names longer than 79 bytes or holding a
// non-printable character or one of \ ` $ [ ] fail with ErrInvalidName.
// Where the kernel cannot name mappings (before 5.17, or built without
// CONFIG_ANON_VMA_NAME: EINVAL) SetName returns nil: naming is a debugging
// aid, never a reason to fail.
func (m *Mapping) SetName(name string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.released {
		return &OpError{OpName, m.base, m.size, ErrReleased}
	}
	if !validName(name) {
		return &OpError{OpName, m.base, m.size, ErrInvalidName}
	}
	err := m.k.SetVMAName(m.base, m.size, name)
	if err == nil || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return &OpError{OpName, m.base, m.size, err}
}

func validName(name string) bool {
	if len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < ' ' || c > '~' {
			return false
		}
		for j := 0; j < len(badNameChars); j++ {
			if c == badNameChars[j] {
				return false
			}
		}
	}
	return true
}

// Release unmaps the whole mapping. Later calls of any method return
// ErrReleased (Release too). If munmap fails the mapping is left as it was
// and stays usable; Release may be retried.
func (m *Mapping) Release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		return &OpError{OpRelease, m.base, m.size, ErrReleased}
	}
	if err := m.k.Munmap(m.base, m.size); err != nil {
		return &OpError{OpRelease, m.base, m.size, err}
	}
	m.released = true
	return nil
}
