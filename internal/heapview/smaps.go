package heapview

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/offheap/offheap/arena"
)

const (
	// smapsPath is where the kernel lists this process's mappings with
	// their resident sizes.
	smapsPath = "/proc/self/smaps"
	// pagemapPath has one 64-bit entry per virtual page of this process;
	// bit 63 says the page is present in RAM.
	pagemapPath    = "/proc/self/pagemap"
	pagemapEntry   = 8
	pagemapPresent = 1 << 63
	// pagemapBatch is how many entries one read takes.
	pagemapBatch = 4096
)

// ResidentBytes returns the resident bytes of the given address ranges of
// this process, from /proc/self/smaps.
func ResidentBytes(ms []arena.Mapping) (uint64, error) {
	f, err := os.Open(smapsPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return residentIn(f, ms, presentBytes)
}

// residentIn sums the Rss of the smaps entries (VMAs) that fall in ms. A
// reservation shows as one VMA or, once parts of it change protection, as
// several; each is counted whole. A VMA that only overlaps a range (the
// kernel merged it with a neighbouring anonymous mapping, which happens
// where mappings cannot be named) has the pages of the overlap counted by
// exact, or, if that fails, its Rss in proportion to the overlap.
func residentIn(r io.Reader, ms []arena.Mapping, exact func(lo, hi uint64) (uint64, error)) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var total uint64
	var share float64 // of the current VMA that lies in ms; 0 if none
	var lo, hi uint64 // the current VMA
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if l, h, ok := vmaRange(f[0]); ok {
			lo, hi = l, h
			share = overlap(lo, hi, ms)
			continue
		}
		if f[0] != "Rss:" || share == 0 {
			continue
		}
		if len(f) != 3 || f[2] != "kB" {
			return 0, fmt.Errorf("smaps: odd Rss line %q", line)
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("smaps: odd Rss line %q", line)
		}
		if share == 1 {
			total += kb << 10
			continue
		}
		var in uint64
		err = nil
		for _, m := range ms {
			a, b := max(lo, uint64(m.Base)), min(hi, uint64(m.Base)+uint64(m.Size))
			if b > a && err == nil {
				var n uint64
				n, err = exact(a, b)
				in += n
			}
		}
		if err != nil {
			in = uint64(float64(kb<<10)*share + 0.5)
		}
		total += in
	}
	return total, sc.Err()
}

// vmaRange parses an smaps header's first field, "lo-hi" in hex.
func vmaRange(s string) (lo, hi uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	return lo, hi, err1 == nil && err2 == nil && hi > lo
}

// overlap returns the fraction of [lo, hi) covered by ms.
func overlap(lo, hi uint64, ms []arena.Mapping) float64 {
	var in uint64
	for _, m := range ms {
		a, b := max(lo, uint64(m.Base)), min(hi, uint64(m.Base)+uint64(m.Size))
		if b > a {
			in += b - a
		}
	}
	return float64(min(in, hi-lo)) / float64(hi-lo)
}

// presentBytes counts the bytes of [lo, hi) present in RAM, from
// /proc/self/pagemap.
func presentBytes(lo, hi uint64) (uint64, error) {
	f, err := os.Open(pagemapPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ps := uint64(os.Getpagesize())
	buf := make([]byte, pagemapBatch*pagemapEntry)
	var n uint64
	for p := lo / ps; p < (hi+ps-1)/ps; {
		k := min((hi+ps-1)/ps-p, pagemapBatch)
		b := buf[:k*pagemapEntry]
		if _, err := f.ReadAt(b, int64(p*pagemapEntry)); err != nil {
			return 0, err
		}
		for i := range k {
			if binary.LittleEndian.Uint64(b[i*pagemapEntry:])&pagemapPresent != 0 {
				n += ps
			}
		}
		p += k
	}
	return n, nil
}
