package pages

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/internal/addr"
	"github.com/offheap/offheap/mmap"
)

// metaName labels the metadata mapping in /proc/PID/maps (best effort).
const metaName = "offheap-pages-meta"

// metaLayout places every metadata array of one allocator in a single
// mapping. The first part (bitmaps over chunks and the top summary level)
// is tiny, about 1/65536 of the reservation, and committed by New. The rest
// (lower summary levels, chunk bitmaps) is committed piece by piece as
// chunks are grown, so resident metadata follows the grown heap.
type metaLayout struct {
	nchunks  uint
	top      int                // index of the top summary level
	levelLen [maxLevels]uint    // entries per level: fanOut per entry of the level above
	levelOff [maxLevels]uintptr // byte offsets of the summary levels
	grownOff uintptr            // bitmap: chunk grown
	scavOff  uintptr            // bitmap: chunk may hold free unscavenged pages
	liveOff  uintptr            // bitmap: top-level entry has a free page
	eager    uintptr            // bytes [0, eager) are committed by New
	chunkOff uintptr            // chunkBits array
	size     uintptr            // total, a multiple of the OS page
}

func roundUp(x, align uintptr) uintptr { return (x + align - 1) &^ (align - 1) }

// bitmapWords is the number of uint64 words holding n bits.
func bitmapWords(n uint) uint { return (n + wordBits - 1) / wordBits }

func newMetaLayout(nchunks uint, osPage uintptr, levelCap int) metaLayout {
	l := metaLayout{nchunks: nchunks}
	// Levels: add a level of fanOut-times-coarser summaries until the top
	// level has at most fanOut entries, or its entries already cover
	// maxSumValue pages (the most a summary can count).
	l.levelLen[0] = nchunks
	for l.levelLen[l.top] > fanOut && l.top+1 < min(levelCap, maxLevels) {
		l.levelLen[l.top+1] = (l.levelLen[l.top] + fanOut - 1) / fanOut
		l.top++
	}
	// Below the top, every entry has all fanOut children, even past the
	// last chunk (those stay zero: nothing there is free).
	for lv := l.top - 1; lv >= 0; lv-- {
		l.levelLen[lv] = l.levelLen[lv+1] * fanOut
	}
	var off uintptr
	words := uintptr(bitmapWords(nchunks)) * wordBytes
	l.grownOff, off = off, off+words
	l.scavOff, off = off, off+words
	l.liveOff, off = off, off+uintptr(bitmapWords(l.levelLen[l.top]))*wordBytes
	l.levelOff[l.top], off = off, off+uintptr(l.levelLen[l.top])*wordBytes
	off = roundUp(off, osPage)
	l.eager = off
	for i := 0; i < l.top; i++ {
		l.levelOff[i], off = off, roundUp(off+uintptr(l.levelLen[i])*wordBytes, osPage)
	}
	l.chunkOff = off
	off += uintptr(nchunks) * unsafe.Sizeof(chunkBits{})
	l.size = roundUp(off, osPage)
	return l
}

// metaRegion is the mapping that holds the metadata, off the Go heap: the
// GC never scans it and it holds no Go pointers.
//
// Locking: mu guards committing and releasing the mapping, and done.
// Committing is a system call (mprotect) and must not run under the heap
// lock, so CommitGrow takes mu alone, and may hold it across the
// mprotect: mu is not the heap lock, and only CommitGrow and Close take
// it, never with the heap lock held. committed and nCommit are written
// under mu, a bit only after the kernel committed its page, and read with
// atomic loads, without mu: Grow under the heap lock checks the bits its
// chunks need (a set bit is a page the kernel committed), and
// MetadataBytes reads nCommit. m is set by newMetaRegion and cleared by
// release under mu; CommitGrow reads it under mu, Close (which runs
// without CommitGrow) without.
type metaRegion struct {
	m         *mmap.Mapping
	osPage    uintptr
	mu        sync.Mutex
	done      bool            // the allocator is closing: commit nothing more
	committed []atomic.Uint64 // bit p: OS page p of the mapping is committed
	nCommit   atomic.Uintptr  // pages committed
}

func newMetaRegion(size, osPage uintptr, k mmap.Kernel) (*metaRegion, error) {
	m, err := mmap.Reserve(size, k)
	if err != nil {
		return nil, fmt.Errorf("pages: reserving %d bytes of metadata: %w", size, err)
	}
	_ = m.SetName(metaName) // cosmetic; older kernels refuse
	return &metaRegion{m: m, osPage: osPage, committed: make([]atomic.Uint64, bitmapWords(uint(size/osPage)))}, nil
}

// commitLocked makes bytes [off, off+n) of the region readable and
// writable, skipping OS pages already committed. Untouched pages stay
// non-resident. r.mu is held.
func (r *metaRegion) commitLocked(off, n uintptr) error {
	if n == 0 {
		return nil
	}
	first := off / r.osPage
	last := (off + n + r.osPage - 1) / r.osPage
	for p := first; p < last; {
		if r.pageCommitted(p) {
			p++
			continue
		}
		q := p + 1
		for q < last && !r.pageCommitted(q) {
			q++
		}
		if err := r.m.Commit(r.m.Base()+p*r.osPage, (q-p)*r.osPage); err != nil {
			return fmt.Errorf("pages: committing metadata: %w", err)
		}
		for ; p < q; p++ {
			r.committed[p/wordBits].Or(1 << (p % wordBits))
			r.nCommit.Add(1)
		}
	}
	return nil
}

// pageCommitted reports whether OS page p of the region is committed; any
// goroutine may ask (an atomic load).
func (r *metaRegion) pageCommitted(p uintptr) bool {
	return r.committed[p/wordBits].Load()&(1<<(p%wordBits)) != 0
}

// allCommitted reports whether every byte of [off, off+n) is committed.
func (r *metaRegion) allCommitted(off, n uintptr) bool {
	for p := off / r.osPage; p < (off+n+r.osPage-1)/r.osPage; p++ {
		if !r.pageCommitted(p) {
			return false
		}
	}
	return true
}

// release unmaps the region. If munmap fails the region stays mapped and
// recorded, so a later call retries it; once it is gone, release does
// nothing.
func (r *metaRegion) release() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	if r.m == nil {
		return nil
	}
	if err := r.m.Release(); err != nil {
		return err
	}
	r.m = nil
	return nil
}

// words views n uint64s at byte offset off of the region.
func (r *metaRegion) words(off uintptr, n uint) []uint64 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(r.ptr(off)), n)
}

func (r *metaRegion) summaries(off uintptr, n uint) []summary {
	return unsafe.Slice((*summary)(r.ptr(off)), n)
}

func (r *metaRegion) chunks(off uintptr, n uint) []chunkBits {
	return unsafe.Slice((*chunkBits)(r.ptr(off)), n)
}

// ptr turns an offset in the metadata mapping into a pointer (not Go
// memory, so the GC ignores it).
func (r *metaRegion) ptr(off uintptr) unsafe.Pointer { return addr.Pointer(r.m.Base() + off) }

// chunkMeta calls f for each byte range of metadata that chunks [c0, c1)
// need: their bitmaps and their summaries at every level below the top,
// widened to whole summary nodes so a search may read every sibling of a
// grown entry. It stops at the first error.
func (a *Allocator) chunkMeta(c0, c1 uint, f func(off, n uintptr) error) error {
	l := &a.layout
	sz := unsafe.Sizeof(chunkBits{})
	if err := f(l.chunkOff+uintptr(c0)*sz, uintptr(c1-c0)*sz); err != nil {
		return err
	}
	for lv := 0; lv < l.top; lv++ {
		shift := uint(lv * fanBits)
		lo := (c0 >> shift) &^ (fanOut - 1)
		hi := ((c1-1)>>shift)&^(fanOut-1) + fanOut
		if err := f(l.levelOff[lv]+uintptr(lo)*wordBytes, uintptr(hi-lo)*wordBytes); err != nil {
			return err
		}
	}
	return nil
}

// CommitGrow commits the metadata that Grow of [base, base+npages*PageSize)
// will need (chunk aligned, within the reservation; grown or not). It is
// the part of growing that enters the kernel, so the caller runs it
// without the heap lock, and then calls Grow under the lock. It is safe to
// call concurrently with itself and with every method but Close; it reads
// none of the state the heap lock guards. Metadata it commits stays
// committed whether or not Grow follows, so a failed or repeated call is
// harmless: a retry commits only what is missing. A commit the kernel
// refuses returns an error wrapping *mmap.OpError.
func (a *Allocator) CommitGrow(base, npages uintptr) error {
	a.meta.mu.Lock()
	defer a.meta.mu.Unlock()
	if a.meta.done {
		return errClosed
	}
	// The checks of pageRange and Grow, on fields fixed at New.
	if npages == 0 || base < a.base || base%ChunkBytes != 0 || npages%ChunkPages != 0 ||
		(base-a.base)>>pageShift >= uintptr(a.npages) || npages > uintptr(a.npages)-(base-a.base)>>pageShift {
		return fmt.Errorf("%w: grow [%#x, +%d pages)", errInvalidRange, base, npages)
	}
	c0 := uint((base - a.base) / ChunkBytes)
	return a.chunkMeta(c0, c0+uint(npages/ChunkPages), a.meta.commitLocked)
}

// metaCommitted reports whether the metadata of chunks [c0, c1) is
// committed (CommitGrow ran for them). No system call, no lock.
func (a *Allocator) metaCommitted(c0, c1 uint) bool {
	return a.chunkMeta(c0, c1, func(off, n uintptr) error {
		if !a.meta.allCommitted(off, n) {
			return errNotCommitted
		}
		return nil
	}) == nil
}

// MetadataBytes reports the size of the allocator's metadata mapping and how
// many of its bytes are committed (resident at most: only the touched ones
// cost RSS). Heap metadata accounting can use it.
func (a *Allocator) MetadataBytes() (reserved, committed uintptr) {
	if a.closed {
		return 0, 0
	}
	return a.layout.size, a.meta.nCommit.Load() * a.meta.osPage
}

// metaAddr returns the address range of the metadata mapping, for tests.
func (a *Allocator) metaAddr() (base, size uintptr) {
	return a.meta.m.Base(), a.layout.size
}

// isCommitted reports whether the byte at offset off is committed.
func (r *metaRegion) isCommitted(off uintptr) bool { return r.pageCommitted(off / r.osPage) }

// summaryReadable reports whether summary j of level lv is in committed
// metadata (tests walk the whole tree; the allocator itself only reads
// summaries below a grown chunk's ancestors).
func (a *Allocator) summaryReadable(lv int, j uint) bool {
	return a.meta.isCommitted(a.layout.levelOff[lv] + uintptr(j)*wordBytes)
}
