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
// ErrInvalidRange if c still holds free pages.
func (a *Allocator) AllocCache(c *Cache) error {
	if a.closed {
		return ErrClosed
	}
	if !c.Empty() {
		return fmt.Errorf("%w: cache at %#x still holds pages", ErrInvalidRange, c.Base)
	}
	p, _, ok, err := a.findFromHint(1)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoSpace
	}
	ch, i := p/ChunkPages, p%ChunkPages
	w := i / 64
	cb := &a.chunks[ch]
	free := ^cb.inUse[w]
	scav := cb.scav[w] & free
	cb.inUse[w] = ^uint64(0)
	cb.scav[w] = 0
	a.setLeaf(ch, cb.inUse.summarize())
	nfree, nscav := uint(bits.OnesCount64(free)), uint(bits.OnesCount64(scav))
	a.freePages -= nfree
	a.scavPages -= nscav
	block := ch*ChunkPages + w*64
	a.hint = block + CachePages // p was the lowest free page
	*c = Cache{Base: a.pageAddr(block), FreeBits: free, ScavBits: scav}
	return nil
}

// Alloc takes npages (< CacheMaxRun) contiguous free pages from c with no
// lock; base 0 if none fit. The lowest fitting run is taken.
func (c *Cache) Alloc(npages uintptr) (base, scav uintptr) {
	if npages == 1 {
		if c.FreeBits == 0 {
			return 0, 0
		}
		i := uint(bits.TrailingZeros64(c.FreeBits))
		bit := uint64(1) << i
		c.FreeBits &^= bit
		scav = uintptr(c.ScavBits>>i) & 1
		c.ScavBits &^= bit
		return c.Base + uintptr(i)<<PageShift, scav
	}
	if npages == 0 || npages >= CacheMaxRun {
		return 0, 0
	}
	starts := runStarts(c.FreeBits, uint(npages))
	if starts == 0 {
		return 0, 0
	}
	i := uint(bits.TrailingZeros64(starts))
	m := wordMask(i, uint(npages))
	scav = uintptr(bits.OnesCount64(c.ScavBits & m))
	c.FreeBits &^= m
	c.ScavBits &^= m
	return c.Base + uintptr(i)<<PageShift, scav
}

// Empty reports whether c holds no free page.
func (c *Cache) Empty() bool { return c.FreeBits == 0 }

// FlushCache gives c's free pages back (with their scavenged bits) and
// empties c. Caller holds the heap lock. If c does not describe a block
// this allocator handed out (its free pages must be in use here) it returns
// ErrInvalidRange or ErrNotAllocated and changes nothing: a caller for whom
// that is an invariant broken panics once it has released its lock.
func (a *Allocator) FlushCache(c *Cache) error {
	if c.FreeBits == 0 || a.closed {
		*c = Cache{}
		return nil
	}
	if c.Base < a.base || (c.Base-a.base)%(CachePages*PageSize) != 0 || (c.Base-a.base)>>PageShift >= uintptr(a.npages) {
		return fmt.Errorf("%w: FlushCache of a cache at %#x outside the allocator [%#x, +%d pages)", ErrInvalidRange, c.Base, a.base, a.npages)
	}
	p := uint((c.Base - a.base) >> PageShift)
	ch, w := p/ChunkPages, p%ChunkPages/64
	cb := &a.chunks[ch]
	if !a.isGrown(ch) || cb.inUse[w]&c.FreeBits != c.FreeBits {
		return fmt.Errorf("%w: FlushCache at %#x: free bits %#x are not all in use here (in use %#x)", ErrNotAllocated, c.Base, c.FreeBits, cb.inUse[w])
	}
	scav := c.ScavBits & c.FreeBits
	cb.inUse[w] &^= c.FreeBits
	cb.scav[w] |= scav
	a.setLeaf(ch, cb.inUse.summarize())
	a.freePages += uint(bits.OnesCount64(c.FreeBits))
	a.scavPages += uint(bits.OnesCount64(scav))
	if c.FreeBits&^scav != 0 {
		a.scavMaybe[ch/64] |= 1 << (ch % 64)
		a.scavHint = max(a.scavHint, ch+1)
	}
	a.hint = min(a.hint, p+uint(bits.TrailingZeros64(c.FreeBits)))
	*c = Cache{}
	return nil
}
