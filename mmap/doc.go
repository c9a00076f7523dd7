// Package mmap is part of offheap's engine: arena imports it, and it makes
// no compatibility promise. Programs import arena (and arena/arenahttp).
//
// One part is meant for programs: the kernel seam (Kernel, Real,
// FaultInjector, NewFaultInjector, Op and its values, OpError and the
// named errors) stays usable from outside, because a program tests its own
// handling of kernel failures by passing a FaultInjector, or its own Kernel,
// as arena.Config.Kernel.
//
// The package is offheap's only door to the kernel's memory system calls:
// it reserves address space, commits and decommits parts of it, gives it
// back, and passes hints. Everything above it (pages, spans, arena) deals in
// addresses inside a Mapping and never calls mmap, mprotect or madvise
// itself.
//
// # Reserve first, pay later
//
// A heap wants one large, contiguous, never-moving range of addresses so
// that page indices are simple offsets and a pointer's page is a subtraction
// away. Reserve maps the whole range at once as PROT_NONE with
// MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE. PROT_NONE means no access is
// possible, so nothing can accidentally touch memory the heap has not handed
// out; MAP_NORESERVE means the kernel does not charge the range against the
// overcommit limit or swap. The result costs one VMA and no physical memory
// and no page tables: a 1 TiB reservation leaves the resident set size where
// it was (the tests check this). Physical pages appear only when a
// committed page is first touched, and the kernel zeroes them.
//
// # Commit and decommit
//
// Commit makes a page-aligned sub-range readable and writable with
// mprotect. Decommit hands the physical pages back, in one of three modes:
//
//   - DecommitDontNeed (the default) uses MADV_DONTNEED. The pages leave the
//     resident set at once and the range reads back as zeros, yet stays
//     accessible, so reusing it needs no further system call: the next touch
//     faults in a fresh zero page. Its cost is that refault.
//   - DecommitFree uses MADV_FREE. The kernel only marks the pages as
//     reclaimable and takes them when it is short of memory; until then the
//     resident set stays as high as before, and a later write simply keeps
//     the page. It is cheaper per page, but monitoring sees no drop in RSS,
//     which users have repeatedly reported as a leak; the Go runtime tried it
//     by default and went back to MADV_DONTNEED for that reason. Contents
//     after MADV_FREE are undefined: old data or zeros. Kernels without it
//     (before 4.5) get MADV_DONTNEED instead, which keeps every promise.
//   - DecommitStrict uses MADV_DONTNEED and then mprotect(PROT_NONE), so any
//     use of decommitted memory faults instead of silently reading zeros: a
//     debugging mode that catches use-after-free. Each mprotect of a
//     sub-range can split the mapping's VMA in two or three, and a process
//     may have only vm.max_map_count VMAs (65530 by default). A heap that
//     strictly decommits many scattered ranges can reach that limit, after
//     which mprotect and even munmap fail with ENOMEM. Keep strict ranges
//     few and large, or use it in tests.
//
// Nothing is ever half done in silence. Each method checks its range first
// (page alignment from the OS page size, n > 0, inside the mapping, no
// overflow) and makes no system call if the check fails. A failed call
// returns *OpError naming the operation and the range, wrapping one of the
// named errors or the kernel's errno, so errors.Is(err, ErrMisaligned) and
// errors.Is(err, unix.ENOMEM) both work. Decommit's documentation says what
// state a range is in when its second step fails.
//
// HugePage passes MADV_HUGEPAGE. With the common THP setting "madvise" only
// ranges marked with HugePage get huge pages. ReserveAligned gives a base
// aligned to such a block.
//
// SetName labels the mapping with PR_SET_VMA_ANON_NAME so /proc/PID/maps
// shows [anon:NAME]. Kernels that cannot (before 5.17, or built without
// CONFIG_ANON_VMA_NAME) answer EINVAL, and SetName then returns nil.
//
// # The seam
//
// A Mapping makes its system calls through a Kernel. Real() makes the real
// ones through golang.org/x/sys/unix, in uintptrs, so no Go slice ever
// claims to cover off-heap memory. FaultInjector wraps any Kernel, counts
// calls per Op (working out the Op from each call's arguments, see its
// documentation) and fails chosen ones with ErrInjected: tests can make the
// third commit fail, or the mprotect half of a strict decommit, and check
// that the layers above recover.
//
// # State and concurrency
//
// The package has no mutable package-level state: any number of Mappings,
// for any number of heaps, live side by side. A Mapping's range methods may
// run concurrently on disjoint ranges; they share a read lock that Release
// takes for writing, so no call can reach the kernel after the munmap, when
// the addresses may already belong to someone else. Callers must not hold
// their own heap lock across these calls: each one is a system call of a
// few microseconds, more when other threads force a TLB shootdown.
package mmap
