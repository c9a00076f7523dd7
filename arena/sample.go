package arena

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/offheap/offheap/spans"
)

// Sampling: guarded allocation, profiling and debug checks all need the
// slow path to run for chosen allocations. Rather than test a countdown on
// every allocation, a Cache whose heap samples cuts each window of free
// slots short: it hands out only as many slots as may go before the next
// sample, keeps the rest of the word aside (spill), and the allocation
// that finds the window empty is the sampled one. With sampling off,
// windows are never cut and the fast path is exactly as it is without
// this file.
//
// Counts are per Cache and shared by its classes, and slots freed back
// into a window by their own cache are handed out again uncounted, so the
// rate is approximate; GuardSampleRate 1 and Debug keep windows empty and
// send local frees to the spill, so they see every allocation.

// slowAct says what a small allocation's slow path must do next, with the
// cache released.
type slowAct uint8

const (
	actDone     slowAct = iota // p is the allocation
	actNeedSpan                // the class's span is full (detached in old, if any): fetch one
	actGuard                   // guard this allocation
	actCorrupt                 // a check failed: panic with message()
)

// slowResult is what slowStep found, for the caller to act on once it has
// released the cache. Kept to a few words: in Debug mode every allocation
// returns one. What a failed check found goes to the caller's checkFault.
type slowResult struct {
	p       unsafe.Pointer // actDone: the allocation
	old     *spans.Span    // actNeedSpan: the full span, detached (or nil)
	act     slowAct
	sampled bool // actDone: p is a profile sample whose stack the caller records
}

// checkFault is what a failed check found while its caller was pinned or
// held a lock: plain values, written only on failure, formatted into the
// panic message by message() once the caller has let go. The caller
// passes a pointer to its own.
type checkFault struct {
	poison poisonFault   // Debug's poison check (poison.size > 0)
	bad    spans.BadFree // a racing double free collected (bad.N > 0)
}

// message is the panic message.
func (f *checkFault) message() string {
	if f.bad.N > 0 {
		return f.bad.Message()
	}
	return f.poison.String()
}

// slowStep is the part of the small-object slow path that runs while the
// caller owns c (an explicit Cache's goroutine, or a per-P cache pinned,
// or under its mutex in race builds). It neither blocks, nor enters the
// kernel, nor panics, nor allocates on the Go heap (which may enter the
// kernel): a panic while pinned is a fatal runtime error, and one under a
// mutex leaves the mutex locked. A failed check comes back as actCorrupt
// with the facts in *f, and the caller formats them and panics once c is
// released. noGuard is set on the retry after a guarded allocation could
// not be had.
func (c *Cache) slowStep(cl uint8, noGuard bool, f *checkFault) slowResult {
	cc := &c.cls[cl]
	if !c.h.sampling {
		if cc.free != 0 {
			return slowResult{p: c.take(cc, cl), act: actDone}
		}
		ok, bad := c.refillWindow(cc, f)
		switch {
		case bad:
			return slowResult{act: actCorrupt}
		case ok:
			return slowResult{p: c.take(cc, cl), act: actDone}
		}
		return slowResult{act: actNeedSpan, old: c.detach(cl)}
	}
	if c.accountWindow(cc) && !noGuard {
		return slowResult{act: actGuard}
	}
	if cc.free == 0 {
		cc.free, cc.spill = cc.spill, 0
	}
	if cc.free == 0 {
		ok, bad := c.refillWindow(cc, f)
		switch {
		case bad:
			return slowResult{act: actCorrupt}
		case !ok:
			return slowResult{act: actNeedSpan, old: c.detach(cl)}
		}
	}
	p, sampled := c.takeSampled(cc, cl, &f.poison)
	// Cut the window even after a failed check, so that the fast path does
	// not hand out the rest of it unchecked.
	c.limitWindow(cc)
	if p == nil {
		return slowResult{act: actCorrupt}
	}
	return slowResult{p: p, act: actDone, sampled: sampled}
}

// accountWindow charges the slots of the window that ran dry to the
// sampling countdowns, and reports whether the next allocation is to be
// guarded. A due profile sample is remembered in c.profileDue.
func (c *Cache) accountWindow(cc *classCache) (guard bool) {
	n := int64(cc.granted)
	cc.granted = 0
	cfg := &c.h.cfg
	if cfg.ProfileRate > 0 {
		c.profileLeft -= n * int64(cc.size)
		if c.profileLeft < int64(max(cc.size, 1)) {
			c.profileDue = true
			c.profileLeft = c.drawProfile()
		}
	}
	if cfg.GuardSampleRate > 0 {
		c.guardLeft -= n
		if c.guardLeft <= 0 {
			c.guardLeft = c.drawGuard()
			return true
		}
	}
	return false
}

// limitWindow cuts the window to the slots that may be handed out before
// the next sample, moving the rest to spill.
func (c *Cache) limitWindow(cc *classCache) {
	k := int64(64)
	cfg := &c.h.cfg
	if cfg.Debug {
		k = 0 // every allocation checks its slot's poison on the slow path
	}
	if cfg.GuardSampleRate > 0 {
		k = min(k, c.guardLeft)
	}
	if cfg.ProfileRate > 0 {
		k = min(k, c.profileLeft/int64(max(cc.size, 1)))
	}
	keep := lowestBits(cc.free, int(max(k, 0)))
	cc.spill |= cc.free &^ keep
	cc.free = keep
	cc.granted = uint32(bits.OnesCount64(keep))
}

// lowestBits returns the k lowest set bits of x.
func lowestBits(x uint64, k int) uint64 {
	var keep uint64
	for ; k > 0 && x != 0; k-- {
		b := x & -x
		keep |= b
		x &^= b
	}
	return keep
}

// takeSampled hands out the lowest free slot of the window like take,
// counting it against the sampling countdowns. In debug mode it first
// checks that the slot still holds the poison written when it was freed;
// a due profile sample marks the slot (so its free is noticed) and is
// reported to the caller.
//
// A slot that fails the check is retired instead (SlotRetired): taken out
// of the window, never handed out again and not freeable, with the
// corrupted bytes left in place as evidence. Handing it out would give
// the new owner memory a dangling pointer still writes to; retiring it
// costs its span, which can then never be freed. p is then nil, and *f
// holds what the check found.
func (c *Cache) takeSampled(cc *classCache, cl uint8, f *poisonFault) (p unsafe.Pointer, sampled bool) {
	idx := cc.word*64 + uintptr(bits.TrailingZeros64(cc.free))
	if c.h.cfg.Debug && !c.h.checkPoison(cc.base+idx*cc.size, cc.size, cc.span, idx, f) {
		cc.free &^= 1 << (idx % 64)
		*cc.span.Slot(idx) = spans.SlotRetired
		return nil, false
	}
	p = c.take(cc, cl)
	switch {
	case c.profileDue:
		c.profileDue = false
		*cc.span.Slot(idx) = spans.SlotSampled
		sampled = true
	case c.h.cfg.ProfileRate > 0:
		c.profileLeft -= int64(cc.size)
	}
	if c.h.cfg.GuardSampleRate > 0 {
		c.guardLeft--
	}
	return p, sampled
}

// drawGuard returns how many allocations go unguarded before the next
// guarded one: uniform in [0, 2(N-1)], mean N-1, so one in N on average.
func (c *Cache) drawGuard() int64 {
	n := int64(c.h.cfg.GuardSampleRate) - 1
	if n <= 0 {
		return 0
	}
	return int64(c.rand() % uint64(2*n+1))
}

// drawProfile returns the bytes until the next profile sample: an
// exponential draw with mean ProfileRate, so that every byte is equally
// likely to be sampled, as Go's heap profiler does.
func (c *Cache) drawProfile() int64 {
	u := (float64(c.rand()>>11) + 0.5) / (1 << 53)
	return int64(-math.Log(u) * float64(c.h.cfg.ProfileRate))
}

// rand is a per-cache xorshift64* generator: sampling needs spread, not
// cryptographic quality, and no shared state.
func (c *Cache) rand() uint64 {
	if c.rnd == 0 {
		c.rnd = uint64(c.id)*0x9e3779b97f4a7c15 | 1
	}
	c.rnd ^= c.rnd >> 12
	c.rnd ^= c.rnd << 25
	c.rnd ^= c.rnd >> 27
	return c.rnd * 0x2545f4914f6cdd1d
}

// initSampling starts a new cache's countdowns.
func (c *Cache) initSampling() {
	if c.h.cfg.GuardSampleRate > 0 {
		c.guardLeft = c.drawGuard()
	}
	if c.h.cfg.ProfileRate > 0 {
		c.profileLeft = c.drawProfile()
	}
}

// debugPoison is the byte freed small objects are filled with in debug
// mode: not zero (so reads of freed memory look wrong) and an odd pattern
// unlikely to be written by accident. poisonWord is eight of it.
const (
	debugPoison = 0xdb
	poisonWord  = 0xdbdbdbdbdbdbdbdb
)

// scrub clears a freed object, or poisons it in debug mode.
func (h *Heap) scrub(p unsafe.Pointer, size uintptr) {
	if h.cfg.Debug {
		poison(p, size)
		return
	}
	clear(unsafe.Slice((*byte)(p), size))
}

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
