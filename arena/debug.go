package arena

import (
	"fmt"
	"math/bits"
	"unsafe"

	"github.com/offheap/offheap/spans"
)

// Debug mode (Config.Debug): every freed small object is filled with a
// poison pattern, and the slow path checks it is intact before handing
// the slot out again, so a write after free is caught and reported; the
// check then clears the object for its new owner. A heap not in debug mode
// leaves freed objects as they are and clears them when they are handed
// out again (Cache.take, spans.Span.NeedZero). Debug mode
// also quarantines freed spans PROT_NONE (disposeSpan; the quarantine
// itself is shared with guarded allocation, in guard.go).

// debugPoison is the byte freed small objects are filled with in debug
// mode: not zero (so reads of freed memory look wrong) and an odd pattern
// unlikely to be written by accident. poisonWord is eight of it.
const (
	debugPoison = 0xdb
	poisonWord  = 0xdbdbdbdbdbdbdbdb
)

// poison fills size bytes at p (8-byte aligned; size a multiple of 8, as
// every class size is) with the poison, a word at a time.
func poison(p unsafe.Pointer, size uintptr) {
	for i, w := 0, unsafe.Slice((*uint64)(p), size/8); i < len(w); i++ {
		w[i] = poisonWord
	}
}

// poisonFault is a write after free found by checkPoison: the object,
// its slot and span, and the first byte that lost its poison.
type poisonFault struct {
	obj, size, off, idx uintptr
	span                *spans.Span
	found               byte
}

// String is the panic message. The span stays in use (the retired slot
// keeps it), so describing it after the cache is released is safe; its
// owner may have moved on by then.
func (f poisonFault) String() string {
	return fmt.Sprintf("offheap: write after free at %#x (byte %d of the %d-byte object at %#x, slot %d of %s): found %#x, want poison %#x; slot retired",
		f.obj+f.off, f.off, f.size, f.obj, f.idx, f.span.Describe(), f.found, debugPoison)
}

// checkPoison checks that a free slot about to be handed out still holds
// the poison, and clears it for its new owner. If something wrote to it
// after it was freed it reports false, with what it found in *f, and
// leaves the slot as it is. It neither panics nor allocates: its caller
// may be pinned (see slowStep).
func (h *Heap) checkPoison(addr, size uintptr, s *spans.Span, idx uintptr, f *poisonFault) bool {
	w := unsafe.Slice((*uint64)(h.ptr(addr)), size/8)
	for i, v := range w {
		if v == poisonWord {
			continue
		}
		k := bits.TrailingZeros64(v^poisonWord) / 8
		*f = poisonFault{obj: addr, size: size, off: uintptr(i*8 + k), idx: idx, span: s, found: byte(v >> (8 * k))}
		return false
	}
	clear(w)
	return true
}
