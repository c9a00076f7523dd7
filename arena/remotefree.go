package arena

import (
	"math/bits"
	"sync/atomic"

	"github.com/offheap/offheap/spans"
)

// Remote frees in batches.
//
// A free into a span the freeing cache does not own used to set the slot's
// freed bit with an atomic OR and count it with an atomic add on the span
// header, two atomic read-modify-writes on lines the span's owner reads
// too. In the producer/consumer shape (xmalloc) every free is such a free,
// and those atomics, on lines moving between the cores, were most of the
// consumer's cost.
//
// Now a remote free into the same 64-slot word of the same span as the
// cache's previous remote free goes into the cache's remoteBatch: the slot
// is marked SlotRemote with a plain byte store and its bit kept in the
// cache. Frees arrive in allocation order in that shape, so after the first
// free into a word the next ones land in it and cost a bit OR. The first
// free into a word goes out alone, at once, as every remote free did before
// (frees in random order, larson's, gain nothing from a batch and would pay
// the byte store). The batch is published (spans.Span.PublishFreed: one
// atomic OR of the word into the freed bitmap, one atomic add of its count)
// by the first free into another word, by the cache's allocation slow path,
// by its Close, and by the free that leaves a central span no live object
// outside the batch, so that a span is freed when its last object is.
// Publishing then does what a single remote free did: for a span no cache
// owns, the class lock if the count crossed relistAt or covers every live
// object (remoteCentral).
//
// Why it stays safe:
//   - A double free is still refused at once: SlotRemote is not allocated,
//     so every later free of the object, by any cache or the Heap, returns
//     ErrDoubleFree, as it would have found the freed bit before. Only two
//     frees that both read the byte before either wrote it slip past, as
//     two that both read the bit did before; PublishFreed then finds the
//     bit set, counts it once and the cache panics with the report after
//     leaving its section (as Collect's racing double free does).
//   - The span cannot go while a batch holds slots of it: a SlotRemote slot
//     is not free (no owner hands it out, CountAllocated counts it) and,
//     until published, not counted in Pending, so the span's last object is
//     never seen freed before the batch is published. The record the batch
//     points to is therefore the same span when it is published; gen is
//     kept for remoteCentral's own check.
//   - Stats count the frees when they happen (the cache's frees counter),
//     so HeapAlloc and HeapObjects do not wait for publication.
//
// What a batch delays: at most 64 objects of one span per cache are freed
// but not yet reusable until the cache frees into another word, takes its
// allocation slow path or is closed (an explicit Cache's Close, a per-P
// cache's trim). The owner of their span cannot collect them meanwhile,
// and a central span with them moves to the partial lists only once they
// are published. A per-P cache that goes idle keeps its batch until its P
// allocates again; one whose goroutine moved to another P mid-span can
// leave that span in use until then.
//
// Heap.Free does not batch where goroutines do not know their P (the
// offheap_nolinkname build): per-P caches are taken at random there, and
// consecutive frees would rarely share a batch. Those frees, and those of
// sampled slots or from a P with no cache, go out as batches of one,
// published at once: every remote free takes the same road.

// remoteBatch is a cache's remote frees not yet published: bits of slots
// of word word of span s, each marked SlotRemote, and the record's gen
// when the batch began. Owned by the cache's owner, like the rest of it.
type remoteBatch struct {
	s    *spans.Span
	word uintptr
	bits uint64
	gen  uint32
}

// addRemote frees allocated slot idx of s, a span c does not own (gen its
// record's generation; central: no cache owns it), and counts the free.
// A free into the word of the cache's last remote free goes into the
// batch: the slot is marked SlotRemote and its bit kept. Any other is
// direct: it goes out alone, at once, with the slot left allocated as an
// unbatched free leaves it (frees in random order gain nothing from a
// batch and would pay the byte store), and its word is remembered, as an
// empty batch, so that a next free into it starts one. addRemote returns
// the batches to publish now, either may be empty: old, the batch a direct
// free replaced; now, the direct free itself, or the batch when s is
// central and has no live object left outside it.
func (c *Cache) addRemote(s *spans.Span, idx uintptr, gen uint32, central bool) (old, now remoteBatch, direct bool) {
	bump(&c.cnt.frees[s.Class])
	w, bit := idx/64, uint64(1)<<(idx%64)
	if c.rb.s != s || c.rb.word != w {
		old = c.rb
		c.rb = remoteBatch{s: s, word: w}
		return old, remoteBatch{s: s, word: w, bits: bit, gen: gen}, true
	}
	s.MarkRemote(idx)
	if c.rb.bits == 0 {
		c.rb.gen = gen // the record may have been reused since the word was noted
	}
	c.rb.bits |= bit
	// Due for the span's last object only, not at relistAt: that would
	// hand the span to an allocating cache while this one goes on
	// freeing into it, the two sharing its lines.
	if p := s.Pending(); central && p+int32(bits.OnesCount64(c.rb.bits)) >= int32(s.Allocated()) {
		now = c.takeRemote()
	}
	return old, now, false
}

// takeRemote empties c's batch and returns what it held.
func (c *Cache) takeRemote() remoteBatch {
	b := c.rb
	c.rb = remoteBatch{}
	return b
}

// publish sets b's freed bits and counts them. It reports whether the
// span needs the class lock (remoteCentral), with the pending counts before and
// after, and what raced: bits that were set already, whose frees it takes
// back off Stats' Frees. Atomics only: it may run in a fast section.
func (h *Heap) publish(b remoteBatch) (due bool, prev, n int32, bad spans.BadFree) {
	cl := b.s.Class
	prev, n, dup := b.s.PublishFreed(b.word, b.bits)
	if dup != 0 {
		atomic.AddUint64(&h.sharedCnt.frees[cl], -uint64(bits.OnesCount64(dup)))
		bad = b.s.RaceReport(b.word, dup)
	}
	due = b.s.Owner() == spans.OwnerCentral && remoteDue(b.s, prev, n)
	return due, prev, n, bad
}

// publishEnd publishes old and now (addRemote's; either may be empty)
// from Heap.free, which has ended its use of the per-P cache and leaves the
// fast section of c (nil for Heap.Free) to publishEnd to end. It goes slow
// first if a span needs the class lock or a double free raced: the free
// being made (now, direct) gets ErrDoubleFree back, as an unbatched free
// did; a raced free of an earlier batch panics with its report. addr and
// idx are the free's, for that error.
func (h *Heap) publishEnd(c *Cache, old, now remoteBatch, direct bool, addr, idx uintptr) error {
	bs := [2]remoteBatch{old, now}
	var due [2]bool
	var prev, n [2]int32
	var bad [2]spans.BadFree
	for i, b := range bs {
		if b.bits != 0 {
			due[i], prev[i], n[i], bad[i] = h.publish(b)
		}
	}
	if !due[0] && !due[1] && bad[0].N == 0 && bad[1].N == 0 {
		h.endFast(c)
		return nil
	}
	h.toSlow(c)
	defer h.leave()
	for i, b := range bs {
		if due[i] {
			h.remoteCentral(b.s, b.s.Class, b.gen, prev[i], n[i])
		}
	}
	h.panicIfBad(bad[0])
	if bad[1].N > 0 {
		if direct {
			return doubleFreeRace(addr, idx, now.s)
		}
		h.panicIfBad(bad[1])
	}
	return nil
}

// publishSlow publishes b (which may be empty) from a slow section, and
// returns a racing double free it found, for the caller to raise when it
// may.
func (h *Heap) publishSlow(b remoteBatch) spans.BadFree {
	if b.bits == 0 {
		return spans.BadFree{}
	}
	due, prev, n, bad := h.publish(b)
	if due {
		h.remoteCentral(b.s, b.s.Class, b.gen, prev, n)
	}
	return bad
}
