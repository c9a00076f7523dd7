package pages

// api.go declares the package's constants, errors and types; the methods
// documented with them live in alloc.go, cache.go and scavenge.go.

import "errors"

const (
	PageShift   = 13
	PageSize    = 1 << PageShift // 8 KiB heap page
	ChunkPages  = 512            // pages per chunk (one bitmap word-set)
	ChunkBytes  = ChunkPages * PageSize
	CachePages  = 64 // pages in one worker page cache block
	CacheMaxRun = 16 // the page cache serves runs of fewer than this many pages
)

var (
	ErrNoSpace      = errors.New("pages: no free run of that length in the grown heap")
	ErrInvalidRange = errors.New("pages: range misaligned, empty or outside the allocator")
	ErrNotAllocated = errors.New("pages: range is not wholly allocated")
	ErrAlreadyInUse = errors.New("pages: range is not wholly free")
	ErrAlreadyGrown = errors.New("pages: range already grown")
	ErrClosed       = errors.New("pages: allocator closed")
	// ErrCorrupt: the allocator's summaries disagree with its bitmaps, an
	// internal invariant broken. Returned, not panicked, so that a caller
	// holding a lock can release it before it panics.
	ErrCorrupt = errors.New("pages: allocator state corrupt")
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
// the heap lock, used without it. Bit i of FreeBits set means page i is free;
// bit i of ScavBits set means page i is scavenged.
type Cache struct {
	Base     uintptr
	FreeBits uint64
	ScavBits uint64
}
