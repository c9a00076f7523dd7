package spans

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

const (
	pageShift = 13
	pageSize  = 1 << pageShift

	// recordUnit is the granularity of record offsets: an ID is an offset
	// in the record mapping divided by it, so 32-bit IDs address 256 GiB of
	// records.
	recordUnit = 64

	// buckets is the number of record sizes: bucket b holds b*64 slot
	// bytes (New uses b >= 1; bucket 0 is unused).
	buckets = MaxSlots/64 + 1

	// recordSpaceFactor bounds the record mapping: in the worst case every
	// heap page is its own span with a full 1024-slot record, and records
	// of other buckets freed earlier are not reused across buckets. Twice
	// the worst single-bucket need leaves room for that before
	// ErrMetadataExhausted.
	recordSpaceFactor = 2
)

// ErrMetadataExhausted is returned when no span record can be had.
var ErrMetadataExhausted = errors.New("spans: span record space exhausted")

// Table owns the span records and the page → span map of one reservation.
type Table struct {
	heapBase  uintptr
	heapPages uintptr

	pageMap *mmap.Mapping  // one uint32 ID per heap page
	pagePtr unsafe.Pointer // pageMap's base
	recMap  *mmap.Mapping  // span records
	recPtr  unsafe.Pointer // recMap's base

	// pageGone, recGone: the mapping has been unmapped by Close (which
	// alone uses them; see there).
	pageGone, recGone bool

	// mu guards the record pool: next, free and inUse.
	mu    sync.Mutex
	next  uintptr        // bump offset of the first never-used byte
	free  [buckets]ID    // per bucket, a list linked through Span.Next
	inUse int            // records taken and not returned
	high  atomic.Uintptr // high-water mark of next, for Metadata
	_     [0]func()      // not comparable
}

// NewTable reserves metadata for a heap of heapPages pages at heapBase.
func NewTable(heapBase, heapPages uintptr, k mmap.Kernel) (*Table, error) {
	t := &Table{heapBase: heapBase, heapPages: heapPages}
	ps := mmap.PageSize()
	pageBytes := roundUp(heapPages*4, ps)
	recBytes := roundUp(heapPages*(headerSize+MaxSlots)*recordSpaceFactor, ps)
	if recBytes/recordUnit >= uintptr(freedMark) {
		recBytes = uintptr(freedMark-1) * recordUnit
	}
	var err error
	if t.pageMap, err = reserveRW(pageBytes, k); err != nil {
		return nil, fmt.Errorf("spans: page map: %w", err)
	}
	if t.recMap, err = reserveRW(recBytes, k); err != nil {
		t.pageMap.Release()
		return nil, fmt.Errorf("spans: records: %w", err)
	}
	t.pagePtr = addrPointer(t.pageMap.Base())
	t.recPtr = addrPointer(t.recMap.Base())
	t.next = recordUnit // ID 0 is no span
	return t, nil
}

func reserveRW(n uintptr, k mmap.Kernel) (*mmap.Mapping, error) {
	m, err := mmap.Reserve(n, k)
	if err != nil {
		return nil, err
	}
	if err := m.Commit(m.Base(), n); err != nil {
		m.Release()
		return nil, err
	}
	return m, nil
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

// addrPointer turns an address outside the Go heap into a pointer.
func addrPointer(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

func roundUp(n, a uintptr) uintptr { return (n + a - 1) &^ (a - 1) }

// Span returns the record named id (which must be a valid ID).
func (t *Table) Span(id ID) *Span {
	return (*Span)(unsafe.Add(t.recPtr, uintptr(id)*recordUnit))
}

// New takes a record for a span of nelems objects, in state StateInit with
// a fresh generation and every slot free (slots past nelems padded). It
// clears nothing of the span's memory.
func (t *Table) New(nelems uint32) (*Span, error) {
	if nelems == 0 || nelems > MaxSlots {
		panic(fmt.Sprintf("spans: New(%d): object count out of range", nelems))
	}
	// Every span gets at least one 64-slot block, one-object spans too:
	// size classes with one object per span use Slot(0), FreeMask(0) and
	// Collect, which with no slot bytes would reach into the next record.
	b := (uintptr(nelems) + 63) / 64
	size := headerSize + b*64
	t.mu.Lock()
	id := t.free[b]
	var s *Span
	if id != 0 {
		s = t.Span(id)
		t.free[b] = s.Next
	} else {
		if t.next+size > t.recMap.Size() {
			t.mu.Unlock()
			return nil, ErrMetadataExhausted
		}
		id = ID(t.next / recordUnit)
		t.next += size
		t.high.Store(t.next)
		s = t.Span(id)
		s.id = ID(id)
		s.bucket = uint8(b)
		s.nslots = uint32(b * 64)
	}
	t.inUse++
	t.mu.Unlock()

	s.Next, s.Prev, s.List = 0, 0, ListNone
	s.allocated.Store(0)
	s.pending.Store(0)
	s.gen.Add(1)
	s.owner.Store(OwnerCentral)
	for w := range s.freed {
		s.freed[w].Store(0)
	}
	s.NElems = nelems
	slots := unsafe.Slice((*uint8)(s.Slots()), s.nslots)
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
	s.state.Store(uint32(statePooled))
	t.mu.Lock()
	s.Next = t.free[s.bucket]
	t.free[s.bucket] = s.id
	t.inUse--
	t.mu.Unlock()
}

// InUseRecords returns how many records are taken.
func (t *Table) InUseRecords() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inUse
}

// MetadataBytes is the span metadata touched so far: the record high-water
// mark plus the page map (whose pages become resident as spans are
// published over them).
func (t *Table) MetadataBytes(grownPages uintptr) uint64 {
	return uint64(t.high.Load()) + uint64(grownPages*4)
}

func (t *Table) entry(page uintptr) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(t.pagePtr, page*4))
}

// Publish points every page of s at it and then sets its state: nothing
// can find s before the state store.
func (t *Table) Publish(s *Span, st State) {
	first := (s.Base - t.heapBase) >> pageShift
	for p := first; p < first+uintptr(s.NPages); p++ {
		t.entry(p).Store(uint32(s.id))
	}
	s.SetState(st)
}

// freedMark is stored for the first page of an unpublished span until the
// page is published again, so that a second free of the span's first
// object is told apart from a pointer that never was allocated.
const freedMark = ^uint32(0)

// Unpublish retracts s: state first, then the table entries.
func (t *Table) Unpublish(s *Span) {
	s.SetState(StateDead)
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
	if !t.InReservation(addr) || off%pageSize != 0 {
		return false
	}
	return t.entry(off>>pageShift).Load() == freedMark
}

// Lookup returns the published span containing addr, or nil. Lock-free.
func (t *Table) Lookup(addr uintptr) *Span {
	off := addr - t.heapBase
	if addr < t.heapBase || off>>pageShift >= t.heapPages {
		return nil
	}
	id := t.entry(off >> pageShift).Load()
	if id == 0 || id == freedMark {
		return nil
	}
	s := t.Span(ID(id))
	if !s.State().Published() {
		return nil
	}
	return s
}

// PageSpan returns the record ID stored for a heap page index, 0 for none
// (for Verify).
func (t *Table) PageSpan(page uintptr) ID {
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
