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
// header, two atomic read-modify-writes on lines the owner reads too. In
// the producer/consumer shape (xmalloc) every free is such a free, and those
// two atomics, on lines moving between the cores, were most of its cost:
// about 60 ns a free against 15 for the rest.
//
// Now the freeing cache marks the slot SlotRemote with a plain byte store
// and notes the slot in its remoteBatch, which holds frees of one 64-slot
// word of one span. Frees arrive in allocation order in that shape, so the
// next ones usually land in the same word and cost a bit OR in the cache;
// the first free of another word publishes the batch: one atomic OR of the
// whole word into the freed bitmap and one atomic add of its count
// (spans.Span.PublishFreed), then, for a span no cache owns, the class
// lock if the count crossed relistAt or reached the span's live objects,
// exactly as a single remote free did. Frees in random order publish one
// slot a time, as before, plus the byte store.
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
// but not yet reusable, and keep their span in use, until the cache frees
// into another word, takes its allocation slow path, or is closed (an
// explicit Cache's Close, a per-P cache's trim). A per-P cache that goes
// idle keeps its batch until its P allocates again.

// remoteBatch is a cache's remote frees not yet published: bits of slots
// of word word of span s, each marked SlotRemote, and the record's gen
// when the batch began. Owned by the cache's owner, like the rest of it.
type remoteBatch struct {
	s    *spans.Span
	word uintptr
	bits uint64
	gen  uint32
}

// addRemote frees allocated slot idx of s, a span no cache owns (gen its
// record's generation), into c's batch, and counts the free. It returns
// the batches to publish now, either may be empty: old, what the batch
// held of another word, replaced by this free; due, the batch with this
// free in it, when it would oblige its publisher to take the class lock
// (remoteDue: its span reached relistAt, or has no live object left
// outside the batch), so that the span is relisted or freed just when an
// unbatched free would have done it. Small enough to inline in Heap.free.
func (c *Cache) addRemote(s *spans.Span, idx uintptr, gen uint32) (old, due remoteBatch) {
	s.MarkRemote(idx)
	bump(&c.cnt.frees[s.Class])
	w, bit := idx/64, uint64(1)<<(idx%64)
	if c.rb.s == s && c.rb.word == w {
		c.rb.bits |= bit
	} else {
		old = c.rb
		c.rb = remoteBatch{s: s, word: w, bits: bit, gen: gen}
	}
	// The count to come: this batch's, and old's if it is of the same span
	// (publishEnd publishes old first).
	k := bits.OnesCount64(c.rb.bits)
	if old.s == s {
		k += bits.OnesCount64(old.bits)
	}
	if p := s.Pending(); remoteDue(s, p, p+int32(k)) {
		due = c.takeRemote()
	}
	return old, due
}

// takeRemote empties c's batch and returns what it held.
func (c *Cache) takeRemote() remoteBatch {
	b := c.rb
	c.rb = remoteBatch{}
	return b
}

// publish sets b's freed bits and counts them. It reports whether the
// span needs the class lock (settle), with the pending counts before and
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

// publishEnd publishes old and due (either may be empty; addRemote's) from
// Heap.free, which has ended its use of the per-P cache and leaves the fast
// section of c (nil for Heap.Free) to publishEnd to end. It goes slow
// first if a span needs the class lock or a racing double free must be
// raised.
func (h *Heap) publishEnd(c *Cache, old, due remoteBatch) {
	var d [2]bool
	var prev, n [2]int32
	var bad spans.BadFree
	for i, b := range [2]remoteBatch{old, due} {
		if b.s == nil {
			continue
		}
		var bd spans.BadFree
		d[i], prev[i], n[i], bd = h.publish(b)
		if bad.N == 0 {
			bad = bd
		}
	}
	if !d[0] && !d[1] && bad.N == 0 {
		h.endFast(c)
		return
	}
	h.toSlow(c)
	defer h.leave()
	for i, b := range [2]remoteBatch{old, due} {
		if d[i] {
			h.remoteCentral(b.s, b.s.Class, b.gen, prev[i], n[i])
		}
	}
	h.panicIfBad(bad)
}

// publishSlow publishes b (which may be empty) from a slow section, and
// returns a racing double free it found, for the caller to raise when it
// may.
func (h *Heap) publishSlow(b remoteBatch) spans.BadFree {
	if b.s == nil {
		return spans.BadFree{}
	}
	due, prev, n, bad := h.publish(b)
	if due {
		h.remoteCentral(b.s, b.s.Class, b.gen, prev, n)
	}
	return bad
}
