package pages

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// residentBytes sums the Rss of the mappings inside [base, base+size) from
// /proc/self/smaps.
func residentBytes(t *testing.T, base, size uintptr) uintptr {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var total uintptr
	inside := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				inside = uintptr(l) >= base && uintptr(h) <= base+size
				continue
			}
		}
		if inside && fields[0] == "Rss:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += uintptr(kb) << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestMetadataResident: a 1 TiB reservation with 64 MiB grown (at both
// ends, and used) keeps its metadata under 1 MiB resident.
func TestMetadataResident(t *testing.T) {
	const nchunks = 1 << 40 / ChunkBytes
	a := newTest(t, nchunks)
	mustGrow(t, a, 0, 8)
	mustGrow(t, a, nchunks-8, 8)
	for range 500 {
		mustAlloc(t, a, 7)
	}
	mustAlloc(t, a, 8*ChunkPages) // the top range, walking the whole tree
	for range 50 {
		if _, _, ok := a.ScavengeCandidate(64, 8); !ok {
			break
		}
	}
	base, size := a.metaAddr()
	rss := residentBytes(t, base, size)
	reserved, committed := a.MetadataBytes()
	t.Logf("metadata: %d MiB reserved, %d KiB committed, %d KiB resident", reserved>>20, committed>>10, rss>>10)
	if rss == 0 {
		t.Fatal("found no resident metadata: smaps parsing failed?")
	}
	if rss >= 1<<20 || committed >= 1<<20 {
		t.Fatalf("metadata resident %d bytes, committed %d: want < 1 MiB", rss, committed)
	}
	if reserved < 32<<20 {
		t.Fatalf("metadata mapping of %d bytes is too small for 1 TiB", reserved)
	}
}

// TestMetadataLayout: the arrays of every level and the chunk bitmaps lie
// inside the mapping without overlapping.
func TestMetadataLayout(t *testing.T) {
	for _, nchunks := range []uint{1, 7, 8, 9, 65, 4096, 1 << 18, 1<<18 + 1} {
		for levelCap := 1; levelCap <= maxLevels; levelCap++ {
			l := newMetaLayout(nchunks, 4096, levelCap)
			type span struct {
				name    string
				off, sz uintptr
			}
			spans := []span{
				{"grown", l.grownOff, uintptr(bitmapWords(nchunks)) * 8},
				{"scav", l.scavOff, uintptr(bitmapWords(nchunks)) * 8},
				{"live", l.liveOff, uintptr(bitmapWords(l.levelLen[l.top])) * 8},
				{"chunks", l.chunkOff, uintptr(nchunks) * 128},
			}
			for lv := 0; lv <= l.top; lv++ {
				spans = append(spans, span{fmt.Sprint("level", lv), l.levelOff[lv], uintptr(l.levelLen[lv]) * 8})
				if lv < l.top && l.levelLen[lv] != l.levelLen[lv+1]*fanOut {
					t.Errorf("%d chunks: level %d has %d entries under %d", nchunks, lv, l.levelLen[lv], l.levelLen[lv+1])
				}
			}
			if l.levelLen[0] < nchunks {
				t.Errorf("%d chunks: only %d leaves", nchunks, l.levelLen[0])
			}
			for i, x := range spans {
				if x.off+x.sz > l.size {
					t.Errorf("%d chunks: %s ends past the mapping", nchunks, x.name)
				}
				for _, y := range spans[i+1:] {
					if x.off < y.off+y.sz && y.off < x.off+x.sz {
						t.Errorf("%d chunks: %s and %s overlap", nchunks, x.name, y.name)
					}
				}
			}
		}
	}
}
