package pages

// api.go declares the package's constants, errors and types; the methods
// documented with them live in alloc.go, cache.go and scavenge.go.

import (
	"errors"

	"github.com/offheap/offheap/sizeclasses"
)

// The heap page size is the size-class table's: classes are cut to whole
// pages, so the generated table defines it and this package refers to it.
const (
	pageShift   = sizeclasses.PageShift
	PageSize    = sizeclasses.PageSize // 8 KiB heap page
	ChunkPages  = 512                  // pages per chunk (one bitmap word-set)
	ChunkBytes  = ChunkPages * PageSize
	CachePages  = wordBits // pages in one worker page cache block: one bitmap word
	CacheMaxRun = 16       // the page cache serves runs of fewer than this many pages
)

var (
	ErrNoSpace      = errors.New("pages: no free run of that length in the grown heap")
	errInvalidRange = errors.New("pages: range misaligned, empty or outside the allocator")
	errNotAllocated = errors.New("pages: range is not wholly allocated")
	errAlreadyInUse = errors.New("pages: range is not wholly free")
	errAlreadyGrown = errors.New("pages: range already grown")
	errClosed       = errors.New("pages: allocator closed")
	// errNotCommitted: Grow was called for chunks whose metadata no
	// CommitGrow committed, a mistake of the caller's.
	errNotCommitted = errors.New("pages: metadata of the range not committed (CommitGrow first)")
	// errCorrupt: the allocator's summaries disagree with its bitmaps, an
	// internal invariant broken. Returned, not panicked, so that a caller
	// holding a lock can release it before it panics.
	errCorrupt = errors.New("pages: allocator state corrupt")
)

// State of one heap page.
type State uint8

const (
	NotGrown      State = iota
	Free                // free, physical memory may be present
	FreeScavenged       // free and returned to the kernel
	InUse
)

func (s State) String() string {
	switch s {
	case NotGrown:
		return "NotGrown"
	case Free:
		return "Free"
	case FreeScavenged:
		return "FreeScavenged"
	case InUse:
		return "InUse"
	}
	return "State(?)"
}

// Stats are counts in pages.
type Stats struct {
	Grown, Free, Scavenged, LongestFree uintptr // Scavenged counts free scavenged pages
}

// Cache is a worker's private block of CachePages aligned pages, taken under
// the heap lock, used without it. The zero Cache is empty. Bit i of
// freeBits set means page i (at base + i*PageSize) is free; bit i of
// scavBits set means page i is scavenged.
type Cache struct {
	base     uintptr
	freeBits uint64
	scavBits uint64
}
