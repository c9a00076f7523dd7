package spans

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/internal/addr"
	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/sizeclasses"
)

const (
	// The heap page geometry is the size-class table's (see sizeclasses).
	pageShift = sizeclasses.PageShift
	pageSize  = sizeclasses.PageSize

	// wordBits is the bits in a bitmap word (freed bits, slot groups):
	// slot counts are rounded up to whole words.
	wordBits = 64
	// entryBytes is the size of one page → span table entry, an ID.
	entryBytes = 4

	// recordUnit is the granularity of record offsets: an ID is an offset
	// in the record mapping divided by it, so 32-bit IDs address 256 GiB of
	// records.
	recordUnit = 64

	// buckets is the number of record sizes: bucket b holds b*64 slot
	// bytes (New uses b >= 1; bucket 0 is unused).
	buckets = maxSlots/wordBits + 1

	// recordSpaceFactor bounds the record mapping: in the worst case every
	// heap page is its own span with a full 1024-slot record, and records
	// of other buckets freed earlier are not reused across buckets. Twice
	// the worst single-bucket need leaves room for that before
	// errMetadataExhausted.
	recordSpaceFactor = 2

	// recordCommitBatch is how much of the record mapping New commits at
	// a time: 256 KiB holds about 200 records of the largest bucket (a
	// chunk and a half of one-page 8-byte spans), so the mprotect is rare,
	// and at most that much sits committed but unused.
	recordCommitBatch = 256 << 10
)

// errMetadataExhausted is returned when no span record can be had.
var errMetadataExhausted = errors.New("spans: span record space exhausted")

// Table owns the span records and the page → span map of one reservation.
//
// Both mappings are reserved PROT_NONE and committed on demand, each as a
// prefix that only grows: the page map as far as the heap has grown (Grow),
// the records as far as the record pool has handed them out (New), in
// recordCommitBatch steps. So a large reservation costs address space but
// no commit charge (which vm.overcommit_memory=2 would refuse) until it is
// used. Committing takes no lock: each committer mprotects from the prefix
// it read to its target and then raises the prefix with a compare-and-swap,
// so concurrent commits only repeat an idempotent mprotect.
type Table struct {
	heapBase  uintptr
	heapPages uintptr

	pageMap *mmap.Mapping  // one uint32 ID per heap page
	pagePtr unsafe.Pointer // pageMap's base
	recMap  *mmap.Mapping  // span records
	recPtr  unsafe.Pointer // recMap's base

	// mapped is how many heap pages, from the first, have committed page
	// map entries: Lookup, FreedStart and PageSpan read no entry past it.
	// pageCommitted and recCommitted are the committed prefixes of the two
	// mappings in bytes. All three only grow, by commitPrefix.
	mapped        atomic.Uintptr
	pageCommitted atomic.Uintptr
	recCommitted  atomic.Uintptr

	// pageGone, recGone: the mapping has been unmapped by Close (which
	// alone uses them; see there).
	pageGone, recGone bool

	// mu guards the record pool: next, free, inUse, gen and the page
	// bookkeeping of records.go (pg, held).
	mu    sync.Mutex
	next  uintptr        // bump offset of the first never-used byte
	free  [buckets][]ID  // per bucket, the pooled records (a stack)
	inUse int            // records taken and not returned
	high  atomic.Uintptr // high-water mark of next, for Metadata
	gen   uint32         // the last generation handed out (New)

	// pg has one entry per OS page of the record mapping below next: how
	// many records not in the pool overlap it, and whether its memory was
	// handed back to the kernel (ReleasePooled). held are pooled records
	// taken off the free lists while a page they overlap is being
	// released. released is the bytes of released pages.
	pg       []recPage
	idle     int // pages of pg resident with no record out of the pool
	held     []heldRecord
	released atomic.Uintptr
	relMu    sync.Mutex // held by ReleasePooled throughout; taken before mu

	_ [0]func() // not comparable
}

// NewTable reserves metadata for a heap of heapPages pages at heapBase. It
// commits nothing: Grow commits page map entries as the heap grows, and New
// commits records as it hands them out.
func NewTable(heapBase, heapPages uintptr, k mmap.Kernel) (*Table, error) {
	t := &Table{heapBase: heapBase, heapPages: heapPages}
	pageBytes, recBytes := mappingSizes(heapPages)
	var err error
	if t.pageMap, err = mmap.Reserve(pageBytes, k); err != nil {
		return nil, fmt.Errorf("spans: page map: %w", err)
	}
	if t.recMap, err = mmap.Reserve(recBytes, k); err != nil {
		t.pageMap.Release()
		return nil, fmt.Errorf("spans: records: %w", err)
	}
	// Names are a debugging aid (best effort: older kernels refuse).
	_ = t.pageMap.SetName(pageMapName)
	_ = t.recMap.SetName(recordsName)
	t.pagePtr = addr.Pointer(t.pageMap.Base())
	t.recPtr = addr.Pointer(t.recMap.Base())
	t.next = recordUnit // ID 0 is no span
	return t, nil
}

// mappingSizes returns the sizes of the page map and the record mapping
// for a heap of heapPages pages.
func mappingSizes(heapPages uintptr) (pageBytes, recBytes uintptr) {
	ps := mmap.PageSize()
	pageBytes = roundUp(heapPages*entryBytes, ps)
	recBytes = roundUp(heapPages*(headerSize+maxSlots)*recordSpaceFactor, ps)
	if recBytes/recordUnit >= uintptr(freedMark) {
		// IDs are 32 bits and freedMark is not one: cap the mapping at the
		// last whole OS page they can address (a mapping's length must be
		// a multiple of the page size).
		recBytes = uintptr(freedMark-1) * recordUnit &^ (ps - 1)
	}
	return pageBytes, recBytes
}

// ReserveBytes is the address space NewTable reserves for a heap of
// heapPages pages (about 31 % of the heap's size).
func ReserveBytes(heapPages uintptr) uintptr {
	p, r := mappingSizes(heapPages)
	return p + r
}

// Names of the mappings in /proc/PID/maps.
const (
	pageMapName = "offheap-page-map"
	recordsName = "offheap-span-records"
)

// Grow commits the page map entries of heap pages [0, npages), so spans
// may be published there. The heap calls it with no lock held as it grows;
// committing a prefix also covers any earlier range whose Grow failed. On
// failure nothing is lost: a later Grow commits the same bytes again.
func (t *Table) Grow(npages uintptr) error {
	if npages > t.heapPages {
		return fmt.Errorf("spans: Grow(%d) past the %d-page heap: %w", npages, t.heapPages, mmap.ErrOutOfRange)
	}
	if npages <= t.mapped.Load() {
		return nil
	}
	n := min(roundUp(npages*entryBytes, mmap.PageSize()), t.pageMap.Size())
	if err := commitPrefix(t.pageMap, &t.pageCommitted, n); err != nil {
		return fmt.Errorf("spans: committing the page map: %w", err)
	}
	raiseTo(&t.mapped, min(n/entryBytes, t.heapPages))
	return nil
}

// commitPrefix makes the first n bytes of m readable and writable, given
// that the first done bytes are. Safe to run concurrently (see Table).
func commitPrefix(m *mmap.Mapping, done *atomic.Uintptr, n uintptr) error {
	have := done.Load()
	if have >= n {
		return nil
	}
	if err := m.Commit(m.Base()+have, n-have); err != nil {
		return err
	}
	raiseTo(done, n)
	return nil
}

// raiseTo sets v to n unless it is already at least n.
func raiseTo(v *atomic.Uintptr, n uintptr) {
	for {
		cur := v.Load()
		if cur >= n || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Close releases the metadata mappings. If a munmap fails, that mapping
// stays mapped and recorded while the other is still released, and the
// error says which failed: a retry releases only what remains and returns
// nil once it is all gone. A Close after a successful one returns an error
// wrapping mmap.ErrReleased and reaches no kernel. Close must not run
// concurrently with any other method.
func (t *Table) Close() error {
	if t.pageGone && t.recGone {
		return fmt.Errorf("spans: Close: %w", mmap.ErrReleased)
	}
	var errs []error
	if !t.pageGone {
		if err := t.pageMap.Release(); err != nil {
			errs = append(errs, fmt.Errorf("spans: unmapping the page map: %w", err))
		} else {
			t.pageGone = true
		}
	}
	if !t.recGone {
		if err := t.recMap.Release(); err != nil {
			errs = append(errs, fmt.Errorf("spans: unmapping the span records: %w", err))
		} else {
			t.recGone = true
		}
	}
	return errors.Join(errs...)
}

func roundUp(n, a uintptr) uintptr { return (n + a - 1) &^ (a - 1) }

// Span returns the record named id (which must be a valid ID).
func (t *Table) Span(id ID) *Span {
	return (*Span)(unsafe.Add(t.recPtr, uintptr(id)*recordUnit))
}

// New takes a record for a span of nelems objects, in state StateInit with
// a fresh generation and every slot free (slots past nelems padded). It
// clears nothing of the span's memory.
func (t *Table) New(nelems uint32) (*Span, error) {
	if nelems == 0 || nelems > maxSlots {
		panic(fmt.Sprintf("spans: New(%d): object count out of range", nelems))
	}
	// Every span gets at least one 64-slot block, one-object spans too:
	// size classes with one object per span use Slot(0), FreeMask(0) and
	// Collect, which with no slot bytes would reach into the next record.
	b := (uintptr(nelems) + wordBits - 1) / wordBits
	size := headerSize + b*wordBits
	t.mu.Lock()
	for len(t.free[b]) == 0 && t.next+size > t.recCommitted.Load() {
		end := t.next + size
		if end > t.recMap.Size() {
			t.mu.Unlock()
			return nil, errMetadataExhausted
		}
		// Commit the next batch with the pool lock dropped (no system
		// call under a lock), then look again: other goroutines may have
		// taken or returned records, or committed, meanwhile.
		t.mu.Unlock()
		err := commitPrefix(t.recMap, &t.recCommitted, min(roundUp(end, recordCommitBatch), t.recMap.Size()))
		if err != nil {
			return nil, fmt.Errorf("spans: committing span records: %w", err)
		}
		t.mu.Lock()
	}
	id := t.popFree(b)
	if id == 0 {
		id = ID(t.next / recordUnit)
		t.next += size
		t.high.Store(t.next)
		t.growPages()
	}
	t.take(id, size)
	t.inUse++
	// Generations come from one counter, not from the record: a record
	// whose page was released reads back as zeros, and a per-record count
	// would start again at 1, the generation a stale holder may still
	// have. Wrapping takes 2^32 span allocations.
	t.gen++
	gen := t.gen
	t.mu.Unlock()

	// Every field is set, those that never change too: the record's
	// memory may have been released and read back as zeros.
	s := t.Span(id)
	s.id, s.bucket, s.nslots = id, uint8(b), uint32(b*wordBits)
	s.next, s.prev, s.List, s.needZero = 0, 0, ListNone, 0
	s.allocated.Store(0)
	s.pending.Store(0)
	s.gen.Store(gen)
	s.owner.Store(OwnerCentral)
	for w := range s.freed {
		s.freed[w].Store(0)
	}
	s.NElems = nelems
	slots := unsafe.Slice((*uint8)(s.slots()), s.nslots)
	clear(slots[:min(uintptr(nelems), uintptr(s.nslots))])
	for i := uintptr(nelems); i < uintptr(s.nslots); i++ {
		slots[i] = SlotPad
	}
	s.state.Store(uint32(StateInit))
	return s, nil
}

// Release returns a record to the pool. The span must be unpublished.
func (t *Table) Release(s *Span) {
	switch st := s.State(); st {
	case StateDead, StateInit:
	case statePooled:
		panic(fmt.Sprintf("spans: Release of %s, already released", s.Describe()))
	default:
		panic(fmt.Sprintf("spans: Release of published %s", s.Describe()))
	}
	t.mu.Lock()
	if p, ok := t.drop(s.id, recordSize(s.bucket)); !ok {
		t.mu.Unlock()
		panic(fmt.Sprintf("spans: Release of %s: its OS page %d holds no record out of the pool: released twice", s.Describe(), p))
	}
	s.state.Store(uint32(statePooled))
	t.free[s.bucket] = append(t.free[s.bucket], s.id)
	t.inUse--
	t.mu.Unlock()
}

// inUseRecords returns how many records are taken.
func (t *Table) inUseRecords() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inUse
}

// MetadataBytes is the span metadata touched so far and not given back:
// the record high-water mark less the record pages ReleasePooled released,
// plus the page map (whose pages become resident as spans are published
// over them).
func (t *Table) MetadataBytes(grownPages uintptr) uint64 {
	return uint64(t.high.Load()-min(t.released.Load(), t.high.Load())) + uint64(grownPages*entryBytes)
}

// MetadataReserved is the address space of the table's two mappings.
func (t *Table) MetadataReserved() uintptr { return t.pageMap.Size() + t.recMap.Size() }

// MetadataCommitted is how much of it is committed (readable and
// writable): what a strict commit limit (vm.overcommit_memory=2) charges.
func (t *Table) MetadataCommitted() uintptr {
	return t.pageCommitted.Load() + t.recCommitted.Load()
}

// Region is an address range.
type Region struct{ Base, Size uintptr }

// Regions returns the address ranges of the page map and the record
// mapping, so tools and tests can find them in /proc/PID/smaps.
func (t *Table) Regions() [2]Region {
	return [2]Region{{t.pageMap.Base(), t.pageMap.Size()}, {t.recMap.Base(), t.recMap.Size()}}
}

func (t *Table) entry(page uintptr) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(t.pagePtr, page*entryBytes))
}

// Publish points every page of s at it and then sets its state: nothing
// can find s before the state store.
func (t *Table) Publish(s *Span, st State) {
	first := (s.Base - t.heapBase) >> pageShift
	if s.Base < t.heapBase || first+uintptr(s.NPages) > t.mapped.Load() {
		panic(fmt.Sprintf("spans: Publish of %s: past the %d pages grown", s.Describe(), t.mapped.Load()))
	}
	for p := first; p < first+uintptr(s.NPages); p++ {
		t.entry(p).Store(uint32(s.id))
	}
	s.setState(st)
}

// freedMark is stored for the first page of an unpublished span until the
// page is published again, so that a second free of the span's first
// object is told apart from a pointer that never was allocated.
const freedMark = ^uint32(0)

// Unpublish retracts s: state first, then the table entries.
func (t *Table) Unpublish(s *Span) {
	s.setState(StateDead)
	first := (s.Base - t.heapBase) >> pageShift
	t.entry(first).Store(freedMark)
	for p := first + 1; p < first+uintptr(s.NPages); p++ {
		t.entry(p).Store(0)
	}
}

// FreedStart reports whether addr is the first byte of a span that was
// unpublished and whose first page has not been reused since.
func (t *Table) FreedStart(addr uintptr) bool {
	off := addr - t.heapBase
	if addr < t.heapBase || off>>pageShift >= t.mapped.Load() || off%pageSize != 0 {
		return false
	}
	return t.entry(off>>pageShift).Load() == freedMark
}

// Lookup returns the published span containing addr, or nil. Lock-free.
//
// Written to fit the inliner's budget (every Free starts here): an address
// below the heap wraps to a page index far past mapped, and pages past
// mapped were never grown (no span, and no entry to read); id-1 wraps for
// 0, so one comparison refuses both "no span" and freedMark.
func (t *Table) Lookup(addr uintptr) *Span {
	page := (addr - t.heapBase) >> pageShift
	if page >= t.mapped.Load() {
		return nil
	}
	id := t.entry(page).Load()
	if id-1 >= freedMark-1 {
		return nil
	}
	s := (*Span)(unsafe.Add(t.recPtr, uintptr(id)*recordUnit))
	if State(s.state.Load())-StateInUse > StateGuardedFreed-StateInUse { // not published (State.Published)
		return nil
	}
	return s
}

// PageSpan returns the record ID stored for a heap page index, 0 for none
// (for Verify).
func (t *Table) PageSpan(page uintptr) ID {
	if page >= t.mapped.Load() {
		return 0
	}
	id := t.entry(page).Load()
	if id == freedMark {
		return 0
	}
	return ID(id)
}

// InReservation reports whether addr lies in the heap's reservation.
func (t *Table) InReservation(addr uintptr) bool {
	return addr >= t.heapBase && (addr-t.heapBase)>>pageShift < t.heapPages
}
