package pages

import "math/bits"

// A bitmap word is a uint64 of wordBits bits (pages, or chunks) and
// wordBytes bytes, the size of a summary too; chunkWords is the number of
// words in one chunk's bitmap.
const (
	wordBits   = 64
	wordBytes  = 8
	chunkWords = ChunkPages / wordBits
)

// pageBits is one bit per page of a chunk; bit i of word w is page 64*w+i.
type pageBits [chunkWords]uint64

// chunkBits is the per-chunk metadata: 128 bytes, two cache lines.
type chunkBits struct {
	// inUse: bit set means the page is allocated (to a span, a page Cache or
	// the scavenger). A clear bit is a free page.
	inUse pageBits
	// scav: bit set means the page is free and its memory was returned to
	// the kernel. Only free pages carry the bit: allocating clears it.
	scav pageBits
}

// wordMask has k bits set starting at bit off; 1 <= k, off+k <= 64.
func wordMask(off, k uint) uint64 {
	return (^uint64(0) >> (wordBits - k)) << off
}

// runStarts returns the bits of x at which a run of at least n set bits
// begins (n >= 1; runs do not wrap past bit 63). Each step doubles the run
// length the mask guarantees, so it costs O(log n).
func runStarts(x uint64, n uint) uint64 {
	for k := uint(1); k < n && x != 0; {
		s := min(k, n-k)
		x &= x >> s
		k += s
	}
	return x
}

// longestRun returns the length of the longest run of set bits in x.
func longestRun(x uint64) uint {
	var best uint
	for x != 0 {
		x >>= uint(bits.TrailingZeros64(x))
		n := uint(bits.TrailingZeros64(^x))
		best = max(best, n)
		if n == wordBits {
			break
		}
		x >>= n
	}
	return best
}

// setRange sets bits [i, i+n).
func (b *pageBits) setRange(i, n uint) {
	for n > 0 {
		off := i % wordBits
		k := min(wordBits-off, n)
		b[i/wordBits] |= wordMask(off, k)
		i += k
		n -= k
	}
}

// clearRange clears bits [i, i+n).
func (b *pageBits) clearRange(i, n uint) {
	for n > 0 {
		off := i % wordBits
		k := min(wordBits-off, n)
		b[i/wordBits] &^= wordMask(off, k)
		i += k
		n -= k
	}
}

// countRange counts the set bits in [i, i+n).
func (b *pageBits) countRange(i, n uint) uint {
	var c int
	for n > 0 {
		off := i % wordBits
		k := min(wordBits-off, n)
		c += bits.OnesCount64(b[i/wordBits] & wordMask(off, k))
		i += k
		n -= k
	}
	return uint(c)
}

// allSet reports whether every bit in [i, i+n) is set.
func (b *pageBits) allSet(i, n uint) bool {
	for n > 0 {
		off := i % wordBits
		k := min(wordBits-off, n)
		m := wordMask(off, k)
		if b[i/wordBits]&m != m {
			return false
		}
		i += k
		n -= k
	}
	return true
}

// allClear reports whether every bit in [i, i+n) is clear.
func (b *pageBits) allClear(i, n uint) bool {
	for n > 0 {
		off := i % wordBits
		k := min(wordBits-off, n)
		if b[i/wordBits]&wordMask(off, k) != 0 {
			return false
		}
		i += k
		n -= k
	}
	return true
}

// firstClear returns the lowest clear bit at or above from.
func (b *pageBits) firstClear(from uint) (uint, bool) {
	for w := from / wordBits; w < chunkWords; w++ {
		x := ^b[w]
		if w == from/wordBits {
			x &= ^uint64(0) << (from % wordBits)
		}
		if x != 0 {
			return w*wordBits + uint(bits.TrailingZeros64(x)), true
		}
	}
	return 0, false
}

// findClear returns the lowest i >= from such that bits [i, i+n) are all
// clear (1 <= n <= ChunkPages). A run is either inside one word or made of
// the leading clear bits of one word, whole clear words, and the trailing
// clear bits of the next; one pass over the words sees both kinds.
func (b *pageBits) findClear(n, from uint) (uint, bool) {
	if n == 1 {
		return b.firstClear(from)
	}
	var run, runStart uint // clear bits carried over from lower words
	for w := from / wordBits; w < chunkWords; w++ {
		x := b[w]
		if w == from/wordBits {
			x |= 1<<(from%wordBits) - 1 // bits below from count as set
		}
		if run == 0 {
			runStart = w * wordBits
		}
		if x == 0 {
			run += wordBits
			if run >= n {
				return runStart, true
			}
			continue
		}
		if run+uint(bits.TrailingZeros64(x)) >= n {
			return runStart, true
		}
		if n <= wordBits {
			if s := runStarts(^x, n); s != 0 {
				return w*wordBits + uint(bits.TrailingZeros64(s)), true
			}
		}
		run = uint(bits.LeadingZeros64(x))
		runStart = w*wordBits + wordBits - run
	}
	return 0, false
}

// clearBelow returns the lowest j <= i such that bits [j, i) are all clear:
// where the clear run ending at i begins.
func (b *pageBits) clearBelow(i uint) uint {
	w := i / wordBits
	if off := i % wordBits; off != 0 {
		if x := b[w] & (1<<off - 1); x != 0 {
			return w*wordBits + wordBits - uint(bits.LeadingZeros64(x))
		}
	}
	for w > 0 {
		w--
		if x := b[w]; x != 0 {
			return w*wordBits + wordBits - uint(bits.LeadingZeros64(x))
		}
	}
	return 0
}

// clearAbove returns the lowest set bit at or above i, or ChunkPages: where
// the clear run starting at i ends.
func (b *pageBits) clearAbove(i uint) uint {
	for w := i / wordBits; w < chunkWords; w++ {
		x := b[w]
		if w == i/wordBits {
			x &= ^uint64(0) << (i % wordBits)
		}
		if x != 0 {
			return w*wordBits + uint(bits.TrailingZeros64(x))
		}
	}
	return ChunkPages
}

// summarize computes the summary of a chunk whose in-use bits are b.
func (b *pageBits) summarize() summary {
	var start, best, run uint
	sawUsed := false
	for w := range chunkWords {
		x := b[w]
		if x == 0 {
			run += wordBits
			continue
		}
		run += uint(bits.TrailingZeros64(x))
		if !sawUsed {
			start = run
			sawUsed = true
		}
		best = max(best, run)
		// A longer run inside this word? Only possible if the word has
		// more free bits than the best so far.
		if free := ^x; uint(bits.OnesCount64(free)) > best {
			best = max(best, longestRun(free))
		}
		run = uint(bits.LeadingZeros64(x))
	}
	if !sawUsed {
		return packSummary(ChunkPages, ChunkPages, ChunkPages)
	}
	return packSummary(start, max(best, run), run)
}
