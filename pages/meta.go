package pages

import (
	"fmt"
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
type metaRegion struct {
	m         *mmap.Mapping
	osPage    uintptr
	committed []uint64 // bit p: OS page p of the mapping is committed
	nCommit   uintptr  // pages committed
}

func newMetaRegion(size, osPage uintptr, k mmap.Kernel) (metaRegion, error) {
	m, err := mmap.Reserve(size, k)
	if err != nil {
		return metaRegion{}, fmt.Errorf("pages: reserving %d bytes of metadata: %w", size, err)
	}
	_ = m.SetName(metaName) // cosmetic; older kernels refuse
	return metaRegion{m: m, osPage: osPage, committed: make([]uint64, bitmapWords(uint(size/osPage)))}, nil
}

// commit makes bytes [off, off+n) of the region readable and writable,
// skipping OS pages already committed. Untouched pages stay non-resident.
func (r *metaRegion) commit(off, n uintptr) error {
	if n == 0 {
		return nil
	}
	first := off / r.osPage
	last := (off + n + r.osPage - 1) / r.osPage
	for p := first; p < last; {
		if r.committed[p/wordBits]&(1<<(p%wordBits)) != 0 {
			p++
			continue
		}
		q := p + 1
		for q < last && r.committed[q/wordBits]&(1<<(q%wordBits)) == 0 {
			q++
		}
		if err := r.m.Commit(r.m.Base()+p*r.osPage, (q-p)*r.osPage); err != nil {
			return fmt.Errorf("pages: committing metadata: %w", err)
		}
		for ; p < q; p++ {
			r.committed[p/wordBits] |= 1 << (p % wordBits)
			r.nCommit++
		}
	}
	return nil
}

// release unmaps the region. If munmap fails the region stays mapped and
// recorded, so a later call retries it; once it is gone, release does
// nothing.
func (r *metaRegion) release() error {
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

// commitChunks commits the metadata of chunks [c0, c1): their bitmaps and
// their summaries at every level below the top, widened to whole summary
// nodes so a search may read every sibling of a grown entry.
func (a *Allocator) commitChunks(c0, c1 uint) error {
	l := &a.layout
	sz := unsafe.Sizeof(chunkBits{})
	if err := a.meta.commit(l.chunkOff+uintptr(c0)*sz, uintptr(c1-c0)*sz); err != nil {
		return err
	}
	for lv := 0; lv < l.top; lv++ {
		shift := uint(lv * fanBits)
		lo := (c0 >> shift) &^ (fanOut - 1)
		hi := ((c1-1)>>shift)&^(fanOut-1) + fanOut
		if err := a.meta.commit(l.levelOff[lv]+uintptr(lo)*wordBytes, uintptr(hi-lo)*wordBytes); err != nil {
			return err
		}
	}
	return nil
}

// MetadataBytes reports the size of the allocator's metadata mapping and how
// many of its bytes are committed (resident at most: only the touched ones
// cost RSS). Heap metadata accounting can use it.
func (a *Allocator) MetadataBytes() (reserved, committed uintptr) {
	if a.closed {
		return 0, 0
	}
	return a.layout.size, a.meta.nCommit * a.meta.osPage
}

// metaAddr returns the address range of the metadata mapping, for tests.
func (a *Allocator) metaAddr() (base, size uintptr) {
	return a.meta.m.Base(), a.layout.size
}

// isCommitted reports whether the byte at offset off is committed.
func (r *metaRegion) isCommitted(off uintptr) bool {
	p := off / r.osPage
	return r.committed[p/wordBits]&(1<<(p%wordBits)) != 0
}

// summaryReadable reports whether summary j of level lv is in committed
// metadata (tests walk the whole tree; the allocator itself only reads
// summaries below a grown chunk's ancestors).
func (a *Allocator) summaryReadable(lv int, j uint) bool {
	return a.meta.isCommitted(a.layout.levelOff[lv] + uintptr(j)*wordBytes)
}
