package arena

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

// These tests change the process's Go memory limit: none runs in
// parallel, and each puts the limit back as it found it.

// keepGoLimit restores the Go memory limit in force when the test started.
func keepGoLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
}

// newTestBudget returns a Budget closed when the test ends.
func newTestBudget(t *testing.T, bytes int64, opts BudgetOptions) *Budget {
	t.Helper()
	b, err := NewBudget(bytes, opts)
	if err != nil {
		t.Fatalf("NewBudget(%d): %v", bytes, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Budget.Close: %v", err)
		}
	})
	return b
}

// goMemoryNow reads the Go runtime's memory as the Budget counts it.
func goMemoryNow() int64 {
	s := []metrics.Sample{{Name: metricGoTotal}, {Name: metricGoReleased}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// gcCycles is the number of finished GC cycles.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// statmRSS is residentBytes for a goroutine that is not the test's.
func statmRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, errors.New("short statm")
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	return n * uint64(os.Getpagesize()), err
}

// touchPages writes one byte in every 4 KiB of [p, p+n), making it resident.
func touchPages(p unsafe.Pointer, n int) {
	for off := 0; off < n; off += 4096 {
		*(*byte)(unsafe.Add(p, off)) = 1
	}
}

// checkBudgetAccounting fails the test unless every heap's share of the
// Budget is its Stats.Committed and the Budget's sum is theirs.
func checkBudgetAccounting(t *testing.T, b *Budget, hs ...*Heap) {
	t.Helper()
	var sum uint64
	for i, h := range hs {
		st := h.Stats()
		if got := uint64(h.budget.committed.Load()); got != st.Committed {
			t.Errorf("heap %d: budget share %d, Stats.Committed %d", i, got, st.Committed)
		}
		sum += st.Committed
	}
	if got := b.Stats().Committed; got != sum {
		t.Errorf("Budget committed %d, heaps' sum %d", got, sum)
	}
}

func TestBudgetInvalid(t *testing.T) {
	keepGoLimit(t)
	before := debug.SetMemoryLimit(-1)
	for _, n := range []int64{0, -1, -1 << 40, MinBudget - 1} {
		b, err := NewBudget(n, BudgetOptions{})
		if !errors.Is(err, ErrInvalidBudget) || b != nil {
			t.Errorf("NewBudget(%d) = %v, %v; want ErrInvalidBudget", n, b, err)
		}
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("a refused budget moved the Go limit from %d to %d", before, got)
	}
	b, err := NewBudget(MinBudget, BudgetOptions{})
	if err != nil {
		t.Fatalf("NewBudget(MinBudget): %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if h, err := NewHeap(Config{Budget: b}); !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrClosed) {
		if h != nil {
			h.Close()
		}
		t.Errorf("NewHeap with a closed Budget = %v, want ErrInvalidConfig and ErrClosed", err)
	}
}

// TestBudgetRestoreOnClose: a Budget takes over a limit set beforehand (as
// GOMEMLIMIT would) and puts it back on Close, unless someone else has
// set the limit since, in which case their setting stays.
func TestBudgetRestoreOnClose(t *testing.T) {
	keepGoLimit(t)
	const user = 3 << 30
	debug.SetMemoryLimit(user)

	b, err := NewBudget(1<<30, BudgetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(1<<30) - b.step
	if got := debug.SetMemoryLimit(-1); got != want {
		t.Errorf("Go limit under the budget = %d, want budget - step = %d", got, want)
	}
	if st := b.Stats(); st.PrevLimit != user || st.GoLimit != uint64(want) || st.Budget != 1<<30 || st.Closed {
		t.Errorf("Stats = %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != user {
		t.Errorf("after Close the Go limit is %d, want the user's %d", got, user)
	}
	if !b.Stats().Closed {
		t.Error("Stats.Closed false after Close")
	}

	// Someone sets the limit while the Budget is open: Close leaves it.
	b, err = NewBudget(1<<30, BudgetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const other = 2 << 30
	debug.SetMemoryLimit(other)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != other {
		t.Errorf("Close replaced a limit set by someone else: %d, want %d", got, other)
	}

	// KeepGoLimit never touches it.
	debug.SetMemoryLimit(user)
	b, err = NewBudget(1<<30, BudgetOptions{KeepGoLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != user {
		t.Errorf("KeepGoLimit budget set the Go limit to %d", got)
	}
	if st := b.Stats(); st.GoLimit != 0 || st.GoLimitSets != 0 {
		t.Errorf("KeepGoLimit Stats = %+v", st)
	}
	b.Close()
	if got := debug.SetMemoryLimit(-1); got != user {
		t.Errorf("KeepGoLimit budget's Close set the Go limit to %d", got)
	}
}

// TestBudgetHysteresis: the Go limit follows committed memory within one
// step, is set again only when committed memory moved by more than a
// step, and goes back up when the heap returns memory or closes.
func TestBudgetHysteresis(t *testing.T) {
	keepGoLimit(t)
	b := newTestBudget(t, 512<<20, BudgetOptions{})
	h := newTestHeap(t, quiet(Config{Budget: b, Reserve: 256 << 20}))
	step := b.step
	if step != goLimitMinStep {
		t.Fatalf("step %d, want %d for a 512 MiB budget", step, goLimitMinStep)
	}
	const obj = 1 << 20
	var ptrs []unsafe.Pointer
	sets0 := b.Stats().GoLimitSets
	last, setAt := debug.SetMemoryLimit(-1), int64(0)
	changes := 0
	check := func(what string) {
		t.Helper()
		c := int64(h.Stats().Committed)
		lim := debug.SetMemoryLimit(-1)
		if lim != last {
			// Moved: to budget - committed - step, for a committed figure
			// more than a step from the last setting's (an operation that
			// releases in batches, Scavenge, may set it midway).
			now := b.bytes - step - lim
			if d := now - setAt; d <= step && d >= -step {
				t.Fatalf("%s: limit moved for committed %d, only %d from the last setting", what, now, d)
			}
			last, setAt = lim, now
			changes++
		}
		if d := c - setAt; d > step || d < -step {
			t.Fatalf("%s: committed %d moved %d since the limit was set, past the %d step", what, c, d, step)
		}
		if int64(b.Stats().GoLimit) != lim {
			t.Fatalf("%s: Stats.GoLimit %d, Go limit %d", what, b.Stats().GoLimit, lim)
		}
	}
	for i := range 64 {
		p, err := h.Alloc(obj)
		if err != nil {
			t.Fatalf("Alloc %d: %v", i, err)
		}
		ptrs = append(ptrs, p)
		check("growing")
	}
	// 64 MiB in 1 MiB steps against a 4 MiB step: set about every fifth
	// object, not on each.
	if changes < 64/5-1 || changes > 64/4 {
		t.Errorf("%d limit changes for 64 MiB in 1 MiB objects with a 4 MiB step", changes)
	}
	if got := b.Stats().GoLimitSets - sets0; got != uint64(changes) {
		t.Errorf("GoLimitSets counted %d, limit changed %d times", got, changes)
	}
	// Small objects within a step: their spans commit well under 4 MiB.
	before := changes
	for range 100 {
		p, err := h.Alloc(256)
		if err != nil {
			t.Fatal(err)
		}
		ptrs = append(ptrs, p)
		check("small")
	}
	if changes > before+1 {
		t.Errorf("100 small objects moved the limit %d times", changes-before)
	}
	checkBudgetAccounting(t, b, h)
	for _, p := range ptrs {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	// Free pages stay committed, so the limit stays; returning them
	// raises it.
	check("freed")
	h.Scavenge()
	check("scavenged")
	checkBudgetAccounting(t, b, h)
	if c := int64(h.Stats().Committed); c > step {
		t.Fatalf("committed %d after Scavenge of an empty heap", c)
	}
	if got := debug.SetMemoryLimit(-1); got < b.bytes-2*step {
		t.Errorf("Go limit %d after the heap gave its memory back, want about %d", got, b.bytes-step)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Heaps != 0 || st.Committed != 0 {
		t.Errorf("after the heap's Close: %+v", st)
	}
}

// TestBudgetSharedHeaps: two heaps share one budget; the bound is on
// their sum plus the Go runtime's memory; a refused allocation first takes
// free memory back from the other heap; closing a heap gives its share to
// the rest.
func TestBudgetSharedHeaps(t *testing.T) {
	keepGoLimit(t)
	runtime.GC()
	debug.FreeOSMemory()
	const room = 48 << 20 // what the heaps may commit together
	bytes := max(goMemoryNow()+room, MinBudget)
	b := newTestBudget(t, bytes, BudgetOptions{})
	ha := newTestHeap(t, quiet(Config{Budget: b, Reserve: 128 << 20}))
	hb := newTestHeap(t, quiet(Config{Budget: b, Reserve: 128 << 20}))
	const obj = 1 << 20

	var pa, pb []unsafe.Pointer
	for range 24 {
		p, err := ha.Alloc(obj)
		if err != nil {
			t.Fatalf("heap A, within the budget: %v", err)
		}
		pa = append(pa, p)
	}
	var err error
	for len(pb) < 64 {
		var p unsafe.Pointer
		if p, err = hb.Alloc(obj); err != nil {
			break
		}
		pb = append(pb, p)
	}
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("heap B took %d MiB past a budget with %d MiB of room, err %v", len(pb), room>>20, err)
	}
	st := b.Stats()
	t.Logf("budget %d MiB, Go %d MiB: A 24 MiB, B %d MiB before %v", bytes>>20, st.GoMemory>>20, len(pb), err)
	// The Go runtime moves by a few MiB while the test runs, and keeps a
	// step of headroom.
	if len(pb) < 24-12 {
		t.Errorf("heap B got only %d MiB of about %d", len(pb), room>>20-24)
	}
	if int64(st.Committed)+obj+int64(st.GoMemory)+b.step <= bytes {
		t.Errorf("refused with committed %d + %d + Go %d + headroom %d within the budget %d", st.Committed, obj, st.GoMemory, b.step, bytes)
	}
	if st.Refusals == 0 || st.Heaps != 2 {
		t.Errorf("Stats %+v", st)
	}
	checkBudgetAccounting(t, b, ha, hb)

	// A frees everything: its pages stay committed, but B's refused
	// allocations make A return them, and succeed.
	for _, p := range pa {
		if err := ha.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	rel0 := ha.Stats().HeapReleased
	for range 16 {
		p, err := hb.Alloc(obj)
		if err != nil {
			t.Fatalf("heap B after A freed 24 MiB: %v (A released %d)", err, ha.Stats().HeapReleased-rel0)
		}
		pb = append(pb, p)
	}
	if rel := ha.Stats().HeapReleased - rel0; rel < 8<<20 {
		t.Errorf("heap A released %d bytes for B, want most of what B needed", rel)
	}
	checkBudgetAccounting(t, b, ha, hb)

	// Closing A takes its share out of the Budget.
	if err := ha.Close(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Heaps != 1 || st.Committed != hb.Stats().Committed {
		t.Errorf("after A's Close: %+v, B committed %d", st, hb.Stats().Committed)
	}
	for _, p := range pb {
		if err := hb.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	// After the Budget's Close the heap is bounded by nothing but itself.
	b.Close()
	hb.Scavenge()
	for range 64 {
		p, err := hb.Alloc(obj)
		if err != nil {
			t.Fatalf("after Budget.Close: %v", err)
		}
		defer hb.Free(p)
	}
}

// TestBudgetAccountingDebug: the budget's share follows every path that
// commits or releases pages, quarantine and guard pages included.
func TestBudgetAccountingDebug(t *testing.T) {
	keepGoLimit(t)
	b := newTestBudget(t, 1<<30, BudgetOptions{})
	for _, cfg := range []Config{
		{Debug: true},
		{GuardSampleRate: 1},
		{Decommit: DecommitStrict},
		{MemoryLimit: 16 << 20},
	} {
		cfg.Budget, cfg.Reserve = b, 64<<20
		h := newTestHeap(t, quiet(cfg))
		var ptrs []unsafe.Pointer
		for i := range 3000 {
			n := 16 << (i % 12) // 16 B to 32 KiB
			if i%100 == 0 {
				n = 300 << 10
			}
			p, err := h.Alloc(n)
			if errors.Is(err, ErrOutOfMemory) && cfg.MemoryLimit != 0 {
				break
			}
			if err != nil {
				t.Fatalf("%+v: Alloc(%d): %v", cfg, n, err)
			}
			ptrs = append(ptrs, p)
			if i%3 == 0 {
				if err := h.Free(ptrs[0]); err != nil {
					t.Fatal(err)
				}
				ptrs = ptrs[1:]
			}
		}
		checkBudgetAccounting(t, b, h)
		for _, p := range ptrs {
			if err := h.Free(p); err != nil {
				t.Fatal(err)
			}
		}
		h.Scavenge()
		checkBudgetAccounting(t, b, h)
		verifyOK(t, h)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if c := b.Stats().Committed; c != 0 {
			t.Fatalf("%+v: Budget still counts %d after the heap closed", cfg, c)
		}
	}
}

// TestBudgetGoAndOffheapMix: the Go heap and an off-heap heap under one
// 512 MiB budget (128 MiB under -race), wanting together more than it:
// Go live data of 200 MiB, then offheap asks for 400 MiB. Offheap is
// refused before the sum passes the budget; the Go limit reads back as
// the Budget set it, and the GC runs far more often for the same garbage
// once offheap holds its share. Process RSS, sampled every millisecond
// throughout, stays within the budget plus 5 % plus the RSS the process
// had before the test (the test binary's code and data and the runtime's
// own baseline, which neither the Go limit nor offheap counts).
func TestBudgetGoAndOffheapMix(t *testing.T) {
	keepGoLimit(t)
	const (
		mib     = 1 << 20
		chunk   = 1 * mib // Go objects and offheap objects alike
		budget  = 512 * mib / budgetMixScale
		goLive  = 200 * mib / budgetMixScale
		offWant = 400 * mib / budgetMixScale
		garbage = 256 * mib / budgetMixScale // churned before and after offheap grows
	)
	runtime.GC()
	debug.FreeOSMemory()
	baseRSS, err := statmRSS()
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	goBase := goMemoryNow()

	// RSS sampler: every millisecond until the test ends.
	var peak atomic.Uint64
	var peakGo atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if r, err := statmRSS(); err == nil && r > peak.Load() {
				peak.Store(r)
				peakGo.Store(goMemoryNow())
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	sample := func() {
		if r, err := statmRSS(); err == nil && r > peak.Load() {
			peak.Store(r)
		}
	}

	b := newTestBudget(t, budget, BudgetOptions{})
	h := newTestHeap(t, quiet(Config{Budget: b, Reserve: 1 << 30}))

	// The Go heap's live data.
	live := make([][]byte, 0, goLive/chunk)
	for range goLive / chunk {
		s := make([]byte, chunk)
		for i := 0; i < len(s); i += 4096 {
			s[i] = 1
		}
		live = append(live, s)
		sample()
	}
	var sink []byte
	churn := func() uint64 {
		c0 := gcCycles()
		for range garbage / chunk {
			sink = make([]byte, chunk)
			for i := 0; i < len(sink); i += 4096 {
				sink[i] = 1
			}
			sample()
		}
		return gcCycles() - c0
	}
	cyclesBefore := churn()
	t.Logf("Go phase: RSS peak %d MiB, Go memory %d MiB", peak.Load()/mib, goMemoryNow()/mib)
	// Idle Go heap memory goes back to the kernel, as the Go scavenger
	// would in time, so offheap has room to grow into.
	runtime.GC()
	debug.FreeOSMemory()
	goBefore := goMemoryNow()

	// Offheap grows until refused.
	var ptrs []unsafe.Pointer
	for len(ptrs) < offWant/chunk {
		p, err := h.Alloc(chunk)
		if err != nil {
			if !errors.Is(err, ErrOutOfMemory) {
				t.Fatalf("Alloc: %v, want ErrOutOfMemory", err)
			}
			t.Logf("offheap refused after %d MiB: %v", len(ptrs)*chunk/mib, err)
			break
		}
		touchPages(p, chunk)
		ptrs = append(ptrs, p)
		sample()
	}
	off := len(ptrs) * chunk
	t.Logf("offheap phase: RSS peak %d MiB, offheap metadata %d KiB (in RSS, not in the budget)", peak.Load()/mib, h.Stats().Metadata>>10)
	if off >= offWant {
		t.Fatalf("offheap got all %d MiB with %d MiB of Go live data under a %d MiB budget",
			off/mib, goLive/mib, budget/mib)
	}
	bs := b.Stats()
	st := h.Stats()
	if bs.Refusals == 0 || st.Budget != budget || st.BudgetCommitted != st.Committed || st.BudgetGoMemory != bs.GoMemory {
		t.Errorf("Budget %+v, heap stats Budget %d GoLimit %d GoMemory %d Committed %d/%d",
			bs, st.Budget, st.BudgetGoLimit, st.BudgetGoMemory, st.BudgetCommitted, st.Committed)
	}
	// Refused only when the next object would not fit beside the Go
	// runtime's memory and its headroom (the Go figure was read again
	// before the refusal).
	headroom := max(b.step, int64(bs.GoMemory)/goHeadroomDiv)
	if int64(bs.Committed)+chunk+int64(bs.GoMemory)+headroom <= budget {
		t.Errorf("refused with committed %d + %d + Go %d + headroom %d within %d", bs.Committed, chunk, bs.GoMemory, headroom, budget)
	}
	// It got what the Go runtime did not hold, less its headroom and a
	// few MiB the Go runtime moves by.
	if want := budget - goBefore - max(b.step, goBefore/goHeadroomDiv) - 16*mib/budgetMixScale; int64(off) < want {
		t.Errorf("offheap got %d MiB, want at least %d (Go held %d MiB)", off/mib, want/mib, goBefore/mib)
	}
	// The Go limit is the one the Budget set: budget - committed - step,
	// committed within a step of now.
	lim := debug.SetMemoryLimit(-1)
	if lim != int64(bs.GoLimit) {
		t.Errorf("Go limit %d, Budget says it set %d", lim, bs.GoLimit)
	}
	if c := int64(bs.Committed); lim > budget-c || lim < budget-c-2*b.step {
		t.Errorf("Go limit %d, want within [%d, %d] for %d committed", lim, budget-c-2*b.step, budget-c, c)
	}
	// The same garbage again, now with offheap holding its share: the GC
	// runs far more often to keep the Go heap under its lower limit.
	cyclesAfter := churn()
	if cyclesAfter <= cyclesBefore {
		t.Errorf("GC cycles for %d MiB of garbage: %d before offheap grew, %d after; want more after",
			garbage/mib, cyclesBefore, cyclesAfter)
	}
	goAfter := goMemoryNow()

	close(stop)
	wg.Wait()
	runtime.KeepAlive(live)
	runtime.KeepAlive(sink)
	allow := uint64(budget)*105/100 + baseRSS
	t.Logf("budget %d MiB: Go base %d MiB, Go live %d MiB (Go memory %d MiB before offheap, %d after the churn), offheap %d MiB, Go limit %d MiB",
		budget/mib, goBase/mib, goLive/mib, goBefore/mib, goAfter/mib, off/mib, lim/mib)
	t.Logf("GC cycles per %d MiB of garbage: %d before, %d after; RSS baseline %d MiB, peak %d MiB (bound %d MiB)",
		garbage/mib, cyclesBefore, cyclesAfter, baseRSS/mib, peak.Load()/mib, allow/mib)
	t.Logf("Go memory at the RSS peak: %d MiB (the Go limit is soft)", peakGo.Load()/mib)
	if budgetRSSChecked && peak.Load() > allow {
		t.Errorf("peak RSS %d MiB past budget + 5 %% + baseline = %d MiB", peak.Load()/mib, allow/mib)
	}

	for _, p := range ptrs {
		if err := h.Free(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// The heap gone, the Go limit is the whole budget less a step again.
	if got := debug.SetMemoryLimit(-1); got != budget-b.step {
		t.Errorf("Go limit %d after the heap closed, want %d", got, budget-b.step)
	}
}

// TestBudgetAccountingFaults: a failed re-commit (the span's pages go
// back as released) and a failed release (they stay committed) leave the
// Budget's share equal to the heap's committed memory.
func TestBudgetAccountingFaults(t *testing.T) {
	keepGoLimit(t)
	b := newTestBudget(t, 1<<30, BudgetOptions{})
	fi := mmap.NewFaultInjector(mmap.Real())
	h := newTestHeap(t, quiet(Config{Budget: b, Reserve: 64 << 20, Decommit: DecommitStrict, Kernel: fi}))
	p, err := h.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	h.Free(p)
	h.Scavenge()
	checkBudgetAccounting(t, b, h)
	fi.FailNth(mmap.OpCommit, 1)
	if _, err := h.Alloc(4 << 20); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Alloc with a failing re-commit: %v", err)
	}
	checkBudgetAccounting(t, b, h)
	p, err = h.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	checkBudgetAccounting(t, b, h)
	h.Free(p)
	fi.FailNth(mmap.OpDecommit, 1)
	h.Scavenge() // the first release fails, the rest go through
	checkBudgetAccounting(t, b, h)
	if fi.Calls(mmap.OpDecommit) < 2 {
		t.Fatalf("Scavenge made %d release calls", fi.Calls(mmap.OpDecommit))
	}
}

// TestBudgetConcurrent: goroutines allocate and free in two heaps sharing
// a Budget, while the scavenger releases; the Budget's figures add up
// afterwards and the Go limit is the one it set for them.
func TestBudgetConcurrent(t *testing.T) {
	keepGoLimit(t)
	b := newTestBudget(t, 1<<30, BudgetOptions{})
	cfg := Config{Budget: b, Reserve: 128 << 20, RetainBytes: -1, RetainFraction: -1, ScavengeDelay: time.Millisecond}
	hs := []*Heap{newTestHeap(t, cfg), newTestHeap(t, cfg)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func(h *Heap, seed int) {
			defer wg.Done()
			var ptrs []unsafe.Pointer
			for i := range 2000 {
				n := 64 << ((i + seed) % 12) // 64 B to 128 KiB
				p, err := h.Alloc(n)
				if err != nil {
					t.Errorf("Alloc(%d): %v", n, err)
					return
				}
				ptrs = append(ptrs, p)
				if len(ptrs) > 50 {
					for _, q := range ptrs[:25] {
						if err := h.Free(q); err != nil {
							t.Errorf("Free: %v", err)
							return
						}
					}
					ptrs = ptrs[25:]
				}
			}
			for _, q := range ptrs {
				h.Free(q)
			}
		}(hs[g%2], g)
	}
	wg.Wait()
	for _, h := range hs {
		h.Scavenge()
	}
	checkBudgetAccounting(t, b, hs...)
	// Every change was followed by a settle: the limit is within a step.
	st := b.Stats()
	setAt := b.bytes - b.step - int64(st.GoLimit)
	if d := int64(st.Committed) - setAt; d > b.step || d < -b.step {
		t.Errorf("Go limit %d set for committed %d, now %d: more than a step apart", st.GoLimit, setAt, st.Committed)
	}
	if got := debug.SetMemoryLimit(-1); got != int64(st.GoLimit) {
		t.Errorf("Go limit %d, Budget says %d", got, st.GoLimit)
	}
}

// BenchmarkBudgetSpanAlloc: what a Budget adds to the span allocation
// path (a 64 KiB object takes and returns a span each time), against no
// limit and against MemoryLimit, which also skips the page caches. The
// heap is warm: its pages stay committed, so the Go limit never moves.
func BenchmarkBudgetSpanAlloc(b *testing.B) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	bud, err := NewBudget(4<<30, BudgetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer bud.Close()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"none", Config{}},
		{"MemoryLimit", Config{MemoryLimit: 1 << 30}},
		{"Budget", Config{Budget: bud}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.cfg.Reserve = 256 << 20
			h := newTestHeap(b, quiet(c.cfg))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := h.Alloc(64 << 10)
					if err != nil {
						b.Error(err)
						return
					}
					h.Free(p)
				}
			})
		})
	}
}

// TestBudgetSeesGoBurst: the Go heap grows by 64 MiB just after the
// Budget read its memory (the figure is fresh by the clock but stale in
// fact). Offheap, growing next, must read it again before it nears the
// budget, not take the memory the Go heap has just taken.
func TestBudgetSeesGoBurst(t *testing.T) {
	keepGoLimit(t)
	runtime.GC()
	debug.FreeOSMemory()
	const room = 160 << 20
	bytes := goMemoryNow() + room
	b := newTestBudget(t, bytes, BudgetOptions{})
	h := newTestHeap(t, quiet(Config{Budget: b, Reserve: 256 << 20}))
	burst := make([][]byte, 64)
	for i := range burst {
		burst[i] = make([]byte, 1<<20)
		for j := 0; j < len(burst[i]); j += 4096 {
			burst[i][j] = 1
		}
	}
	b.readAt.Store(int64(time.Since(b.epoch))) // "just read": not due for 10 ms
	n := 0
	for ; n < room>>20; n++ {
		p, err := h.Alloc(1 << 20)
		if err != nil {
			t.Logf("refused: %v", err)
			break
		}
		defer h.Free(p)
	}
	st := b.Stats()
	goNow := goMemoryNow()
	t.Logf("budget %d MiB, Go %d MiB after a 64 MiB burst: offheap got %d MiB", bytes>>20, goNow>>20, n)
	if c := int64(st.Committed); c+goNow > bytes {
		t.Errorf("offheap committed %d MiB + Go %d MiB pass the %d MiB budget", c>>20, goNow>>20, bytes>>20)
	}
	runtime.KeepAlive(burst)
}
