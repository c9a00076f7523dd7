package pages

import "fmt"

// A summary describes the free pages of one aligned block of the heap (a
// chunk at the leaf level, a block of chunks above it) by three run lengths,
// in pages: the free run at the block's low end (start), the longest free run
// anywhere in it (max) and the free run at its high end (end). Three 21-bit
// fields fit one uint64, so a node of fanOut summaries is one cache line.
type summary uint64

const (
	// sumBits is the width of each field. 3*21 = 63 bits leaves the top bit
	// for sumFull.
	sumBits = 21
	sumMask = 1<<sumBits - 1

	// maxSumValue is the largest count a summary stores: a block of 2^21
	// pages (16 GiB), the largest block the tree summarises. The fields hold
	// up to 2^21-1, so an entirely free block of exactly 2^21 pages is
	// encoded by the sumFull bit instead.
	maxSumValue = 1 << sumBits
	sumFull     = summary(1) << 63
)

// packSummary builds a summary. start, max and end must be consistent
// (start, end <= max); a value of maxSumValue is only legal when all three
// are (a whole, free, top-sized block).
func packSummary(start, max, end uint) summary {
	if max == maxSumValue {
		if start != maxSumValue || end != maxSumValue {
			panic(fmt.Sprintf("pages: summary (%d, %d, %d) is not representable", start, max, end))
		}
		return sumFull
	}
	return summary(start) | summary(max)<<sumBits | summary(end)<<(2*sumBits)
}

func (s summary) start() uint {
	if s&sumFull != 0 {
		return maxSumValue
	}
	return uint(s) & sumMask
}

func (s summary) max() uint {
	if s&sumFull != 0 {
		return maxSumValue
	}
	return uint(s>>sumBits) & sumMask
}

func (s summary) end() uint {
	if s&sumFull != 0 {
		return maxSumValue
	}
	return uint(s>>(2*sumBits)) & sumMask
}

func (s summary) unpack() (start, max, end uint) {
	if s&sumFull != 0 {
		return maxSumValue, maxSumValue, maxSumValue
	}
	return uint(s) & sumMask, uint(s>>sumBits) & sumMask, uint(s>>(2*sumBits)) & sumMask
}

func (s summary) String() string {
	a, b, c := s.unpack()
	return fmt.Sprintf("(%d,%d,%d)", a, b, c)
}

// mergeSummaries summarises consecutive blocks of size pages each, described
// by sums, as one block. A free run may cross block borders: the end run of
// one block joins the start run of the next, and a wholly free block passes
// the run through.
func mergeSummaries(sums []summary, size uint) summary {
	var start, max, end uint
	allFree := true // every block so far is wholly free
	for _, s := range sums {
		s0, m, e := s.unpack()
		if allFree {
			start += s0
		}
		if end+s0 > max {
			max = end + s0
		}
		if m > max {
			max = m
		}
		if s0 == size {
			end += size
		} else {
			end = e
			allFree = false
		}
	}
	return packSummary(start, max, end)
}
