// Package pages is part of offheap's engine: arena imports it, and it makes
// no compatibility promise. Programs import arena (and arena/arenahttp).
//
// It decides which 8 KiB heap pages of one address-space
// reservation are free, in use, or free and returned to the kernel
// ("scavenged"). It hands out runs of pages, lowest address first, and
// never touches the pages themselves: only its own metadata.
//
// # Bitmaps
//
// The reservation is cut into chunks of ChunkPages (512) pages, 4 MiB. Each
// chunk has two 512-bit bitmaps: in use, and scavenged. A page is free when
// its in-use bit is clear; a free page may also carry the scavenged bit,
// meaning its physical memory went back to the kernel and touching it again
// costs a fault. In-use pages never carry the scavenged bit: allocating a
// page clears it and reports how many of the run's pages had it, so the
// caller knows how much memory it must commit again. Grown pages start
// scavenged, because fresh address space has no physical pages behind it.
//
// # Summaries and the radix tree
//
// Scanning bitmaps for a run of n free pages would cost time in proportion
// to the heap. Instead each chunk has a summary: three run lengths, packed
// 21 bits each in a uint64 - the free run at the chunk's start, the longest
// free run inside it, and the free run at its end. Summaries merge: the
// summary of several adjacent blocks follows from theirs, since a free run
// that crosses a border is the end run of one block plus the start run of
// the next. So fanOut (8) chunk summaries merge into one summary for 32 MiB,
// eight of those into one for 256 MiB, and so on: a radix tree whose levels
// are sized to the reservation, at most five levels, where one summary of
// the top level covers at most 2^21 pages (16 GiB, the most 21 bits count).
// A reservation over 128 GiB has a top level wider than eight entries; a
// bitmap of its non-empty entries lets a search skip the full ones a word at
// a time.
//
// Finding the lowest run of n free pages walks down from the top. At each
// level it looks at the entries in address order, carrying along the free
// run that ends at the previous entry: if that run plus an entry's start
// run reaches n, the answer is known exactly without going deeper (this is
// how runs spanning many chunks are found); otherwise the first entry whose
// longest run is at least n holds the answer, and the walk continues among
// its eight children, and at last in its chunk's bitmap. The cost is
// O(levels), one cache line per level, whatever the heap's size.
//
// After a change to a chunk's bitmap its summary is recomputed (usually from
// the old summary and the run around the changed pages, without rescanning
// the chunk), then its ancestors, stopping at the first level that comes out
// unchanged - which, in a fragmented heap, is mostly the leaf itself.
//
// # The search hint
//
// The allocator keeps a page index below which every page is in use. A
// search starts there, and when the run fits inside the chunk that holds the
// hint (the common case for small runs) it is found from that chunk's bitmap
// alone, in O(1), without walking the tree. Allocation moves the hint up to
// the lowest free page it saw; freeing or growing below it moves it down.
//
// # Scavenging
//
// ScavengeCandidate serves the scavenger from the top of the heap down, so
// that memory is returned far from where allocation happens (lowest first).
// It takes an aligned run of free unscavenged pages and marks it in use, so
// that the caller can madvise it with the lock dropped and then give it back
// with FreeScavenged. A bitmap over chunks records which may hold free
// unscavenged pages; it is set when pages are freed and cleared lazily when
// a search finds a chunk with none, so repeated searches do not rescan a
// released heap.
//
// # The page cache
//
// A Cache is one worker's private block of CachePages (64) aligned pages:
// two uint64 bitmaps (free, scavenged) and a base address. AllocCache takes
// the block holding the lowest free page under the heap lock and marks all
// its free pages in use; afterwards the worker serves runs of fewer than
// CacheMaxRun pages from it with a few bit operations and no lock, and
// FlushCache gives what is left back, scavenged bits included.
//
// # Locking
//
// An Allocator is not safe for concurrent use: every method but CommitGrow
// is called with the heap lock held by the caller, and none of them takes
// a lock or makes a system call (Close aside, which runs once the heap is
// quiet). Growing is split in two so that the system calls stay outside
// the heap lock: CommitGrow commits (mprotect) the metadata that new
// chunks need, without the heap lock, under the metadata's own mutex,
// which only CommitGrow and Close take and which may be held across the
// mprotect; then Grow, under the heap lock, only sets bits and summaries,
// after checking that the metadata is committed. CommitGrow may run
// concurrently with itself and with every method but Close: it touches
// only the committed-page bitmap and count, written under its mutex and
// read with atomic loads. A Cache belongs to one worker at a time; its
// Alloc touches nothing shared.
//
// # Metadata memory
//
// All the bitmaps and summaries live in one mapping reserved through package
// mmap, off the Go heap: the GC never scans them and they hold no Go
// pointers. The part that grows with the reservation (chunk bitmaps, lower
// summary levels: about 136 bytes per 4 MiB chunk) is committed only as
// chunks are grown, so a 1 TiB reservation with 64 MiB grown keeps well
// under 1 MiB of metadata resident. Two bits per chunk (grown, may need
// scavenging) and the top summary level are committed up front - 64 KiB
// for a 1 TiB reservation - and their untouched pages cost no memory either.
package pages
