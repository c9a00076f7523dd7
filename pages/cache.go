package pages

import (
	"fmt"
	"math/bits"
)

// AllocCache takes an aligned 64-page block with at least one free page and
// fills c (c must be empty). ErrNoSpace when no grown chunk has a free page.
//
// The block is the one holding the lowest free page. All its free pages
// move to c (they become in use here, and their scavenged bits go with
// them); its in-use pages stay as they are and are not c's.
// errInvalidRange if c still holds free pages.
func (a *Allocator) AllocCache(c *Cache) error {
	if a.closed {
		return errClosed
	}
	if !c.Empty() {
		return fmt.Errorf("%w: cache at %#x still holds pages", errInvalidRange, c.base)
	}
	p, _, ok, err := a.findFromHint(1)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoSpace
	}
	ch, i := p/ChunkPages, p%ChunkPages
	w := i / wordBits
	cb := &a.chunks[ch]
	free := ^cb.inUse[w]
	scav := cb.scav[w] & free
	cb.inUse[w] = ^uint64(0)
	cb.scav[w] = 0
	a.setLeaf(ch, cb.inUse.summarize())
	nfree, nscav := uint(bits.OnesCount64(free)), uint(bits.OnesCount64(scav))
	a.freePages -= nfree
	a.scavPages -= nscav
	block := ch*ChunkPages + w*wordBits
	a.hint = block + CachePages // p was the lowest free page
	*c = Cache{base: a.pageAddr(block), freeBits: free, scavBits: scav}
	return nil
}

// Alloc takes npages (< CacheMaxRun) contiguous free pages from c with no
// lock; base 0 if none fit. The lowest fitting run is taken.
func (c *Cache) Alloc(npages uintptr) (base, scav uintptr) {
	if npages == 1 {
		if c.freeBits == 0 {
			return 0, 0
		}
		i := uint(bits.TrailingZeros64(c.freeBits))
		bit := uint64(1) << i
		c.freeBits &^= bit
		scav = uintptr(c.scavBits>>i) & 1
		c.scavBits &^= bit
		return c.base + uintptr(i)<<pageShift, scav
	}
	if npages == 0 || npages >= CacheMaxRun {
		return 0, 0
	}
	starts := runStarts(c.freeBits, uint(npages))
	if starts == 0 {
		return 0, 0
	}
	i := uint(bits.TrailingZeros64(starts))
	m := wordMask(i, uint(npages))
	scav = uintptr(bits.OnesCount64(c.scavBits & m))
	c.freeBits &^= m
	c.scavBits &^= m
	return c.base + uintptr(i)<<pageShift, scav
}

// Counts returns how many free pages c holds and how many of those are
// scavenged: the pages a heap counts as cached.
func (c *Cache) Counts() (free, scavenged uintptr) {
	return uintptr(bits.OnesCount64(c.freeBits)), uintptr(bits.OnesCount64(c.freeBits & c.scavBits))
}

// FreePages yields the address of each free page c holds, lowest first,
// and whether it is scavenged; for checkers (range over c.FreePages).
func (c *Cache) FreePages(yield func(addr uintptr, scavenged bool) bool) {
	for free := c.freeBits; free != 0; free &= free - 1 {
		i := uint(bits.TrailingZeros64(free))
		if !yield(c.base+uintptr(i)<<pageShift, c.scavBits>>i&1 != 0) {
			return
		}
	}
}

// Empty reports whether c holds no free page.
func (c *Cache) Empty() bool { return c.freeBits == 0 }

// FlushCache gives c's free pages back (with their scavenged bits) and
// empties c. Caller holds the heap lock. If c does not describe a block
// this allocator handed out (its free pages must be in use here) it returns
// errInvalidRange or errNotAllocated and changes nothing: a caller for whom
// that is an invariant broken panics once it has released its lock.
func (a *Allocator) FlushCache(c *Cache) error {
	if c.freeBits == 0 || a.closed {
		*c = Cache{}
		return nil
	}
	if c.base < a.base || (c.base-a.base)%(CachePages*PageSize) != 0 || (c.base-a.base)>>pageShift >= uintptr(a.npages) {
		return fmt.Errorf("%w: FlushCache of a cache at %#x outside the allocator [%#x, +%d pages)", errInvalidRange, c.base, a.base, a.npages)
	}
	p := uint((c.base - a.base) >> pageShift)
	ch, w := p/ChunkPages, p%ChunkPages/wordBits
	cb := &a.chunks[ch]
	if !a.isGrown(ch) || cb.inUse[w]&c.freeBits != c.freeBits {
		return fmt.Errorf("%w: FlushCache at %#x: free bits %#x are not all in use here (in use %#x)", errNotAllocated, c.base, c.freeBits, cb.inUse[w])
	}
	scav := c.scavBits & c.freeBits
	cb.inUse[w] &^= c.freeBits
	cb.scav[w] |= scav
	a.setLeaf(ch, cb.inUse.summarize())
	a.freePages += uint(bits.OnesCount64(c.freeBits))
	a.scavPages += uint(bits.OnesCount64(scav))
	if c.freeBits&^scav != 0 {
		a.scavMaybe[ch/wordBits] |= 1 << (ch % wordBits)
		a.scavHint = max(a.scavHint, ch+1)
	}
	a.hint = min(a.hint, p+uint(bits.TrailingZeros64(c.freeBits)))
	*c = Cache{}
	return nil
}
