package arena

import (
	"math"
	"math/bits"
	"math/rand/v2"
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

// slowStepSampled is slowStep when the heap samples: the window that ran
// dry is charged to the countdowns, a due guarded allocation is handed
// back to the caller (unless noGuard), and otherwise the next slot is
// taken through takeSampled and the window cut again. Same rules as
// slowStep: it runs while the caller owns c, and neither blocks, enters
// the kernel, panics nor allocates.
func (c *Cache) slowStepSampled(cc *classCache, cl uint8, noGuard bool, f *checkFault) slowResult {
	if c.accountWindow(cc) && !noGuard {
		return slowResult{act: actGuard}
	}
	if cc.free == 0 {
		cc.free, cc.spill = cc.spill, 0
	}
	if cc.free == 0 {
		ok, bad := c.refill(cc, f)
		switch {
		case bad:
			return slowResult{act: actCorrupt}
		case !ok:
			return slowResult{act: actNeedSpan, old: c.evictFor(cl)}
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
	retireWindow(cc)
	n := int64(cc.handed)
	cc.handed = 0
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
	cc.granted = keep
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
	if c.h.cfg.Debug {
		cc.needzero = false // checkPoison cleared the object
	}
	p = c.take(cc)
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

// sampleLarge decides whether a large allocation of size bytes is profiled:
// with probability 1 - exp(-size/rate), the chance that an exponential
// sampling point falls within it, as for small objects.
func (h *Heap) sampleLarge(size uintptr) bool {
	rate := h.cfg.ProfileRate
	return rate > 0 && rand.Float64() < -math.Expm1(-float64(size)/float64(rate))
}

// guardLarge decides whether a large allocation is guarded: one in
// GuardSampleRate.
func (h *Heap) guardLarge() bool {
	n := h.cfg.GuardSampleRate
	return n > 0 && (n == 1 || rand.IntN(n) == 0)
}

// markLargeSampled flags a large span's only slot so its free forgets the
// sample.
func markLargeSampled(s *spans.Span) { *s.Slot(0) = spans.SlotSampled }
