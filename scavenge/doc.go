// Package scavenge is part of offheap's engine: arena imports it, and it makes
// no compatibility promise. Programs import arena (and arena/arenahttp).
//
// It is offheap's policy for giving free memory back to the
// kernel: how much to keep, when to release the rest, and how fast. It
// knows nothing of spans or bitmaps; it drives a heap through the two
// methods of Heap (Usage and Release), and reads time through an injected
// clock, so tests run it step by step on a fake heap and a fake clock.
// It has no package-level mutable state.
//
// # The goal
//
// A heap keeps Goal(inUse) = RetainBytes + RetainFraction × inUse bytes of
// free memory committed (64 MiB + 10 % by default), inUse being the bytes
// in spans (arena's Stats.HeapInuse): a cushion, so a program that frees
// and reallocates does not pay a release and a refault (of the order of a
// microsecond per 4 KiB page) on every swing. Free memory above the goal
// is due for release once it has been above the goal for Delay (1 s by
// default). Precisely: the heap is sampled every Delay/8 and the amount
// due is the least excess seen over the last Delay, capped by the excess
// now. A burst of frees that is reallocated within the delay is never
// released.
//
// The promise: free committed memory (arena's Stats.ScavengeFreeCommitted)
// that stays free comes down to within MinBatch (64 KiB) of the goal
// between Delay and Delay + Delay/8 after it was freed, plus the time the
// release takes (Pacing, below: Delay/4 when a core can do it in that
// time), whatever the size of the free runs: single 8 KiB pages between
// live spans go back like whole huge pages do. Measured by a process's
// resident memory, the heap's mapping holds at most HeapInuse + the goal
// + what the promise does not cover: free pages in worker page caches (at
// most 64 per P or Cache, taken for the next spans) and the free slots of
// spans that still hold a live object, which are in HeapInuse.
//
// Under a memory limit, committed memory above 95 % of the limit is due at
// once, so allocations rarely have to release memory themselves (the heap
// does that synchronously when they must).
//
// # Pacing
//
// Each Step releases at most one batch, then says how long to sleep so
// that release work is a chosen share f of wall time: sleep = work ×
// (1/f − 1). In steady state (little due) f is 1 % of one core. But
// releasing 1 GiB with MADV_DONTNEED costs tens of milliseconds of CPU,
// which at 1 % would take seconds: a released GiB would show in
// RSS long after it was freed. So f follows the backlog: at the start of
// a cycle (and whenever the backlog grows) f is set to what releases the
// whole backlog within Delay/4 at the measured cost per byte (a smoothed
// average of recent steps, starting from 64 ps/B), clamped to [1 %, 100 %],
// and it does not drop as the backlog shrinks, so a burst's tail is not
// slowed down. A GiB due thus costs its tens of milliseconds of CPU spread
// over a fraction of a second, well inside "released within ~2 s of the
// free" (BENCHMARKS.md has the figures). The cap is a whole
// core, not less, because the cost per byte is measured in wall time: on
// a machine whose cores are busy each step takes longer than its work,
// and a lower cap would multiply that delay (with half a core, a GiB's
// release ran past 2 s on a busy two-core machine). The bursts are paid for
// by the program's own frees: releasing a page costs roughly a tenth of
// what faulting it in cost, so release work is bounded by a fraction of
// the program's own page-fault work, and a heap whose free memory sits at
// or below the goal costs only the sampling, ~1 µs eight times a second.
//
// A sleep cannot be short: a timer asked for 10 µs fires after ~0.4 ms
// here, one asked for 100 µs after ~1.1 ms. A burst of short steps, each
// followed by its own pause of a few hundred microseconds, would thus run
// several times slower than its pace; on a fragmented heap, whose steps
// release a few hundred KiB each, a GiB took seconds. So pauses shorter
// than minSleep (1 ms) are owed, the next step runs at once, and the debt
// is slept in one go once it reaches a millisecond: the share f holds on
// average whatever the size of a step.
//
// # Batches, runs and what a release costs
//
// One madvise(MADV_DONTNEED) costs a fixed part per call and a part per
// page. Measured here (2 vCPU KVM, Linux 6.18, from Go with its other
// threads running, on a busy machine), releasing resident 8 KiB heap pages:
//
//	run length         per call    per 4 KiB page, call included
//	1 page (8 KiB)       3.5 µs      1.75 µs
//	8 pages (64 KiB)    11 µs        0.70 µs
//	64 pages (512 KiB)  42 µs        0.33 µs
//	512 pages (4 MiB)  250 µs        0.24 µs
//	released pages      0.35 µs      ~0.3 ns
//
// so a call costs ~1-3 µs fixed (0.95 µs single-threaded on a quiet
// machine, /work/shared/REFERENCE.md; more with other threads to shoot
// down TLBs) and ~0.24 µs per resident 4 KiB page, while pages already
// released cost next to nothing. Releasing a GiB scattered in single
// pages thus costs ~0.1-0.5 s of CPU, against ~60 ms for a GiB of
// whole huge pages; that is why the cushion exists and why releases wait.
// But no run is too small to release: memory kept because it is split
// into short runs is memory the goal does not account for (a 90 %
// delete on an 8 M-key cache once left ~600 MB committed this way, issue 14).
//
// A step releases up to maxBatch (4 MiB) in one of two ways:
//
//   - one run of whole, aligned 2 MiB blocks (transparent huge pages),
//     while the cycle still finds such runs; then
//   - the free runs of any length, single pages included, of the highest
//     chunks that hold any, at most 64 runs (so at most 64 madvise calls,
//     ~0.1-0.2 ms), taken from the page allocator in one lock hold and
//     given back in one (the page summaries are updated once per chunk,
//     not once per run). They are released in address order, one call per
//     stretch of adjacent runs; two runs of a chunk separated by at most
//     64 pages that are all free and already released are taken with
//     their gap and released by one call (the gap costs ~0.3 ns a page;
//     not under a memory limit, where the gap would count as committed
//     while the call runs).
//
// MinBatch (64 KiB) is the least excess a step acts on, not a minimum
// run. Runs are taken highest address first: allocation is
// address-ordered first fit, so the top of the heap is what it reuses
// last.
//
// # Huge pages
//
// Whole huge pages go back before any huge page is broken up: each cycle
// asks first for runs of whole, aligned 2 MiB blocks, and only once it
// finds none (a pass over the chunks under the lock, ~10 ns a chunk with
// no free run that long, so it is not repeated in that cycle) releases
// runs of any length. Since only the excess above
// the goal is released, the retained cushion tends to be made of
// fragments: free pages inside huge pages that are mostly in use stay
// committed when the excess is small, and those huge pages stay whole.
// Heap Config.HugePages asks the kernel for huge pages (MADV_HUGEPAGE);
// with THP "madvise" nothing is huge without it. (With max_ptes_none at
// its default, khugepaged may still re-collapse a mostly free 2 MiB
// range; golang/go#64332. We never call MADV_COLLAPSE, and no madvise runs
// under a lock: golang/go#63334.) That is the one case where resident
// memory can stay above what the goal promises: with HugePages, pages
// released from inside a partly used 2 MiB range can come back, zeroed,
// when khugepaged collapses the range (max_ptes_none 511 lets one
// resident 4 KiB page be enough). Without HugePages, under THP "madvise",
// it does not happen.
//
// # Why MADV_DONTNEED by default
//
// MADV_FREE is cheaper (about a quarter of the cost per page), but the
// kernel takes MADV_FREE'd pages only under memory pressure, so RSS stays
// high and users read it as a leak; Go went back to MADV_DONTNEED by
// default for that reason (golang/go#42330), and mimalloc users hit the
// same (mimalloc#776). DONTNEED'd private anonymous pages also read back as
// zero, which lets a span made wholly of released pages skip its clear;
// under MADV_FREE every reused span is cleared.
//
// # Strict mode and the mapping budget
//
// Strict mode (DONTNEED then PROT_NONE, so touching released memory
// faults) changes protections, and every protection change inside a
// mapping splits it; the kernel refuses past vm.max_map_count (65530 by
// default), and a Go allocator has crashed on that (matrixone#28736). So in
// strict mode only whole, aligned 4 MiB chunks become PROT_NONE (smaller
// runs get MADV_DONTNEED alone), and re-committing any page of a PROT_NONE
// chunk makes the whole chunk read/write again. PROT_NONE ranges are thus
// unions of whole chunks, and a heap with G grown chunks has at most G + 2
// mappings (checkerboard worst case; adjacent chunks merge), 16 386 for
// the default 64 GiB reservation. The cost is precision: protection is per
// chunk, and a chunk partly reused and released again in pieces stays
// read/write (its released pages read as zero) until it is wholly free of
// data and released whole. Strict mode clears every reused span: a
// re-commit that fails hands its pages back as released even if some held
// data.
//
// # Locking rule
//
// The heap lock covers bitmap and counter updates only. A release step
// is: lock, take the runs out of the page allocator (marked in use so
// nobody allocates them), unlock; madvise/mprotect with no lock; lock,
// give them back as released (or, if the kernel refused, as plain free
// pages, retried later: nothing is lost), unlock. The heap records the
// longest hold of those sections (Stats.ScavengeMaxLockHold); a step of
// 64 single-page runs holds the lock ~2-3 µs each time (median, the
// BenchmarkScavLockHold figure).
package scavenge
