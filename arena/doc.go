// Package arena is offheap's public API: a memory allocator for Go programs
// whose memory the garbage collector never sees.
//
// # Shape
//
// A Heap reserves one range of address space (64 GiB by default, PROT_NONE
// and MAP_NORESERVE, so it costs nothing until used) and grows into it a
// chunk (4 MiB) at a time. Pages of 8 KiB are handed out by a bitmap page
// allocator (package pages) as spans; a span either holds one large object
// (more than 32 KiB) or is cut into equal slots of one size class (package
// sizeclasses). Span records, the page → span table and the page bitmaps
// all live in anonymous mappings and hold no Go pointers, so the Go GC's
// work does not grow with this heap.
//
// # The span allocation path
//
// allocSpan is the one way pages become a span, and it is built so that a
// slow system call never stalls other allocating goroutines:
//
//  1. A worker's page cache (64 aligned pages it took earlier) serves
//     spans of fewer than 16 pages with no lock at all.
//  2. Otherwise the heap lock is taken just to ask the page allocator for a
//     first-fit run and to count it; if nothing fits, whole chunks are
//     claimed under the lock, made read/write with the lock dropped
//     (with their page → span table entries), and handed back to the page
//     allocator as free and scavenged.
//  3. With no lock held, a span record is taken (the record pool commits
//     more of its mapping, its own lock dropped, when it runs out),
//     scavenged pages are re-committed (accounting only under
//     MADV_DONTNEED, whose pages stay mapped and read back as zero),
//     memory not known to be zero is cleared, and the record is filled in.
//  4. The span is published: the page → span table entries first, then the
//     state, with an atomic store. Lookups load the state last, so nobody
//     sees a half-built span.
//
// Freeing runs the other way: retract the state and the table entries,
// then take the heap lock only to clear the page bitmap.
//
// # Objects: caches, slots and remote frees
//
// A Cache owns a few spans per size class (up to 8, and at most 64 KiB
// of them per class: maxOwned, ownedBytes), one of which is current. Each
// slot of a span has a state byte (free, allocated); the Cache keeps a
// 64-bit window of free slots of one word of the current span and
// allocates with a count-trailing-zeros and a byte store: no lock, no
// atomic read-modify-write. Only the span's owner writes its state bytes.
//
// A free through the owning Cache, into any span it owns, is just as
// local: a byte store, and a bit in the class's ready mask when the span
// is not the current one. When the current span runs dry the Cache moves
// on to an owned span that had local frees, then to one with remote frees
// to collect, and only then to the central lists; when it owns all it may,
// the dry span goes back to them. Owning several spans matters for
// workloads that free objects in another order than they allocated them:
// with one span per class, most frees landed in spans the cache had
// already let go, as remote frees, and classes of 8 objects per span
// refilled every few allocations. A free from anywhere else (another
// Cache, Heap.Free on another P) validates the pointer by reading the
// slot's own state byte and, once its batch is published (below), sets
// the slot's bit in the span's freed bitmap with an atomic OR. The bit is both the
// arbiter between racing frees and the message to the owner, which
// collects freed bits with an atomic swap when its window runs dry. Spans
// that no cache owns sit on per-class central lists (partial and full)
// under a per-class lock. A remote free into such a span also just sets
// its bit and counts it; its publisher takes the class lock only when the span's
// uncollected frees reach an eighth of its slots (at least 4: relistAt in
// central.go), to move it from full to partial, and for its last live
// object (to free the span back to the page allocator). A cache taking a
// span from the partial lists collects its bits. So in the
// producer/consumer shape, where most frees are remote, the class lock is
// taken a few times per span, not once per free; and a cache refilling
// from a full span that has been freed into gets a batch of free slots
// per lock round trip, not the one or two it got when spans moved on
// their first free (larson with a live set too big for the caches spent
// its time there). The price is that up to an eighth of a full span (half
// of a span of fewer than 8 objects) may be freed and not yet reusable. The partial list is four
// lists by occupancy (as of when the span was listed), and a cache takes
// the fullest span there is: new objects fill dense spans while sparse
// ones drain and are freed, so after a mass delete the heap shrinks back
// towards its live size.
//
// Remote frees are batched (remotefree.go): after a first free into a
// 64-slot word of a span, which goes out at once, the freeing cache marks
// the slots of its next frees into that word remote-freed (a state byte
// store, which already refuses any other free of the object) and collects
// them in a bit mask; the next free into another word, the cache's
// allocation slow path or its Close publishes the mask with one atomic OR
// and one atomic add, and so does the free of a central span's last live
// object. In the producer/consumer shape this took the consumer's two
// contended atomics per free down to two per batch. What it delays: up to
// 64 freed objects per cache stay unusable, keeping their span, until the
// cache frees elsewhere, allocates on its slow path or closes; a per-P
// cache's batch waits for its P's next slow path.
//
// A free reads the page's entry in the span table, the span header's first
// line (state, owner, class, base, size, and the count of pending remote
// frees) and the slot's state byte; the freed bitmap only when a remote
// free is pending or the free is itself remote. It does not touch the
// object. The common free, into a span the freeing cache owns, runs in
// Cache.freeOwned (inlined table lookup, the checks, the byte store);
// everything else goes to Heap.free, which sorts out errors, debug
// poison, samples and remote frees.
//
// Zeroing happens at allocation, not at free. A free leaves the object's
// bytes as they are (the free of an object whose lines are cold would
// otherwise pay a memclr of memory nobody reads again soon), and marks the
// span as needing zeroing (spans.Span.NeedZero, one flag per span, set by
// the first free into it and kept until the record is reused). An
// allocation from such a span clears the object it hands out, on lines the
// caller is about to write anyway; a span that never had a free is handed
// out without clearing, because a new span's memory is known to be zero:
// it is cleared when built unless all its pages were released with
// MADV_DONTNEED (which reads back as zero), and under Decommit FREE or
// STRICT every reused span is cleared. Debug mode poisons freed objects
// instead and its slow path checks the poison, then clears, at allocation.
//
// # Heap.Alloc without a Cache
//
// Heap.Alloc and Heap.Free use one Cache per P (GOMAXPROCS of them),
// reached by pinning the goroutine to its P for the few nanoseconds of the
// fast path (see pcache.go for why this beats sharded caches behind
// mutexes). Refills that may block run unpinned. Free runs pinned up to
// the point where it would block (a class-0 span, a central list, an
// error), and continues unpinned from there.
//
// # Regions and typed allocation
//
// A Region bump-allocates through 64 KiB spans of its own (one atomic add
// per allocation, safe from many goroutines) and frees them all at once.
// New, MakeSlice, CloneBytes and CloneString put typed values off-heap;
// a type that holds Go pointers is refused (ErrPointerType, naming the
// field), a fact computed once per type.
//
// # Giving memory back
//
// A background scavenger (package scavenge) keeps RetainBytes plus a tenth
// of in-use memory free and committed and returns the rest to the kernel
// about ScavengeDelay after it became free, highest addresses first, in
// batches that keep huge pages whole where it can. It never holds the
// heap lock across madvise. Scavenge does the same for all free memory at
// once, and MemoryLimit makes an allocation scavenge before it fails.
//
// # Sampling: profiles, guards and debug checks
//
// ProfileRate, GuardSampleRate and Debug need the slow path to see chosen
// allocations. Rather than count down on every allocation, a cache's
// window of free slots is cut short so that the allocation due for a
// sample is the one that finds it empty (sample.go); with all three off,
// windows are never cut and the fast path is unchanged. A guarded object
// sits alone before a PROT_NONE page and is quarantined PROT_NONE when
// freed (guard.go); in Debug mode freed objects are poisoned and checked
// when handed out again (debug.go), and freed spans are quarantined
// PROT_NONE. When a range leaves the quarantine and the kernel refuses to
// make it read/write again, it goes back free and released but listed as
// PROT_NONE; the next span built on it re-commits and clears that part
// first, in every Decommit mode, or fails with ErrOutOfMemory if the
// kernel still refuses.
//
// Every panic a check raises (a write after free found by Debug's poison
// check, a racing double free found when freed bits are collected, an
// internal invariant) is an ordinary panic that recover can stop: it is
// raised with no lock of the heap held and not pinned to a P. A check that
// fails where the caller holds a lock or is pinned (the per-P fast path,
// the class locks, the heap lock) hands what it found back as a value, and
// the panic is raised once the caller has released them; the heap is left
// consistent and usable. A slot found written after free is retired: it
// keeps the corrupted bytes, is never handed out again and cannot be
// freed (Free returns ErrDoubleFree), so its span stays in use. A racing
// double free's second freed bit is dropped (the object was freed once)
// and its count taken back off Stats' Frees.
//
// # Errors and safety
//
// Free checks that the pointer lies in a published span, is the start of a
// slot (or of the large object), and that the slot is allocated and not
// already freed; otherwise it returns ErrInvalidPointer or ErrDoubleFree and
// changes nothing. Allocation failures return ErrOutOfMemory (reservation
// full, MemoryLimit reached after returning free memory to the kernel, or
// a commit the kernel refused); the heap stays usable. A failed decommit
// or release is absorbed: its pages count as committed and are retried.
// faultsweep_test.go fails every kernel call in turn to hold the heap to
// this.
//
// # Closing
//
// Close may race with any other call. Every call that touches heap memory
// or metadata runs in a section Close waits for before it unmaps anything
// (closing.go): the fast paths of Alloc and Free run pinned to their P,
// and re-read closed once pinned, which adds no atomic operation; every
// other path counts itself in an in-flight counter. Close sets closed,
// stops the world once (which cannot finish while a goroutine is pinned)
// and waits for the counter to drain; calls racing with it finish or
// return ErrClosed, later ones return ErrClosed. An explicit Cache's fast
// path is pinned as Heap.Alloc's is, for this. A failed munmap leaves the
// heap closed but closable: Close says what it could not unmap, and a
// retry unmaps it. Pointers from Alloc dangle after Close, and touching
// them faults: that is the caller's to prevent.
//
// # Locks, in order
//
// The per-class central locks and the heap lock are never held together
// (freeing an empty span drops the class lock first), except by Verify,
// which takes the heap lock and then each class lock. The heap lock covers
// page-bitmap updates and counters only.
// No lock is held across a system call, a clear of a span, or a loop over
// objects, and nothing blocking runs while a goroutine is pinned to its P.
// The per-P cache table's mutex (pcsMu, taken only when GOMAXPROCS
// changes) and a Region's mutex are held only around bookkeeping, never
// across taking or freeing a span.
//
// # Platforms and build tags
//
// offheap builds on linux/amd64 and linux/arm64 only; elsewhere the build
// stops with one error naming that requirement (mmap/unsupported.go says
// why). Heap.Alloc and Heap.Free pin the goroutine to its P with the
// runtime's procPin, reached by go:linkname. Building with the tag
// offheap_nolinkname (go build -tags offheap_nolinkname) does without
// linkname: each call then locks one of the per-P caches, picked at random,
// with a mutex, and counters use atomic adds, as race-detector builds do
// (sync_race.go). Results are the same; each Heap.Alloc/Free pays a lock,
// an explicit Cache's fast path an atomic add in place of the pin, and
// Close needs no stop-the-world.
//
// # What the GC sees
//
// Memory from a Heap is invisible to the Go garbage collector: it must not
// hold the only reference to Go-heap memory (a Go pointer stored there does
// not keep its target alive). Store plain data: numbers, arrays, structs of
// those, and offsets or pointers into this heap.
//
// # Handles, views and resizing
//
// A Handle (or a typed Ref[T]) is an object's address held as an integer:
// the GC neither scans nor needs it, so offheap records can refer to one
// another by Handle. Handle.Pointer and Ref.Get turn it back into a pointer
// through the Heap's base pointer, panicking on an address outside the
// heap; Bytes and View give []byte and []T views of a live object, checked
// against its usable size. None of them makes a dead Handle safe: a Handle
// is valid while its object is live and its Heap open, as a pointer is.
// UsableSize reports what a slot really holds, Realloc resizes in place
// within the size class and moves otherwise, and Append and Grow grow
// offheap slices into that slack before they move (freeing the old store).
//
// # Freeing what other goroutines may still be reading
//
// Free hands an object's slot to the next Alloc at once (which clears it,
// or in Debug mode Free poisons it), so freeing an object another
// goroutine is reading gives that reader zeros, poison or someone else's
// data, mid-read; nothing detects it. Two patterns avoid
// it:
//
//   - Copy under a lock: readers take a lock (or a read lock) and copy what
//     they need out of the object before releasing it; the writer unlinks
//     and frees the object while holding the lock. Simple, and readers pay
//     the lock.
//   - Epoch-based reclamation (Epoch): readers, one EpochReader each, wrap
//     each traversal in Enter and Exit, which take no lock; a writer unlinks
//     the object (an atomic store, so no new reader can reach it) and calls
//     Retire instead of Free. The object is freed once every reader that
//     was inside when it was unlinked has left. Readers must not keep a
//     pointer or Handle past Exit, and a reader that stays inside holds
//     every later retirement back (memory grows until it leaves).
//
// Either way, the unlink must come before the free: a reader that can
// still reach the object through the shared structure could find it after
// the grace period.
//
// # One budget for Go and offheap
//
// The Go runtime's memory limit (GOMEMLIMIT, debug.SetMemoryLimit) counts
// only the Go runtime's own memory, and MemoryLimit only a heap's: a
// process using both has two budgets to size. A Budget (NewBudget) is one
// figure for both, shared by every heap whose Config.Budget names it:
//
//   - The Go side: while the Budget is open it keeps the Go memory limit at
//     the budget less the heaps' committed memory (pages in spans plus free
//     pages not returned to the kernel, Stats.Committed), less one
//     hysteresis step: max(4 MiB, budget/128). It sets the limit again only
//     when committed memory has moved by more than a step since the last
//     setting, so a growing heap calls debug.SetMemoryLimit every few MiB,
//     not every span; being a step low, the limit leaves room for the
//     heaps to grow by a step before it is set again.
//   - The offheap side: an allocation that needs more committed memory is
//     refused with ErrOutOfMemory when the heaps' committed memory, plus
//     the Go runtime's memory, plus headroom for the Go heap (an eighth
//     of the Go runtime's memory, at least a step) would pass the budget.
//     The check is MemoryLimit's (the tighter of the two applies) and so is
//     the order: before failing the heap reads the Go runtime's memory
//     again and returns free memory to the kernel, its own first, then
//     that of the other heaps sharing the Budget.
//
// The Go runtime's memory is what GOMEMLIMIT counts: runtime/metrics'
// /memory/classes/total:bytes less /memory/classes/heap/released:bytes.
// It is read on the span allocation path when the last reading is a
// millisecond old or offheap has committed a step since (a read costs
// about half a microsecond), never on the fast path and never under the
// heap lock, and again before an allocation is refused. The headroom
// exists because the Go limit is soft: squeezed to its live data, the GC
// runs back to back, its CPU limiter lets the heap pass the limit, and the
// process passes the budget.
//
// How it meets the rest of the Go runtime:
//
//   - GOGC still paces the GC below the limit; the limit only makes it
//     collect sooner as offheap grows. With GOGC=off the limit is the only
//     trigger, and the Go heap grows until it meets the budget less
//     offheap's share.
//   - A limit set beforehand, by GOMEMLIMIT or debug.SetMemoryLimit, is
//     taken over: NewBudget records it and sets its own; Budget.Close
//     restores it, unless someone else has changed the limit since (their
//     setting is then left). A Budget that finds the limit changed under
//     it sets its own again at the next step and counts an override
//     (BudgetStats.GoLimitOverrides).
//   - If the Go heap alone needs more than the budget less offheap's
//     share, the GC works hard (up to its CPU limiter, about half the CPU)
//     to stay under the limit, and offheap refuses to grow: it never takes
//     memory the Go runtime is using. Idle Go memory goes back to the
//     kernel at the Go scavenger's pace (debug.FreeOSMemory does it at
//     once), which makes room for offheap again.
//   - One Budget per process should set the Go limit. A second one would
//     set it whenever its own heaps move, so the last to set wins; give the
//     others BudgetOptions.KeepGoLimit, which keeps only the offheap side.
//     The Budget holds no package-level state, so nothing refuses a second.
//
// Heap.Close takes the heap's committed memory out of its Budget (the Go
// limit rises by it). Budget.Close detaches the Budget: it no longer sets
// the Go limit nor bounds its heaps, which keep their own MemoryLimit. A
// heap with a Budget, like one with a MemoryLimit, takes every span's
// pages under the heap lock (the per-worker page caches are skipped), so
// that each commit is checked. Stats reports the Budget's figures beside
// the heap's (Budget, BudgetGoLimit, BudgetGoMemory, BudgetCommitted), and
// Budget.Stats has the rest.
package arena
