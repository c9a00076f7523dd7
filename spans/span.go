package spans

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// ID names a span record; 0 is no span.
type ID uint32

// State of a span record. Only InUse and Large spans are visible to Lookup.
type State uint32

const (
	StateDead         State = iota // span being torn down, record not yet released
	StateInit                      // taken, being initialised, not yet published
	StateInUse                     // small-object span, published
	StateLarge                     // one large object, published
	StateManual                    // memory managed by its holder (a region), published
	StateGuarded                   // one guarded object, published
	StateGuardedFreed              // a freed guarded object in quarantine, published

	statePooled // on the record pool's free list
)

// Published reports whether a span in state s is visible to Lookup: the
// published states are numbered consecutively, so this is one range check.
func (s State) Published() bool {
	return s >= StateInUse && s <= StateGuardedFreed
}

func (s State) String() string {
	switch s {
	case StateDead:
		return "dead"
	case StateInit:
		return "init"
	case StateInUse:
		return "in-use"
	case StateLarge:
		return "large"
	case StateManual:
		return "manual"
	case StateGuarded:
		return "guarded"
	case StateGuardedFreed:
		return "guarded-freed"
	case statePooled:
		return "pooled"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// Slot state bytes.
const (
	SlotFree      = 0
	SlotAllocated = 1
	SlotPad       = 2 // past NElems; never handed out
	SlotSampled   = 3 // allocated, and its allocation was sampled (profile)
	SlotRetired   = 4 // taken out of use by a failed debug check; never handed out or freed
	SlotRemote    = 5 // freed by a goroutine that does not own the span; its freed bit is set by a batch publish (PublishFreed)
)

// Owner values other than a cache's ID.
const (
	OwnerCentral = 0          // unowned: the class's central lock guards it
	OwnerTransit = ^uint32(0) // moving between owners; the mover guards it
)

// maxSlots is the most objects a span holds (the size-class table's bound).
const maxSlots = 1024

// freedWords is the length of the freed bitmap.
const freedWords = maxSlots / wordBits

// Which central list a span is on. Guarded by the class lock.
const (
	ListNone    = 0
	ListPartial = 1
	ListFull    = 2
)

// Span is a span record's header. It lives in off-heap memory owned by a
// Table; never copy it. Field comments say who may write each field.
type Span struct {
	// The first line holds everything a free reads: the fields below,
	// written when the record is set up or rarely, and pending. pending
	// is here, though remote frees write it, so that a free by the owner
	// reads the freed bitmap only when a remote free is pending: a free
	// whose span is cold then misses on the table entry, this line and
	// the slot's state byte, and not on a bitmap line as well. The price
	// is that remote frees from several cores bounce this line instead of
	// a line of its own (they write the bitmap's lines either way).
	state   atomic.Uint32 // State; written by the span's allocator / freer
	owner   atomic.Uint32 // OwnerCentral, OwnerTransit or a cache ID
	gen     atomic.Uint32 // bumped on every reuse of the record
	pending atomic.Int32  // freed bits not yet collected; may dip below zero for an instant

	Base      uintptr       // first byte; set before publication, then immutable
	NPages    uint32        // heap pages; immutable while published
	ElemSize  uint32        // object size; immutable while published
	NElems    uint32        // objects; immutable while published
	Class     uint8         // size class, 0 for a large object; immutable while published
	List      uint8         // ListNone/Partial/Full; class lock
	bucket    uint8         // record size bucket; record pool lock
	needZero  uint8         // 1: some free slot may hold old data; whoever owns the span (a cache, the class lock holder)
	allocated atomic.Uint32 // allocated slots (freed bits included) while unowned; written under the class lock
	next      ID            // central list link; class lock
	prev      ID            // central list link; class lock
	id        ID            // this record's ID
	nslots    uint32        // state bytes after the header (multiple of 64)
	ownerSlot uint8         // the owning cache's index for the span; owner only
	Bucket    uint8         // which of its class's partial lists holds it, by occupancy; class lock
	_         [2]byte       // pad the line

	// Written by remote frees: the freed bitmap (two lines), counted in
	// pending.
	freed [freedWords]atomic.Uint64 // remote frees not yet collected; any goroutine ORs, owner swaps
}

// headerSize is the record header rounded to a cache line.
const headerSize = (unsafe.Sizeof(Span{}) + 63) &^ 63

// ID returns the record's ID.
func (s *Span) ID() ID { return s.id }

// State returns the published state.
func (s *Span) State() State { return State(s.state.Load()) }

// setState publishes or retracts the span. Publishing must come last.
func (s *Span) setState(st State) { s.state.Store(uint32(st)) }

// CompareAndSwapState is used by a large-object free to claim the span.
func (s *Span) CompareAndSwapState(old, new State) bool {
	return s.state.CompareAndSwap(uint32(old), uint32(new))
}

// Owner returns the current owner.
func (s *Span) Owner() uint32 { return s.owner.Load() }

// SetOwner changes the owner; only the current owner (or the class lock
// holder for central spans) may call it.
func (s *Span) SetOwner(o uint32) { s.owner.Store(o) }

// OwnerSlot returns the index the owning cache gave the span among the
// spans it owns of its class (SetOwnerSlot). Owner only.
func (s *Span) OwnerSlot() uint8 { return s.ownerSlot }

// SetOwnerSlot records the owning cache's index for the span. Owner only.
func (s *Span) SetOwnerSlot(i uint8) { s.ownerSlot = i }

// Gen returns the record's reuse generation.
func (s *Span) Gen() uint32 { return s.gen.Load() }

// slots returns a pointer to the slot state bytes (NSlots of them, a
// multiple of 64, 8-byte aligned).
func (s *Span) slots() unsafe.Pointer { return unsafe.Add(unsafe.Pointer(s), headerSize) }

// NSlots is the number of state bytes, NElems rounded up to 64.
func (s *Span) NSlots() uint32 { return s.nslots }

// Slot returns a pointer to slot i's state byte.
func (s *Span) Slot(i uintptr) *uint8 { return (*uint8)(unsafe.Add(s.slots(), i)) }

// slotWord loads the 8 state bytes of slots 8w..8w+7 as one word (owner only).
func (s *Span) slotWord(w uintptr) uint64 { return *(*uint64)(unsafe.Add(s.slots(), w*8)) }

// FreeMask returns a bit mask of the free slots among 64i..64i+63 (owner only).
func (s *Span) FreeMask(i uintptr) uint64 {
	var m uint64
	for k := uintptr(0); k < 8; k++ {
		m |= zeroBytes(s.slotWord(i*8+k)) << (8 * k)
	}
	return m
}

// zeroBytes returns an 8-bit mask of the zero bytes of x, bit k for byte k.
func zeroBytes(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	// High bit of each byte set exactly when that byte is zero.
	y := ^(((x & low7) + low7) | x | low7)
	// Move bit 8k+7 to bit k: gather the byte flags into the top byte.
	return ((y >> 7) * 0x0102040810204080) >> 56
}

// NeedZero reports whether a free slot of the span may hold old data, so
// that an allocation must clear the object it hands out. A new span's
// memory is known to be zero (or poisoned, in debug mode) and its slots
// need no clearing; once any slot has been freed the span needs zeroing
// for good (until its record is reused). One flag per span, not per slot,
// as the Go runtime's needzero: a steady-state span has had frees anyway,
// and a per-slot flag would cost the free path another line. Owner (or
// class lock holder) only.
func (s *Span) NeedZero() bool { return s.needZero != 0 }

// SetNeedZero records that a slot of the span was freed. Owner (or class
// lock holder) only.
func (s *Span) SetNeedZero() { s.needZero = 1 }

// Allocated returns the allocated-slot count kept for an unowned span.
func (s *Span) Allocated() uint32 { return s.allocated.Load() }

// SetAllocated sets it; the caller holds the class lock.
func (s *Span) SetAllocated(n uint32) { s.allocated.Store(n) }

// NotePending counts a freed bit just set with MarkFreed and returns the
// number of uncollected frees. A collector may take the bit before it is
// counted, so the count can be momentarily one low (even negative).
func (s *Span) NotePending() int32 { return s.pending.Add(1) }

// Pending returns the number of uncollected frees.
func (s *Span) Pending() int32 { return s.pending.Load() }

// FreedBit reports whether slot i has a pending remote free.
func (s *Span) FreedBit(i uintptr) bool {
	return s.freed[i/wordBits].Load()&(1<<(i%wordBits)) != 0
}

// MarkFreed sets slot i's freed bit and reports whether it was clear.
func (s *Span) MarkFreed(i uintptr) bool {
	bit := uint64(1) << (i % wordBits)
	return s.freed[i/wordBits].Or(bit)&bit == 0
}

// MarkRemote marks allocated slot i freed by a goroutine that does not own
// the span, ahead of its freed bit (PublishFreed sets that, for a batch of
// such frees). From here on every other free of the object finds the slot
// not allocated and is refused, and no owner hands it out again (it is not
// free) until it collects the bit. A plain byte store by the freer, the one
// exception to "only the owner writes state bytes": the owner writes an
// allocated slot's byte only when it frees or collects that very object,
// which would be a double free of it.
func (s *Span) MarkRemote(i uintptr) { *s.Slot(i) = SlotRemote }

// PublishFreed sets the freed bits of word w given in m, slots a goroutine
// not owning the span marked with MarkRemote, and counts them in Pending.
// It returns Pending before and after its count, and dup: bits of m that
// were set already. A set bit there is a double free that raced (another
// free found the slot allocated before MarkRemote's store); those bits are
// not counted again, so the span stays consistent, and the caller reports
// them (RaceReport).
func (s *Span) PublishFreed(w uintptr, m uint64) (prev, n int32, dup uint64) {
	dup = s.freed[w].Or(m) & m
	k := int32(bits.OnesCount64(m &^ dup))
	n = s.pending.Add(k)
	return n - k, n, dup
}

// RaceReport describes the raced double frees PublishFreed found in word
// w (dup, not 0), for the caller's panic.
func (s *Span) RaceReport(w uintptr, dup uint64) BadFree {
	i := w*wordBits + uintptr(bits.TrailingZeros64(dup))
	return BadFree{N: bits.OnesCount64(dup), slot: i, state: SlotRemote, addr: s.Base + i*uintptr(s.ElemSize),
		span: s.id, base: s.Base, npages: s.NPages, class: s.Class, published: true}
}

// HasPending reports whether any remote free awaits collection.
func (s *Span) HasPending() bool {
	for w := range s.freed {
		if s.freed[w].Load() != 0 {
			return true
		}
	}
	return false
}

// Collect takes all pending remote frees, marks their slots free and
// returns how many there were; slots freed make the span need zeroing
// (NeedZero). Owner (or class lock holder) only.
//
// A freed bit on a slot that is not allocated is the trace of a double
// free that raced (two frees each found the slot allocated before either
// changed it): Collect drops such bits, leaves their slots as they are and
// does not count them, so the span stays consistent, and reports the first
// in bad. It does not panic: its callers hold a class lock or are pinned to
// a P; they panic with bad's report once they are not.
func (s *Span) Collect() (n uint32, bad BadFree) {
	words := (uintptr(s.NElems) + wordBits - 1) / wordBits
	for w := uintptr(0); w < words; w++ {
		if s.freed[w].Load() == 0 {
			continue
		}
		m := s.freed[w].Swap(0)
		s.pending.Add(-int32(bits.OnesCount64(m)))
		for m != 0 {
			i := w*wordBits + uintptr(bits.TrailingZeros64(m))
			m &= m - 1
			if st := *s.Slot(i); st != SlotAllocated && st != SlotSampled && st != SlotRemote {
				if bad.N == 0 {
					bad = BadFree{slot: i, state: st, addr: s.Base + i*uintptr(s.ElemSize),
						span: s.id, base: s.Base, npages: s.NPages, class: s.Class}
				}
				bad.N++
				continue
			}
			*s.Slot(i) = SlotFree
			n++
		}
	}
	if n > 0 {
		s.needZero = 1
	}
	return n, bad
}

// BadFree is what Collect found wrong: N freed bits on slots that were not
// allocated, the first being slot, in state, at addr, in the span named by
// the other fields. It holds plain values, so a caller can format it
// (Message) after letting the span go. N is 0 when all was well.
type BadFree struct {
	N      int
	slot   uintptr
	state  uint8
	addr   uintptr
	span   ID
	base   uintptr
	npages uint32
	class  uint8
	// published: found by PublishFreed (the bit was set already), not by
	// Collect (the slot was not allocated).
	published bool
}

// Message is the panic message for b, naming the object's address, the
// span and the slot's state.
func (b BadFree) Message() string {
	what := "collected free of"
	if b.published {
		what = "freed bit already set for"
	}
	return fmt.Sprintf("offheap: racing double free of %#x: span %d [%#x, +%d pages) class %d: %s slot %d in state %d (%d such frees dropped)",
		b.addr, b.span, b.base, b.npages, b.class, what, b.slot, b.state, b.N)
}

// CountAllocated counts the span's objects that are not free: allocated,
// or freed by a non-owner and not yet collected (owner only).
func (s *Span) CountAllocated() uint32 {
	var free int
	for i := uintptr(0); i < uintptr(s.nslots)/wordBits; i++ {
		free += bits.OnesCount64(s.FreeMask(i))
	}
	return s.NElems - uint32(free)
}

// End returns the address just past the span.
func (s *Span) End() uintptr { return s.Base + uintptr(s.NPages)<<pageShift }

// Describe names the span for error and panic messages.
func (s *Span) Describe() string {
	return fmt.Sprintf("span %d [%#x, %#x) class %d state %s owner %d", s.id, s.Base, s.End(), s.Class, s.State(), s.Owner())
}
