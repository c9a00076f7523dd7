package arena

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
	"github.com/offheap/offheap/spans"
)

// Verify walks the whole heap and checks its invariants: every grown page
// is free, free and scavenged, held by a page cache, or in exactly one
// published span; span records agree with the page → span table, the
// central lists and their owners; free slots hold zeros in spans that
// never had a free (and poison in debug mode); and Stats'
// identities hold. It returns an error describing every violation found.
//
// Verify takes time proportional to the heap and reads caches' private
// state: call it only while no other goroutine uses the heap or its caches.
func (h *Heap) Verify() error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.leave()
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	h.scavGate.Lock() // no scavenger run out for release while we look
	defer h.scavGate.Unlock()
	h.lock.Lock()
	defer h.lock.Unlock()
	ps := h.pages.Stats()

	// Which caches hold which spans, and which pages sit in page caches.
	owners := map[uint32]*Cache{}
	var pageCaches []*pages.Cache
	h.statsMu.Lock()
	for id, c := range h.caches {
		owners[id] = c
		pageCaches = append(pageCaches, &c.pc)
	}
	h.statsMu.Unlock()
	inCache := map[uintptr]bool{}
	var cachedFree, cachedScav uintptr
	for _, pc := range pageCaches {
		for addr, scav := range pc.FreePages {
			inCache[addr] = true
			cachedFree++
			if scav {
				cachedScav++
			}
		}
	}

	// Ranges freed in debug mode wait, unpublished, in the quarantine.
	quarantined := map[uintptr]bool{}
	var spanPages, liveBytes uintptr
	h.guard.mu.Lock()
	for _, q := range h.guard.quarantine {
		if q.span != nil {
			continue // published, walked like any span
		}
		spanPages += q.npages
		for i := uintptr(0); i < q.npages; i++ {
			quarantined[q.base+i*pages.PageSize] = true
		}
	}
	h.guard.mu.Unlock()
	seen := map[spans.ID]bool{}
	for addr := h.base; addr < h.growNext; addr += pages.PageSize {
		page := (addr - h.base) / pages.PageSize
		id := h.spans.PageSpan(page)
		st := h.pages.State(addr)
		if id == 0 {
			if st == pages.InUse && !inCache[addr] && !h.inPendingGrow(addr) && !quarantined[addr] {
				bad("page %#x: in use but in no span or page cache", addr)
			}
			continue
		}
		s := h.spans.Span(id)
		if !s.State().Published() {
			bad("page %#x: table names unpublished %s", addr, s.Describe())
			continue
		}
		if addr < s.Base || addr >= s.End() {
			bad("page %#x: table names %s, which does not cover it", addr, s.Describe())
		}
		if st != pages.InUse {
			bad("page %#x: in %s but page state %d", addr, s.Describe(), st)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		spanPages += uintptr(s.NPages)
		liveBytes += h.verifySpan(s, owners, bad)
	}
	for _, r := range h.noAccess {
		for addr := r.base; addr < r.base+r.npages*pages.PageSize; addr += pages.PageSize {
			if h.pages.State(addr) == pages.InUse && !inCache[addr] {
				bad("page %#x: listed as left PROT_NONE but in use", addr)
			}
		}
	}
	if n := int64(len(h.noAccess)); n != h.noAccessN.Load() {
		bad("%d ranges left PROT_NONE, counter says %d", n, h.noAccessN.Load())
	}
	if spanPages != uintptr(h.inusePages.Load()) {
		bad("spans cover %d pages, inuse counter says %d", spanPages, h.inusePages.Load())
	}
	if cachedFree != uintptr(h.cachedPages.Load()) || cachedScav != uintptr(h.cachedScav.Load()) {
		bad("page caches hold %d free (%d scavenged), counters say %d (%d)",
			cachedFree, cachedScav, h.cachedPages.Load(), h.cachedScav.Load())
	}
	// Stats.SpansCached: the spans caches hold, by class.
	var held [sizeclasses.NumClasses]int64
	for _, c := range owners {
		for _, s := range c.heldSpans() {
			held[s.Class]++
		}
	}
	for cl := range h.central {
		c := &h.central[cl]
		c.mu.Lock()
		if n := c.cached.Load(); n != held[cl] {
			bad("class %d: caches hold %d spans, cached counter says %d", cl, held[cl], n)
		}
		lists := []*spans.List{&c.full}
		for b := range c.partial {
			lists = append(lists, &c.partial[b])
		}
		for i, l := range lists {
			n := 0
			l.Each(h.spans, func(*spans.Span) { n++ })
			if n != l.Len() {
				bad("class %d: central list %d holds %d spans, its length says %d", cl, i, n, l.Len())
			}
			l.Each(h.spans, func(s *spans.Span) {
				if !seen[s.ID()] || int(s.Class) != cl {
					bad("central list of class %d holds foreign or unpublished %s", cl, s.Describe())
				}
				if i > 0 && int(s.Bucket) != i-1 {
					bad("%s: on partial bucket %d, records %d", s.Describe(), i-1, s.Bucket)
				}
			})
		}
		c.mu.Unlock()
	}

	h.lock.Unlock()
	st := h.Stats()
	h.lock.Lock()
	if st.HeapSys != st.HeapInuse+st.HeapIdle {
		bad("HeapSys %d != HeapInuse %d + HeapIdle %d", st.HeapSys, st.HeapInuse, st.HeapIdle)
	}
	if st.HeapReleased > st.HeapIdle {
		bad("HeapReleased %d > HeapIdle %d", st.HeapReleased, st.HeapIdle)
	}
	if st.HeapAlloc != uint64(liveBytes) {
		bad("HeapAlloc %d != %d bytes of live objects found in spans", st.HeapAlloc, liveBytes)
	}
	if want := uint64(ps.Scavenged+cachedScav) * pages.PageSize; st.HeapReleased != want {
		bad("HeapReleased %d != %d scavenged free pages", st.HeapReleased, want/pages.PageSize)
	}
	return errors.Join(errs...)
}

func (h *Heap) inPendingGrow(addr uintptr) bool {
	for _, r := range h.pendingGrow {
		if addr >= r.base && addr < r.base+r.npages*pages.PageSize {
			return true
		}
	}
	return false
}

// verifySpan checks one span's ownership, slots and free memory and
// returns the bytes of its live objects.
func (h *Heap) verifySpan(s *spans.Span, owners map[uint32]*Cache, bad func(string, ...any)) uintptr {
	switch s.State() {
	case spans.StateLarge, spans.StateGuarded:
		return uintptr(s.NPages) * pages.PageSize
	case spans.StateManual, spans.StateGuardedFreed:
		return 0 // region memory and quarantined objects are not in HeapAlloc
	}
	var live uintptr
	size := uintptr(s.ElemSize)
	for i := uintptr(0); i < uintptr(s.NSlots()); i++ {
		switch *s.Slot(i) {
		case spans.SlotAllocated, spans.SlotSampled:
			if i >= uintptr(s.NElems) {
				bad("%s: padding slot %d allocated", s.Describe(), i)
			}
			if !s.FreedBit(i) {
				live += size
			}
		case spans.SlotFree:
			if i >= uintptr(s.NElems) {
				bad("%s: padding slot %d free", s.Describe(), i)
				continue
			}
			if s.FreedBit(i) {
				bad("%s: free slot %d has a pending free", s.Describe(), i)
			}
			// Frees leave objects as they are (allocation clears), so
			// only a span with no free yet has known contents.
			if s.NeedZero() && !h.cfg.Debug {
				continue
			}
			obj := unsafe.Slice((*byte)(h.ptr(s.Base+i*size)), size)
			want := byte(0)
			if h.cfg.Debug {
				want = debugPoison
			}
			for k, b := range obj {
				if b != want {
					bad("%s: free slot %d holds %#x at byte %d", s.Describe(), i, b, k)
					break
				}
			}
		case spans.SlotRemote:
			// Freed by a cache that does not own the span, its freed bit
			// set or still in that cache's batch (remotefree.go): not live.
			if i >= uintptr(s.NElems) {
				bad("%s: padding slot %d freed remotely", s.Describe(), i)
			}
		case spans.SlotRetired:
			// A slot a debug check found written after free: out of use
			// for good, holding the corrupted bytes (sample.go). The
			// check's panic reported it; it is neither live nor free.
			if i >= uintptr(s.NElems) || !h.cfg.Debug {
				bad("%s: slot %d retired (objects %d, debug %v)", s.Describe(), i, s.NElems, h.cfg.Debug)
			}
			if s.FreedBit(i) {
				bad("%s: retired slot %d has a pending free", s.Describe(), i)
			}
		case spans.SlotPad:
			if i < uintptr(s.NElems) {
				bad("%s: slot %d marked padding", s.Describe(), i)
			}
		default:
			bad("%s: slot %d in unknown state %d", s.Describe(), i, *s.Slot(i))
		}
	}
	switch o := s.Owner(); {
	case o == spans.OwnerCentral:
		alloc := s.CountAllocated()
		var freed int32
		for i := uintptr(0); i < uintptr(s.NElems); i++ {
			if s.FreedBit(i) {
				freed++
			}
		}
		if s.Pending() != freed {
			bad("%s: pending count %d, freed bits %d", s.Describe(), s.Pending(), freed)
		}
		if s.Allocated() != alloc {
			bad("%s: Allocated %d, slots say %d", s.Describe(), s.Allocated(), alloc)
		}
		if alloc == uint32(freed) {
			bad("%s: central span with no live object was not freed", s.Describe())
		}
		want := uint8(spans.ListPartial)
		if alloc == s.NElems && freed < relistAt(s) {
			want = spans.ListFull // relisted once relistAt frees are pending
		}
		if s.List != want {
			bad("%s: on list %d, want %d", s.Describe(), s.List, want)
		}
	case o == spans.OwnerTransit:
		bad("%s: left in transit", s.Describe())
	default:
		if c := owners[o]; c == nil {
			bad("%s: owned by unknown cache %d", s.Describe(), o)
		} else if !c.owns(s) {
			bad("%s: owner cache %d does not hold it", s.Describe(), o)
		}
		if s.List != spans.ListNone {
			bad("%s: cached span on a central list", s.Describe())
		}
	}
	return live
}
