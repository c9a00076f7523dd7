package pages

import (
	"fmt"
	"math/bits"
	"testing"
)

// testBase is a chunk-aligned fake address for reservations in tests: the
// allocator never touches the heap memory it manages, so no real mapping
// is needed behind it.
const testBase = uintptr(1) << 40

// newTest makes an allocator over nchunks chunks at testBase.
func newTest(t testing.TB, nchunks uint) *Allocator {
	t.Helper()
	return newTestCap(t, nchunks, maxLevels)
}

func newTestCap(t testing.TB, nchunks uint, levelCap int) *Allocator {
	t.Helper()
	a, err := newAllocator(testBase, uintptr(nchunks)*ChunkBytes, levelCap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func pg(p uint) uintptr { return testBase + uintptr(p)*PageSize }

// checkInvariants recomputes every derived structure from the bitmaps and
// compares: leaf and inner summaries, live bits, counts, the hint and the
// scavenge index.
func checkInvariants(a *Allocator) error {
	var grown, free, scav uint
	for c := range a.nchunks {
		if !a.isGrown(c) {
			if a.summaryReadable(0, c) && a.levels[0][c] != 0 {
				return fmt.Errorf("ungrown chunk %d has summary %v", c, a.levels[0][c])
			}
			continue
		}
		cb := &a.chunks[c]
		grown += ChunkPages
		hasFreeUnscav := false
		for w := range chunkWords {
			if cb.inUse[w]&cb.scav[w] != 0 {
				return fmt.Errorf("chunk %d word %d: scavenged bits on in-use pages: %#x", c, w, cb.inUse[w]&cb.scav[w])
			}
			free += uint(bits.OnesCount64(^cb.inUse[w]))
			scav += uint(bits.OnesCount64(cb.scav[w]))
			if ^cb.inUse[w]&^cb.scav[w] != 0 {
				hasFreeUnscav = true
			}
		}
		if s := cb.inUse.summarize(); s != a.levels[0][c] {
			return fmt.Errorf("chunk %d: summary %v, bitmap says %v", c, a.levels[0][c], s)
		}
		if hasFreeUnscav && (a.scavMaybe[c/64]&(1<<(c%64)) == 0 || c >= a.scavHint) {
			return fmt.Errorf("chunk %d has free unscavenged pages but is not indexed (hint %d)", c, a.scavHint)
		}
	}
	for lv := 1; lv <= a.layout.top; lv++ {
		size := uint(1) << levelShift(lv-1)
		for j := range a.layout.levelLen[lv] {
			if !a.summaryReadable(lv-1, j*fanOut) {
				if (lv == a.layout.top || a.summaryReadable(lv, j)) && a.levels[lv][j] != 0 {
					return fmt.Errorf("level %d entry %d: summary %v over ungrown chunks", lv, j, a.levels[lv][j])
				}
				continue
			}
			want := mergeSummaries(a.levels[lv-1][j*fanOut:j*fanOut+fanOut], size)
			if a.levels[lv][j] != want {
				return fmt.Errorf("level %d entry %d: summary %v, children say %v", lv, j, a.levels[lv][j], want)
			}
		}
	}
	top := a.levels[a.layout.top]
	for j := range a.layout.levelLen[a.layout.top] {
		if (top[j] != 0) != (a.live[j/64]&(1<<(j%64)) != 0) {
			return fmt.Errorf("top entry %d: summary %v, live bit wrong", j, top[j])
		}
	}
	if grown != a.grownPages || free != a.freePages || scav != a.scavPages {
		return fmt.Errorf("counts grown/free/scav %d/%d/%d, bitmaps say %d/%d/%d", a.grownPages, a.freePages, a.scavPages, grown, free, scav)
	}
	for c := uint(0); c*ChunkPages < min(a.hint, a.npages); c++ {
		if !a.isGrown(c) {
			continue
		}
		if n := min(a.hint-c*ChunkPages, ChunkPages); !a.chunks[c].inUse.allSet(0, n) {
			return fmt.Errorf("chunk %d has free pages below the hint %d", c, a.hint)
		}
	}
	return nil
}

func mustInvariants(t testing.TB, a *Allocator) {
	t.Helper()
	if err := checkInvariants(a); err != nil {
		t.Fatal(err)
	}
}

// model is the plain reference: one State per page.
type model struct {
	pages     []State
	cacheFree []bool // page is a free page of some Cache
}

func newModel(npages uint) *model {
	return &model{pages: make([]State, npages), cacheFree: make([]bool, npages)}
}

func isFree(s State) bool { return s == Free || s == FreeScavenged }

func (m *model) stats() Stats {
	var s Stats
	var run uintptr
	for _, st := range m.pages {
		if st != NotGrown {
			s.Grown++
		}
		if isFree(st) {
			s.Free++
			run++
			s.LongestFree = max(s.LongestFree, run)
		} else {
			run = 0
		}
		if st == FreeScavenged {
			s.Scavenged++
		}
	}
	return s
}

func (m *model) grow(p, n uint) error {
	if n == 0 || p+n > uint(len(m.pages)) || p%ChunkPages != 0 || n%ChunkPages != 0 {
		return errInvalidRange
	}
	for i := p; i < p+n; i++ {
		if m.pages[i] != NotGrown {
			return errAlreadyGrown
		}
	}
	for i := p; i < p+n; i++ {
		m.pages[i] = FreeScavenged
	}
	return nil
}

func (m *model) all(p, n uint, ok func(State) bool) bool {
	for i := p; i < p+n; i++ {
		if !ok(m.pages[i]) {
			return false
		}
	}
	return true
}

func (m *model) take(p, n uint) (scav uint) {
	for i := p; i < p+n; i++ {
		if m.pages[i] == FreeScavenged {
			scav++
		}
		m.pages[i] = InUse
	}
	return scav
}

func (m *model) alloc(n uint) (p, scav uint, err error) {
	if n == 0 || n > uint(len(m.pages)) {
		return 0, 0, errInvalidRange
	}
	run := uint(0)
	for i, st := range m.pages {
		if !isFree(st) {
			run = 0
			continue
		}
		run++
		if run == n {
			p := uint(i) + 1 - n
			return p, m.take(p, n), nil
		}
	}
	return 0, 0, ErrNoSpace
}

func (m *model) inRange(p, n uint) bool {
	return n > 0 && p < uint(len(m.pages)) && n <= uint(len(m.pages))-p
}

func (m *model) allocRange(p, n uint) (uint, error) {
	if !m.inRange(p, n) {
		return 0, errInvalidRange
	}
	if !m.all(p, n, isFree) {
		return 0, errAlreadyInUse
	}
	return m.take(p, n), nil
}

func (m *model) free(p, n uint, scav bool) error {
	if !m.inRange(p, n) {
		return errInvalidRange
	}
	if !m.all(p, n, func(s State) bool { return s == InUse }) {
		return errNotAllocated
	}
	for i := p; i < p+n; i++ {
		m.pages[i] = Free
		if scav {
			m.pages[i] = FreeScavenged
		}
	}
	return nil
}

func (m *model) scavengeCandidate(maxPages, align uint) (p, n uint, ok bool) {
	if align == 0 || align&(align-1) != 0 || align > ChunkPages || maxPages < align {
		return 0, 0, false
	}
	limit := maxPages / align * align
	isFU := func(s State) bool { return s == Free }
	for b := uint(len(m.pages))/align - 1; b+1 > 0; b-- {
		if !m.all(b*align, align, isFU) {
			continue
		}
		p, n = b*align, align
		for n+align <= limit && p%ChunkPages != 0 && m.all(p-align, align, isFU) {
			p -= align
			n += align
		}
		m.take(p, n)
		return p, n, true
	}
	return 0, 0, false
}

// modelCache mirrors a Cache: page indices of its block and bits.
type modelCache struct {
	base       uint
	free, scav uint64
}

func (m *model) allocCache(c *modelCache) error {
	if c.free != 0 {
		return errInvalidRange
	}
	for i, st := range m.pages {
		if !isFree(st) {
			continue
		}
		block := uint(i) &^ (CachePages - 1)
		*c = modelCache{base: block}
		for j := uint(0); j < CachePages; j++ {
			switch m.pages[block+j] {
			case FreeScavenged:
				c.scav |= 1 << j
				fallthrough
			case Free:
				c.free |= 1 << j
				m.pages[block+j] = InUse
				m.cacheFree[block+j] = true
			}
		}
		return nil
	}
	return ErrNoSpace
}

func (m *model) cacheAlloc(c *modelCache, n uint) (p, scav uint, ok bool) {
	if n == 0 || n >= CacheMaxRun {
		return 0, 0, false
	}
	for i := uint(0); i+n <= CachePages; i++ {
		fits := true
		for j := i; j < i+n; j++ {
			if c.free&(1<<j) == 0 {
				fits = false
				break
			}
		}
		if !fits {
			continue
		}
		for j := i; j < i+n; j++ {
			if c.scav&(1<<j) != 0 {
				scav++
			}
			c.free &^= 1 << j
			c.scav &^= 1 << j
			m.cacheFree[c.base+j] = false
		}
		return c.base + i, scav, true
	}
	return 0, 0, false
}

func (m *model) flushCache(c *modelCache) {
	for j := uint(0); j < CachePages; j++ {
		if c.free&(1<<j) == 0 {
			continue
		}
		m.pages[c.base+j] = Free
		if c.scav&(1<<j) != 0 {
			m.pages[c.base+j] = FreeScavenged
		}
		m.cacheFree[c.base+j] = false
	}
	*c = modelCache{}
}

// states reads every page's state from the allocator.
func states(a *Allocator) []State {
	s := make([]State, a.npages)
	for c := range a.nchunks {
		if !a.isGrown(c) {
			continue // NotGrown is the zero State
		}
		cb := &a.chunks[c]
		for i := range uint(ChunkPages) {
			st := Free
			if cb.inUse[i/64]&(1<<(i%64)) != 0 {
				st = InUse
			} else if cb.scav[i/64]&(1<<(i%64)) != 0 {
				st = FreeScavenged
			}
			s[c*ChunkPages+i] = st
		}
	}
	return s
}

// TestStatesMatchesState: the fast page-state dump used by the fuzzer
// agrees with State.
func TestStatesMatchesState(t *testing.T) {
	a := newTest(t, 3)
	mustGrow(t, a, 1, 2)
	mustAlloc(t, a, 700)
	if err := a.Free(pg(ChunkPages+3), 5); err != nil {
		t.Fatal(err)
	}
	got := states(a)
	for p := range a.npages {
		if st := a.State(pg(p)); st != got[p] {
			t.Fatalf("page %d: State %v, states() %v", p, st, got[p])
		}
	}
}
