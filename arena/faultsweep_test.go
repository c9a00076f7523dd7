package arena

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/mmap"
	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/sizeclasses"
)

// The fault sweep: every call the heap makes through the kernel seam
// (Config.Kernel: reserve, commit, decommit, release, huge page hints,
// naming) is made to fail, one at a time, in the middle of a seeded random
// workload over the whole API (Heap and Cache Alloc/Free, Cache Close,
// large objects, Regions, typed New/Free, Scavenge), in every decommit
// mode, plain, in Debug mode and with every allocation guarded. After
// every step the heap must agree with a model of the live objects, and at
// the end, with everything freed, no page may be lost. What must hold:
//
//   - an operation that fails returns a named error (for an injected
//     kernel failure, ErrOutOfMemory), and frees never fail;
//   - Stats balances: HeapSys == HeapInuse + HeapIdle, HeapReleased <=
//     HeapIdle, HeapObjects and HeapAlloc are the model's;
//   - every live object keeps its contents and can be written again, new
//     memory is zero;
//   - Verify passes;
//   - once everything is freed and scavenged nothing is in use but the
//     quarantine, and nothing free is committed outside page caches.
//
// The metadata (the span table's, and the page allocator's bitmaps and
// summaries) is mapped through Config.Kernel too, so its calls are swept
// with the rest: the counting pass sees them.

// faultOps are the operation kinds a FaultInjector sorts calls into.
var faultOps = [...]mmap.Op{mmap.OpReserve, mmap.OpCommit, mmap.OpDecommit, mmap.OpRelease, mmap.OpHugePage, mmap.OpName}

// faultQuarantine is the quarantine bound the workload runs with, so a
// few dozen frees reach eviction (restorePages) instead of 1024.
const faultQuarantine = 3

// faultSweepSteps is the workload length in the sweep: long enough to
// reach every call site (growth, re-commit after scavenging, eviction,
// cache and region teardown), short enough that the sweep, which runs
// it once per (config, op, call), takes seconds under the race detector.
const faultSweepSteps = 48

// faultMemoryLimit is the MemoryLimit of the "limit" configs: below what
// the workload would commit without one.
const faultMemoryLimit = 384 << 10

type faultConfig struct {
	name string
	cfg  Config
}

// faultConfigs: every decommit mode, each plain, in Debug mode, with
// every allocation guarded (GuardSampleRate 1) and under a MemoryLimit.
func faultConfigs() []faultConfig {
	var out []faultConfig
	for _, mode := range []mmap.DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict} {
		for _, v := range []struct {
			name         string
			debug        bool
			guard        int
			hugePageHint bool
			limit        int64
		}{
			{"plain", false, 0, true, 0},
			{"debug", true, 0, false, 0},
			{"guard", false, 1, false, 0},
			// Under a limit the workload's peak (about 512 KiB) runs into it:
			// allocations scavenge first, and skip the page caches.
			{"limit", false, 0, false, faultMemoryLimit},
		} {
			out = append(out, faultConfig{fmt.Sprintf("%v/%s", mode, v.name), Config{
				Reserve: 64 << 20, ScavengeDelay: -1, Decommit: mode, MemoryLimit: v.limit,
				Debug: v.debug, GuardSampleRate: v.guard, HugePages: v.hugePageHint,
			}})
		}
	}
	return out
}

// TestFaultSweep makes each kernel call of the workload fail in turn: a
// counting pass finds how many calls of each kind the workload makes, then
// one run per (config, kind, call index) fails exactly that call.
// GOMAXPROCS is 1 so every run takes the same per-P cache and the n-th
// call of the counting pass is the n-th call of the faulty run.
func TestFaultSweep(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const seed = 1
	total, missed := 0, 0
	for _, fc := range faultConfigs() {
		fi := mmap.NewFaultInjector(nil)
		runFaults(t, fc.name+" counting", fc.cfg, fi, seed, faultSweepSteps, 0)
		var counts [len(faultOps)]int
		for i, op := range faultOps {
			counts[i] = fi.Calls(op)
		}
		for i, op := range faultOps {
			for n := 1; n <= counts[i]; n++ {
				fi := mmap.NewFaultInjector(nil)
				fi.FailNth(op, n)
				label := fmt.Sprintf("%s %v #%d of %d", fc.name, op, n, counts[i])
				runFaults(t, label, fc.cfg, fi, seed, faultSweepSteps, 1)
				total++
				if fi.Calls(op) < n {
					// ReserveAligned unmaps one or two trimmings,
					// as the kernel's address happens to fall.
					if op != mmap.OpRelease {
						t.Logf("%s: never reached", label)
						missed++
					}
				}
			}
		}
		t.Logf("%s: calls reserve %d, commit %d, decommit %d, release %d, hugepage %d, name %d",
			fc.name, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
	}
	if missed > 0 {
		t.Errorf("%d of %d faulty runs never reached their failing call: the workload is not deterministic", missed, total)
	}
	t.Logf("%d faulty runs", total)
}

// faultObj is a live object as the model knows it.
type faultObj struct {
	p       unsafe.Pointer
	size    int
	id      uint64 // its pattern
	cache   int    // allocating cache, -1 for the Heap
	typed   bool   // allocated with New[faultT]
	guarded bool   // a guarded object (the heap says so at allocation)
}

// faultT is the type typed New/Free use.
type faultT [200]byte

// faultView is what the heap says about one object, diffed against what
// the model expects.
type faultView struct {
	Addr    uintptr // the object's first byte
	Size    int     // class size, whole pages, or the requested size if guarded
	Guarded bool
	Intact  bool // its pattern reads back
}

type faultRegion struct {
	r    *Region
	objs []*faultObj
}

// faultRun is one heap, its workload and its model.
type faultRun struct {
	t       testing.TB
	label   string
	h       *Heap
	rng     *rand.Rand
	live    []*faultObj
	caches  []*Cache // nil: closed
	regions []*faultRegion
	nextID  uint64
	oom     int // allocations that failed with ErrOutOfMemory
}

// runFaults builds a heap on fi and runs steps random operations from
// seed, checking after each; then it frees everything and checks that
// nothing was lost. pending is how many injected failures may still be
// queued when the workload ends (the final Scavenge is retried that often).
func runFaults(t testing.TB, label string, cfg Config, fi *mmap.FaultInjector, seed uint64, steps, pending int) {
	t.Helper()
	cfg.Kernel = fi
	h, err := NewHeap(cfg)
	if err != nil {
		if !errors.Is(err, ErrOutOfMemory) {
			t.Fatalf("%s: NewHeap: %v: not a named error", label, err)
		}
		return
	}
	h.guard.quarantineCap = faultQuarantine
	r := &faultRun{t: t, label: label, h: h, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	r.caches = []*Cache{h.NewCache(), h.NewCache()}
	for i := range steps {
		what := r.step()
		r.checkStats(fmt.Sprintf("step %d (%s)", i, what))
		if i%16 == 15 {
			r.verify(fmt.Sprintf("step %d (%s)", i, what))
		}
	}
	r.finish(pending)
}

func (r *faultRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s: %s", r.label, fmt.Sprintf(format, args...))
}

// step runs one random operation and says which.
func (r *faultRun) step() string {
	switch k := r.rng.IntN(100); {
	case k < 25:
		return r.alloc(-1, r.smallSize(), false)
	case k < 38:
		return r.alloc(r.rng.IntN(len(r.caches)), r.smallSize(), false)
	case k < 46:
		return r.alloc(r.rng.IntN(len(r.caches)+1)-1, sizeclasses.MaxSmallSize+1+r.rng.IntN(48<<10), false)
	case k < 51:
		return r.alloc(r.rng.IntN(len(r.caches)+1)-1, int(unsafe.Sizeof(faultT{})), true)
	case k < 75:
		return r.free()
	case k < 86:
		return r.regionStep()
	case k < 92:
		i := r.rng.IntN(len(r.caches))
		r.closeCache(i)
		r.caches[i] = r.h.NewCache()
		return fmt.Sprintf("close cache %d", i)
	default:
		r.h.Scavenge()
		return "scavenge"
	}
}

func (r *faultRun) smallSize() int {
	if r.rng.IntN(4) == 0 {
		return r.rng.IntN(sizeclasses.MaxSmallSize + 1)
	}
	return r.rng.IntN(600)
}

// alloc allocates size bytes through cache ci (-1: the Heap), typed or
// not, checks the memory is zero and writes a pattern.
func (r *faultRun) alloc(ci, size int, typed bool) string {
	what := fmt.Sprintf("alloc %d via %d", size, ci)
	var a interface {
		Allocator
		Freer
	} = r.h
	if ci >= 0 {
		a = r.caches[ci]
	}
	var p unsafe.Pointer
	var err error
	if typed {
		var tp *faultT
		tp, err = New[faultT](a)
		p = unsafe.Pointer(tp)
		what = "typed " + what
	} else {
		p, err = a.Alloc(size)
	}
	if err != nil {
		if !errors.Is(err, ErrOutOfMemory) {
			r.fatalf("%s: %v: want ErrOutOfMemory", what, err)
		}
		r.oom++
		return what + ": out of memory"
	}
	if k := firstByteNot(p, size, 0); k >= 0 {
		r.fatalf("%s: new memory at %p: byte %d is %#x, want 0", what, p, k, bytesAt(p, size)[k])
	}
	r.nextID++
	o := &faultObj{p: p, size: size, id: r.nextID, cache: ci, typed: typed}
	info, ok := r.h.Explain(uintptr(p))
	if !ok {
		r.fatalf("%s: Explain(%p) finds no span", what, p)
	}
	o.guarded = info.Guarded
	r.write(o, what)
	r.live = append(r.live, o)
	return what
}

// write writes o's pattern, turning a fault into a test failure.
func (r *faultRun) write(o *faultObj, what string) {
	if err := writeNoFault(o.p, o.size, o.id); err != nil {
		r.fatalf("%s: object %p (%d bytes): %v", what, o.p, o.size, err)
	}
}

// free frees a random live object, through its cache, another or the
// Heap, after checking its contents.
func (r *faultRun) free() string {
	if len(r.live) == 0 {
		return "free: none live"
	}
	i := r.rng.IntN(len(r.live))
	o := r.live[i]
	if k := findPatternError(o.p, o.size, o.id); k >= 0 {
		r.fatalf("object %p (%d bytes) byte %d changed before its free", o.p, o.size, k)
	}
	var f Freer = r.h
	if ci := r.rng.IntN(len(r.caches)+1) - 1; ci >= 0 {
		f = r.caches[ci]
	}
	var err error
	if o.typed {
		err = Free(f, (*faultT)(o.p))
	} else {
		err = f.Free(o.p)
	}
	if err != nil {
		r.fatalf("free %p (%d bytes): %v", o.p, o.size, err)
	}
	r.live[i] = r.live[len(r.live)-1]
	r.live = r.live[:len(r.live)-1]
	return fmt.Sprintf("free %d bytes", o.size)
}

// regionStep makes a region, allocates from one (small or a span of its
// own), or frees one.
func (r *faultRun) regionStep() string {
	switch k := r.rng.IntN(10); {
	case k < 2 || len(r.regions) == 0:
		r.regions = append(r.regions, &faultRegion{r: r.h.NewRegion()})
		return "new region"
	case k < 8:
		g := r.regions[r.rng.IntN(len(r.regions))]
		size := r.rng.IntN(2000)
		if k == 7 {
			size = regionMaxBump + 1 + r.rng.IntN(24<<10)
		}
		p, err := g.r.Alloc(size)
		if err != nil {
			if !errors.Is(err, ErrOutOfMemory) {
				r.fatalf("region alloc %d: %v: want ErrOutOfMemory", size, err)
			}
			r.oom++
			return "region alloc: out of memory"
		}
		if k := firstByteNot(p, size, 0); k >= 0 {
			r.fatalf("region alloc %d at %p: byte %d is not zero", size, p, k)
		}
		r.nextID++
		o := &faultObj{p: p, size: size, id: r.nextID, cache: -1}
		r.write(o, "region alloc")
		g.objs = append(g.objs, o)
		return fmt.Sprintf("region alloc %d", size)
	default:
		i := r.rng.IntN(len(r.regions))
		r.freeRegion(i)
		return "free region"
	}
}

func (r *faultRun) freeRegion(i int) {
	g := r.regions[i]
	for _, o := range g.objs {
		if k := findPatternError(o.p, o.size, o.id); k >= 0 {
			r.fatalf("region object %p (%d bytes) byte %d changed", o.p, o.size, k)
		}
	}
	if err := g.r.Free(); err != nil {
		r.fatalf("region Free: %v", err)
	}
	r.regions[i] = r.regions[len(r.regions)-1]
	r.regions = r.regions[:len(r.regions)-1]
}

func (r *faultRun) closeCache(i int) {
	if err := r.caches[i].Close(); err != nil {
		r.fatalf("cache %d Close: %v", i, err)
	}
	for _, o := range r.live {
		if o.cache == i {
			o.cache = -1
		}
	}
}

// faultTotals are the Stats figures the model predicts.
type faultTotals struct {
	HeapObjects, HeapAlloc, GuardedObjects, Regions uint64
}

// extent is what o adds to HeapAlloc: its class size, whole pages if
// large, or its pages and guard page if guarded.
func (o *faultObj) extent() uint64 {
	if !o.guarded {
		return objExtent(o.size)
	}
	obj := (uintptr(max(o.size, 1)) + guardAlign - 1) &^ (guardAlign - 1)
	return uint64((obj+pages.PageSize-1)/pages.PageSize+1) * pages.PageSize
}

// view is what the model expects the heap to say about o.
func (o *faultObj) view() faultView {
	v := faultView{Addr: uintptr(o.p), Size: int(objExtent(o.size)), Guarded: o.guarded, Intact: true}
	if o.guarded {
		v.Size = o.size
	}
	return v
}

// checkStats compares Stats with the model and checks its identities.
func (r *faultRun) checkStats(when string) {
	r.t.Helper()
	st := r.h.Stats()
	if err := statsIdentities(st); err != nil {
		r.fatalf("after %s: %v", when, err)
	}
	var want faultTotals
	for _, o := range r.live {
		want.HeapObjects++
		want.HeapAlloc += o.extent()
		if o.guarded {
			want.GuardedObjects++
		}
	}
	want.Regions = uint64(len(r.regions))
	got := faultTotals{st.HeapObjects, st.HeapAlloc, st.GuardedObjects, st.Regions}
	if d := quickDiff(want, got); d != "" {
		r.fatalf("after %s: Stats differ from the model (-model +Stats):\n%s", when, d)
	}
}

// verify checks every live object against the heap's own description of
// it, and Verify.
func (r *faultRun) verify(when string) {
	r.t.Helper()
	want := make(map[uintptr]faultView, len(r.live))
	got := make(map[uintptr]faultView, len(r.live))
	for _, o := range r.live {
		want[uintptr(o.p)] = o.view()
		info, ok := r.h.Explain(uintptr(o.p))
		got[uintptr(o.p)] = faultView{Addr: info.Addr, Size: info.Size, Guarded: info.Guarded && ok,
			Intact: ok && !info.Freed && findPatternError(o.p, o.size, o.id) < 0}
	}
	if d := quickDiff(want, got); d != "" {
		r.fatalf("after %s: live objects differ from the model (-model +heap):\n%s", when, d)
	}
	for _, g := range r.regions {
		for _, o := range g.objs {
			if k := findPatternError(o.p, o.size, o.id); k >= 0 {
				r.fatalf("after %s: region object %p (%d bytes) byte %d changed", when, o.p, o.size, k)
			}
		}
	}
	if err := r.h.Verify(); err != nil {
		r.fatalf("after %s: Verify: %v", when, err)
	}
}

// finish rewrites every live object, frees everything, and checks that
// the heap is back to empty: nothing in use but the quarantine and the
// per-P caches' empty spans, nothing
// free left committed (once Scavenge has run) outside the page caches.
func (r *faultRun) finish(pending int) {
	r.t.Helper()
	r.verify("the workload")
	for _, o := range r.live {
		o.id += 1 << 40
		r.write(o, "rewrite")
	}
	for len(r.live) > 0 {
		r.free()
	}
	for len(r.regions) > 0 {
		r.freeRegion(len(r.regions) - 1)
	}
	for i := range r.caches {
		r.closeCache(i)
	}
	r.checkStats("freeing everything")
	h := r.h
	// Frees through Heap.Free into spans the closed caches owned wait in
	// the per-P cache's batch (remotefree.go) until published.
	publishBatches(r.t, h)
	var st Stats
	for range pending + 1 { // a queued failure may fail one Scavenge
		h.Scavenge()
		st = h.Stats()
		if st.HeapIdle-st.HeapReleased == uint64(h.cachedPages.Load()-h.cachedScav.Load())*pages.PageSize {
			break
		}
	}
	h.guard.mu.Lock()
	var quarantined uintptr
	for _, q := range h.guard.quarantine {
		quarantined += q.npages
	}
	h.guard.mu.Unlock()
	// The per-P caches keep the spans they own, empty now; they are not
	// closed.
	held := quarantined
	for _, c := range *h.pcs.Load() {
		if c == nil {
			continue
		}
		for _, s := range c.heldSpans() {
			held += uintptr(s.NPages)
		}
	}
	type empty struct {
		HeapObjects, HeapAlloc, HeapInuse, FreeCommitted uint64
	}
	want := empty{HeapInuse: uint64(held) * pages.PageSize,
		FreeCommitted: uint64(h.cachedPages.Load()-h.cachedScav.Load()) * pages.PageSize}
	got := empty{st.HeapObjects, st.HeapAlloc, st.HeapInuse, st.HeapIdle - st.HeapReleased}
	if d := quickDiff(want, got); d != "" {
		r.fatalf("after freeing everything and scavenging (-want +got):\n%s\n%s", d, statsLine(st))
	}
	if err := h.Verify(); err != nil {
		r.fatalf("at the end: Verify: %v", err)
	}
	// Close's error is the mapping's own (an *mmap.OpError), not an arena
	// Err* value: a queued munmap failure may still be pending.
	if err := h.Close(); err != nil && (pending == 0 || !errors.Is(err, mmap.ErrInjected)) {
		r.fatalf("Close: %v", err)
	}
}

// FuzzFaults is the sweep with the fuzzer choosing: the workload's seed
// and length, the config (decommit mode × plain, Debug, guarded), which
// kind of kernel call fails, from which call on, and how many in a row.
// The checks are the sweep's.
func FuzzFaults(f *testing.F) {
	old := runtime.GOMAXPROCS(1) // deterministic per-P caches, as in the sweep
	f.Cleanup(func() { runtime.GOMAXPROCS(old) })
	configs := faultConfigs()
	f.Fuzz(func(t *testing.T, seed uint64, config, op uint8, first uint16, count, steps uint8) {
		fc := configs[int(config)%len(configs)]
		fop := faultOps[int(op)%len(faultOps)]
		n := faultFuzzMaxFailures
		if count != 0 {
			n = int(count)%faultFuzzMaxFailures + 1
		}
		fi := mmap.NewFaultInjector(nil)
		for i := range n {
			fi.FailNth(fop, int(first)%faultFuzzMaxCall+1+i)
		}
		label := fmt.Sprintf("%s seed %d, %v from #%d, %d failures", fc.name, seed, fop, int(first)%faultFuzzMaxCall+1, n)
		runFaults(t, label, fc.cfg, fi, seed, faultFuzzMinSteps+int(steps)%faultFuzzMaxSteps, n)
	})
}

const (
	// faultFuzzMaxFailures bounds consecutive failures: enough for a retry
	// to fail again (strict decommit's two calls, a re-commit after a
	// failed restore), small enough that the workload goes on.
	faultFuzzMaxFailures = 4
	// faultFuzzMaxCall: the first failing call is at most this index; the
	// longest workloads make about 250 calls of the busiest kind.
	faultFuzzMaxCall = 300
	// faultFuzzMinSteps, faultFuzzMaxSteps: workload length bounds.
	faultFuzzMinSteps = 8
	faultFuzzMaxSteps = 120
)
