package arena

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Cache is a worker's private front end to a Heap: for each size class it
// owns a few spans (up to ownedLimit) and hands out the free slots of one
// of them, the current span, with a bit scan, taking no lock and making no
// atomic read-modify-write beyond one counter update. A free into any span
// the cache owns is a plain store too; when the current span runs dry the
// cache moves on to another owned span with free slots before it asks the
// central lists for one (see refillOwned).
//
// Its fast path marks itself with an owner-written sequence word (odd while
// inside), so that a concurrent Heap.Close can wait for it before
// unmapping the span it writes (closing.go): two plain stores, no runtime
// call and no atomic operation.
//
// A Cache belongs to one goroutine at a time: its methods must not be
// called concurrently (pass it between goroutines only with
// synchronisation). Objects it allocates may be freed through any Cache of
// the same Heap or through the Heap itself. Close hands its spans and
// cached pages back, and publishes its last batch of frees into spans it
// does not own (up to 64 objects of one span, remotefree.go); a Cache
// that is never closed keeps them.
type Cache struct {
	h  *Heap
	id uint32
	//lint:ignore U1000 used by race builds only (sync_race.go)
	pmu    sync.Mutex // race builds: guards a per-P cache
	closed bool
	// emptyWindows is the heap's (copied here so that localFree stays
	// small enough to inline); debug is Config.Debug (copied for
	// freeOwned: debug frees poison, in Heap.free).
	emptyWindows bool
	debug        bool
	// seq is odd while the owner is inside a fast section (normal builds,
	// sync_norace.go: written by the owner with plain stores, read
	// atomically by Close).
	//lint:ignore U1000 used by normal builds only
	seq uint32
	pc  pages.Cache    // the worker page cache for small spans
	rb  remoteBatch    // remote frees not yet published (remotefree.go)
	cnt *cacheCounters // shared with Stats
	cls [sizeclasses.NumClasses]classCache

	// Sampling countdowns (sample.go), used only when the heap samples.
	guardLeft   int64  // allocations before the next guarded one
	profileLeft int64  // bytes before the next profile sample
	profileDue  bool   // the next slot taken is a profile sample
	rnd         uint64 // xorshift state for the draws
}

// maxOwned is the most spans a Cache owns per size class, and
// ownedBytes the most bytes of spans it owns per class (the smaller of
// the two bounds applies; at least one span). Owning several spans per
// class is what keeps frees local: in a workload that replaces random
// objects of a live set, a cache that owned one span per class saw most
// frees land in spans it had let go (remote frees, with atomics and class
// locks) and refilled every few allocations in classes of 8 objects per
// span. The bounds cap what a cache hoards: at most ownedBytes of free
// slots per class per cache (64 KiB; 67 classes make a worst case of
// about 4 MiB per cache, reached only by a worker that keeps spans of
// every class partly live), and they keep the owned set a fixed array
// scanned in a few nanoseconds on a refill. Beyond them, the dry current
// span goes back to the central lists as before.
//
// Why 64 KiB and not more: owned spans are invisible to DefragHint and
// hold their free slots away from every other cache, so the hoard is a
// floor under HeapInuse after a mass delete (per-P caches: GOMAXPROCS of
// them). At 256 KiB a 90 % delete of a 3 MiB BytesMap left in-use at
// 2.2x live after defragmenting, and arenastat's massdelete at 128 MiB
// stayed at 1.73x under churn; at 64 KiB the map reaches 1.29x. larson
// with 5,000 live objects per worker measured 1.5-2.2x Go make at either
// bound on this noisy machine (BENCHMARKS.md).
const (
	maxOwned   = 8
	ownedBytes = 64 << 10
)

// classCache is a Cache's spans of one class: the spans it owns, and the
// current one's window, the free slots of one 64-slot word of the span,
// taken from the slot state bytes and handed out lowest first.
type classCache struct {
	span   *spans.Span
	base   uintptr        // span base
	basep  unsafe.Pointer // span base as a pointer (h.ptr(base))
	slots  unsafe.Pointer // the span's slot state bytes (span.Slot(0))
	size   uintptr        // object size
	free   uint64         // bit i: slot word*64+i is free and not handed out
	word   uintptr
	nwords uintptr
	// needzero: take clears what it hands out, because a slot of the span
	// may hold a freed object's data (span.NeedZero). Ignored in debug
	// mode, where free slots hold poison and the slow path's poison check
	// clears the object it hands out (takeSampled).
	needzero bool

	// When the heap samples (sample.go): free slots of word held back from
	// the window; the slots the window was granted (limitWindow), so that
	// those handed out can be told from those left; and the count of
	// slots handed out from earlier windows, not yet charged to the
	// sampling countdowns.
	spill   uint64
	granted uint64
	handed  uint32

	// mallocs and frees point to the cache's counters of the class (cnt),
	// for take and the local free: one load and no index arithmetic on
	// the fast paths.
	mallocs, frees *uint64

	// The spans owned, the current one among them: owned[i] has
	// OwnerSlot i. ready bit i: owned[i] (not current) had a local free
	// since it was last current, so it has a free slot. limit is the
	// class's bound (ownedLimit), set at the first install.
	ready  uint32
	nowned uint8
	limit  uint8
	owned  [maxOwned]*spans.Span
}

// ownedLimit is how many spans of class cl a cache may own.
func ownedLimit(cl uint8) uint8 {
	n := ownedBytes / (sizeclasses.Pages(cl) * pages.PageSize)
	return uint8(max(1, min(n, maxOwned)))
}

// cacheCounters are a cache's allocation counts. Only the owner writes
// them, with bump; Stats reads them with atomic loads.
type cacheCounters struct {
	mallocs [sizeclasses.NumClasses]uint64
	frees   [sizeclasses.NumClasses]uint64
}

// fold adds a closed cache's counts into dst (which is guarded by statsMu).
func (dst *cacheCounters) fold(src *cacheCounters) {
	for i := range dst.mallocs {
		atomic.AddUint64(&dst.mallocs[i], atomic.LoadUint64(&src.mallocs[i]))
		atomic.AddUint64(&dst.frees[i], atomic.LoadUint64(&src.frees[i]))
	}
}

// NewCache returns a Cache for one worker goroutine. The per-P caches
// behind Heap.Alloc are made by it too (pcache.go).
func (h *Heap) NewCache() *Cache {
	c := &Cache{h: h, cnt: new(cacheCounters), emptyWindows: h.emptyWindows, debug: h.cfg.Debug}
	for cl := range c.cls {
		c.cls[cl].mallocs, c.cls[cl].frees = &c.cnt.mallocs[cl], &c.cnt.frees[cl]
	}
	h.statsMu.Lock()
	h.nextID++
	c.id = h.nextID
	h.caches[c.id] = c
	h.statsMu.Unlock()
	c.initSampling()
	return c
}

// Alloc returns size bytes of zeroed memory, aligned to 8 bytes, to 16 for
// sizes of 16 or more, and to 8 KiB above 32 KiB. Alloc(0) returns a
// distinct 8-byte object.
func (c *Cache) Alloc(size int) (unsafe.Pointer, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if uint(size) <= sizeclasses.MaxSmallSize {
		cl := sizeclasses.SizeToClass(uintptr(size))
		if cc := &c.cls[cl]; cc.free != 0 {
			// take writes the slot's state byte in the span record: a
			// fast section, so Close cannot unmap the record meanwhile.
			if !c.openCache() {
				c.closeCache()
				return nil, ErrClosed
			}
			p := c.takeSlot(cc)
			if cc.needzero {
				clearObj(p, cc.size)
			}
			c.closeCache()
			return p, nil
		}
	}
	return c.allocSlowEntered(size)
}

// allocSlowEntered is Alloc's slow path, in a slow section of the cache's
// own (openSlow, closing.go): a Cache refills often in workloads that
// free in random order, and the heap's shared inflight counter, written by
// every goroutine's slow path, cost a contended cache line per refill.
func (c *Cache) allocSlowEntered(size int) (unsafe.Pointer, error) {
	h := c.h
	if !c.openSlow() {
		return nil, ErrClosed
	}
	defer c.closeSlow()
	if uint(size) <= sizeclasses.MaxSmallSize {
		return c.allocSlow(sizeclasses.SizeToClass(uintptr(size)), size)
	}
	return h.allocLarge(size, &c.pc)
}

// take hands out the lowest free slot of the window (cc.free != 0),
// cleared if the span needs it: frees leave objects as they are, so zeroing
// happens here, on a line the caller is about to write anyway, and not on
// the (often cold) line a free touches. A slot of a span that never had a
// free lies on memory allocSpan knew or made zero, and is not cleared.
// The clear cannot fault into the kernel: a slot that needs it was written
// by its previous owner, and in-use spans are never released. The fast
// paths (Cache.Alloc, Heap.Alloc) call takeSlot and clearObj themselves,
// which keeps both within the inliner's budget.
func (c *Cache) take(cc *classCache) unsafe.Pointer {
	p := c.takeSlot(cc)
	if cc.needzero {
		clearObj(p, cc.size)
	}
	return p
}

// takeSlot is take without the clear: the caller clears the object if
// cc.needzero.
func (c *Cache) takeSlot(cc *classCache) unsafe.Pointer {
	i := uintptr(bits.TrailingZeros64(cc.free))
	cc.free &= cc.free - 1
	idx := cc.word*64 + i
	*(*uint8)(unsafe.Add(cc.slots, idx)) = spans.SlotAllocated
	bump(cc.mallocs)
	return unsafe.Add(cc.basep, idx*cc.size)
}

// clearObj zeroes the size bytes at p (size a multiple of 8, as every
// class size is). Objects of up to 64 bytes are cleared with word stores
// of their own, overlapping where the size is not a power of two: a
// memclr call, with the registers it makes the caller spill, cost about 35
// instructions a 16- or 64-byte allocation under callgrind.
func clearObj(p unsafe.Pointer, size uintptr) {
	switch {
	case size <= 16: // the first and last words: one twice for 8 bytes
		*(*uint64)(p) = 0
		*(*uint64)(unsafe.Add(p, size-8)) = 0
	case size <= 32: // 24 or 32: two words each from both ends
		*(*[2]uint64)(p) = [2]uint64{}
		*(*[2]uint64)(unsafe.Add(p, size-16)) = [2]uint64{}
	case size <= 64: // 48 or 64: four words each from both ends
		*(*[4]uint64)(p) = [4]uint64{}
		*(*[4]uint64)(unsafe.Add(p, size-32)) = [4]uint64{}
	default:
		clear(unsafe.Slice((*byte)(p), size))
	}
}

// refillWindow finds another word of the span with free slots, collecting
// remote frees if none is left. It reports whether it found one. Lock-free,
// syscall-free and panic-free: per-P caches call it while pinned. A racing
// double free found by the collection is reported by bad, with what was
// found in f.bad, for the caller to panic with once unpinned.
func (c *Cache) refillWindow(cc *classCache, f *checkFault) (ok, bad bool) {
	if cc.span == nil {
		return false, false
	}
	if c.scanWindow(cc, cc.word+1) {
		return true, false
	}
	if cc.span.HasPending() {
		n, b := c.h.collect(cc.span)
		if b.N > 0 {
			f.bad = b
			return false, true
		}
		if n > 0 {
			return c.scanWindow(cc, cc.word), false
		}
	}
	return false, false
}

// scanWindow looks for free slots in every word of the span, starting at
// word from and wrapping around.
func (c *Cache) scanWindow(cc *classCache, from uintptr) bool {
	for k := uintptr(0); k < cc.nwords; k++ {
		w := (from + k) % cc.nwords
		if m := cc.span.FreeMask(w); m != 0 {
			retireWindow(cc)
			cc.word, cc.free, cc.spill = w, m, 0
			cc.needzero = cc.span.NeedZero() && !c.h.cfg.Debug
			return true
		}
	}
	return false
}

// switchTo makes s, a span the cache owns with no window open (cc.free
// and cc.spill empty), the current span, and opens a window on its free
// slots if it has any.
func (c *Cache) switchTo(cc *classCache, s *spans.Span) bool {
	cc.span, cc.base, cc.size = s, s.Base, uintptr(s.ElemSize)
	cc.basep, cc.slots = c.h.ptr(s.Base), unsafe.Pointer(s.Slot(0))
	cc.nwords = uintptr(s.NSlots()) / 64
	retireWindow(cc)
	cc.free, cc.spill = 0, 0
	return c.scanWindow(cc, 0)
}

// retireWindow notes, before a window is replaced, how many of the slots
// it was granted were handed out, for accountWindow to charge; the others
// stay free in their span and are charged when a later window hands them
// out. Charging a whole grant instead counted unused slots twice when a
// per-P cache's window was replaced or re-cut before it ran dry (a slow
// path landing on another P's cache, as in the offheap_nolinkname build),
// and the profile overestimated live bytes by 2x there.
func retireWindow(cc *classCache) {
	cc.handed += uint32(bits.OnesCount64(cc.granted &^ cc.free))
	cc.granted = 0
}

// refillOwned looks for free slots in the other spans the cache owns of
// the class, once the current span has none: first those that had a
// local free since they were current (ready), then those with remote
// frees to collect. It reports whether it found some, with the window
// open on them. Same rules as refillWindow: lock-free, pinned-safe, a
// racing double free comes back in f.bad.
func (c *Cache) refillOwned(cc *classCache, f *checkFault) (ok, bad bool) {
	for cc.ready != 0 {
		i := bits.TrailingZeros32(cc.ready)
		cc.ready &^= 1 << i
		if s := cc.owned[i]; s != cc.span && c.switchTo(cc, s) {
			return true, false
		}
	}
	for i := range cc.nowned {
		s := cc.owned[i]
		if s == cc.span || s.Pending() <= 0 {
			continue
		}
		n, b := c.h.collect(s)
		if b.N > 0 {
			f.bad = b
			return false, true
		}
		if n > 0 && c.switchTo(cc, s) {
			return true, false
		}
	}
	return false, false
}

// install makes s (in transit) a span the cache owns of class cl, and its
// current span. If the cache already owns as many as it may, the current
// span is let go to make room, and returned in transit (else nil).
func (c *Cache) install(cl uint8, s *spans.Span) (old *spans.Span) {
	cc := &c.cls[cl]
	if cc.limit == 0 {
		cc.limit = ownedLimit(cl)
	}
	if cc.nowned >= cc.limit {
		old = c.evict(cl)
	}
	s.SetOwner(c.id)
	i := cc.nowned
	cc.nowned++
	cc.owned[i] = s
	s.SetOwnerSlot(i)
	cc.ready &^= 1 << i
	c.switchTo(cc, s)
	return old
}

// evictFor makes room for a new span of class cl: nil if the cache may
// own one more, else the current span (dry: the caller found no free slot
// in any owned span), detached and in transit.
func (c *Cache) evictFor(cl uint8) *spans.Span {
	cc := &c.cls[cl]
	if cc.limit == 0 || cc.nowned < cc.limit {
		return nil
	}
	return c.evict(cl)
}

// evict detaches the current span of class cl (or, with none current, the
// last owned) and returns it in transit, or nil if the cache owns none.
func (c *Cache) evict(cl uint8) *spans.Span {
	cc := &c.cls[cl]
	if cc.nowned == 0 {
		return nil
	}
	s := cc.span
	if s == nil {
		s = cc.owned[cc.nowned-1]
	}
	c.disown(cc, s)
	return s
}

// disown removes s from the spans the cache owns of its class and puts it
// in transit. If it was current, no span is current afterwards.
func (c *Cache) disown(cc *classCache, s *spans.Span) {
	i, last := s.OwnerSlot(), cc.nowned-1
	if cc.owned[i] != s {
		panic(fmt.Sprintf("offheap: cache %d does not own %s at its slot %d", c.id, s.Describe(), i))
	}
	if i != last {
		m := cc.owned[last]
		cc.owned[i] = m
		m.SetOwnerSlot(i)
		cc.ready &^= 1 << i
		if cc.ready&(1<<last) != 0 {
			cc.ready |= 1 << i
		}
	}
	cc.ready &^= 1 << last
	cc.owned[last] = nil
	cc.nowned--
	if cc.span == s {
		cc.span, cc.base, cc.size, cc.free, cc.spill, cc.word, cc.nwords, cc.needzero = nil, 0, 0, 0, 0, 0, 0, false
		cc.basep, cc.slots = nil, nil
	}
	s.SetOwner(spans.OwnerTransit)
}

// heldSpans returns every span the cache owns (for Verify and tests; call
// it only while no one uses the cache).
func (c *Cache) heldSpans() []*spans.Span {
	var out []*spans.Span
	for i := range c.cls {
		out = append(out, c.cls[i].owned[:c.cls[i].nowned]...)
	}
	return out
}

// owns reports whether s is among the spans c owns (Verify).
func (c *Cache) owns(s *spans.Span) bool {
	cc := &c.cls[s.Class]
	i := s.OwnerSlot()
	return i < cc.nowned && cc.owned[i] == s
}

// allocSlow refills the class's window or replaces its span, and serves
// sampled allocations.
func (c *Cache) allocSlow(cl uint8, size int) (unsafe.Pointer, error) {
	// The batch of remote frees goes out first: it may hold free slots
	// of a span this cache took over since.
	c.h.panicIfBad(c.h.publishSlow(c.takeRemote()))
	noGuard := false
	var f checkFault
	for {
		r := c.slowStep(cl, noGuard, &f)
		switch r.act {
		case actDone:
			if r.sampled {
				c.h.recordSample(r.p, cl, 0)
			}
			return r.p, nil
		case actCorrupt:
			c.h.raise(f.message())
		case actGuard:
			if p, ok, err := c.h.allocGuarded(size); ok || err != nil {
				return p, err
			}
			noGuard = true // no guarded slot free: an ordinary allocation
			continue
		}
		if r.old != nil {
			c.h.panicIfBad(c.h.uncacheSpan(r.old))
		}
		s, err := c.h.cacheSpan(cl, &c.pc)
		if err != nil {
			return nil, err
		}
		if old := c.install(cl, s); old != nil {
			c.h.panicIfBad(c.h.uncacheSpan(old))
		}
	}
}

// slowAct says what a small allocation's slow path must do next, with the
// cache released.
type slowAct uint8

const (
	actDone     slowAct = iota // p is the allocation
	actNeedSpan                // no owned span has a free slot (one let go in old, if any): fetch one
	actGuard                   // guard this allocation
	actCorrupt                 // a check failed: panic with message()
)

// slowResult is what slowStep found, for the caller to act on once it has
// released the cache. Kept to a few words: in Debug mode every allocation
// returns one. What a failed check found goes to the caller's checkFault.
type slowResult struct {
	p       unsafe.Pointer // actDone: the allocation
	old     *spans.Span    // actNeedSpan: a full span let go, in transit (or nil)
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
	if c.h.sampling {
		return c.slowStepSampled(cc, cl, noGuard, f)
	}
	if cc.free != 0 {
		return slowResult{p: c.take(cc), act: actDone}
	}
	ok, bad := c.refill(cc, f)
	switch {
	case bad:
		return slowResult{act: actCorrupt}
	case ok:
		return slowResult{p: c.take(cc), act: actDone}
	}
	return slowResult{act: actNeedSpan, old: c.evictFor(cl)}
}

// refill opens a window on free slots of the current span, or else of
// another span the cache owns (refillWindow, refillOwned).
func (c *Cache) refill(cc *classCache, f *checkFault) (ok, bad bool) {
	if ok, bad = c.refillWindow(cc, f); ok || bad {
		return ok, bad
	}
	return c.refillOwned(cc, f)
}

// Free frees an object allocated from the same Heap by any Cache or by the
// Heap. It returns ErrInvalidPointer or ErrDoubleFree, changing nothing,
// for a pointer that is not the start of a live object.
func (c *Cache) Free(p unsafe.Pointer) error {
	if c.closed {
		return ErrClosed
	}
	if !c.openCache() {
		c.closeCache()
		return ErrClosed
	}
	s := c.h.spans.Lookup(uintptr(p))
	if s != nil && c.freeOwned(s, uintptr(p)) {
		c.closeCache()
		return nil
	}
	return c.h.free(c, 0, p, s)
}

// freeOwned is the common free in a fast section, kept apart from
// Heap.free (which checks and handles every case, and costs a call with
// many arguments and spills): an allocated object, not a profile sample,
// of a span c owns, outside debug mode. It performs the free and reports
// true, or changes nothing and reports false for Heap.free to sort out
// (errors included). The checks are Heap.free's: the address is the start
// of an object of the span and its slot is allocated with no remote free
// pending on it. The owner test makes the span safe to use: no one else
// can free or reuse a span c owns, so the record Lookup found is stable.
//
// Only small-object spans ever have a cache as owner (class-0 spans keep
// the OwnerCentral a fresh record gets, and cache IDs start at 1), so the
// owner test also refuses class 0.
func (c *Cache) freeOwned(s *spans.Span, addr uintptr) bool {
	if s.Owner() != c.id || c.debug {
		return false
	}
	cl := s.Class
	off := addr - s.Base
	idx := sizeclasses.ObjIndex(cl, off)
	if idx*uintptr(s.ElemSize) != off || idx >= uintptr(s.NElems) ||
		*s.Slot(idx) != spans.SlotAllocated || (s.Pending() != 0 && s.FreedBit(idx)) {
		return false
	}
	s.SetNeedZero()
	cc := &c.cls[cl]
	c.localFree(cc, s, idx)
	bump(cc.frees)
	return true
}

// localFree frees slot idx of class cl in a span this cache owns. The
// object keeps its data: the caller (Heap.free) marks the span as needing
// zeroing, and the allocation that hands the slot out again clears it
// (take); the caller counts the free too. Kept small enough to inline.
func (c *Cache) localFree(cc *classCache, s *spans.Span, idx uintptr) {
	*s.Slot(idx) = spans.SlotFree
	if cc.span != s {
		cc.ready |= 1 << (s.OwnerSlot() % maxOwned) // (no shift-overflow code)
	} else if idx/64 == cc.word {
		// With windows kept empty (emptyWindows), the slot goes back
		// through the slow path, which checks its poison or guards it.
		w := &cc.free
		if c.emptyWindows {
			w = &cc.spill
		}
		*w |= 1 << (idx % 64)
		cc.needzero = true // takeSampled clears it again in debug mode
	}
}

// Close hands the cache's spans and cached pages back to the heap. Later
// calls on the Cache return ErrClosed.
func (c *Cache) Close() error {
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	h := c.h
	if !h.enter() {
		return ErrClosed
	}
	defer h.leave()
	h.panicIfBad(c.release())
	return nil
}

// release hands a closed cache's spans and cached pages back and retires
// its counters: Close, and trimPerP for a dropped per-P cache. It runs in
// a slow section, with no one else using the cache, and returns the first
// racing double free it found, to be raised once it is done.
func (c *Cache) release() (bad spans.BadFree) {
	h := c.h
	bad = h.publishSlow(c.takeRemote())
	for cl := range c.cls {
		for {
			s := c.evict(uint8(cl))
			if s == nil {
				break
			}
			if b := h.uncacheSpan(s); bad.N == 0 {
				bad = b
			}
		}
	}
	h.flushPageCache(&c.pc)
	h.statsMu.Lock()
	h.retired.fold(c.cnt)
	delete(h.caches, c.id)
	h.statsMu.Unlock()
	return bad
}
