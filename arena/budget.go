package arena

import (
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/pages"
)

// One memory budget for the process: the Go runtime's memory limit and
// offheap's committed memory held under one figure. doc.go ("One budget
// for Go and offheap") describes it for users; this file is the mechanism.

const (
	// MinBudget is the smallest budget NewBudget accepts. An idle Go
	// program already holds a few MiB (heap, stacks, runtime metadata) and
	// a heap grows in 4 MiB chunks: below 16 MiB there is no room for
	// either, only a GC that never stops.
	MinBudget = 16 << 20

	// goReadInterval is the most often the Go runtime's memory is read on
	// the allocation path, unless offheap committed a hysteresis step
	// since the last read (then it is read at once: offheap can commit
	// 100 MiB of untouched pages in a millisecond, so time alone does not
	// bound how far it outruns a stale figure). A read (runtime/metrics)
	// costs about half a microsecond on an idle runtime and more with
	// many Ps; span allocations can come every microsecond, so reading on
	// each would double their cost, while one read a millisecond, or one
	// per 4 MiB committed, is lost in the noise. The Go heap grows by a
	// few MiB at most in a millisecond. An allocation the stale figure
	// would refuse reads it again first.
	goReadInterval = time.Millisecond

	// goLimitMinStep and goLimitStepDiv set the hysteresis of the Go limit:
	// it is set again only once offheap's committed memory has moved by
	// more than max(goLimitMinStep, budget/goLimitStepDiv) since it was
	// last set. Committed memory moves a span at a time (8 KiB and up), and
	// each SetMemoryLimit takes the runtime's heap lock and recomputes the
	// GC pacer: 4 MiB (a heap chunk) keeps that to a few hundred calls a
	// second even for a heap growing at 1 GB/s. The proportional part keeps
	// large budgets from resetting the limit needlessly often, while the
	// room it costs the Go heap (the limit is set a step low, see
	// Budget.settle) stays under 1 % of the budget.
	goLimitMinStep = 4 << 20
	goLimitStepDiv = 128

	// goHeadroomDiv: offheap grows only while it leaves the Go runtime
	// max(step, 1/goHeadroomDiv of its memory) above what it uses now.
	// The Go limit is soft: squeezed to its live data, the GC runs back to
	// back, its CPU limiter lets the heap pass the limit. In the mix test
	// (200 MiB of Go live data, 512 MiB budget) a limit 4 % above the live
	// data was overshot by 10-15 % (process peak 536-550 MiB); with 1/16
	// headroom by up to 8 % (520-545 MiB); with 1/8 the Go heap stays
	// within 2 % of its limit (peak 512-523 MiB, under load too).
	goHeadroomDiv = 8
)

// The runtime/metrics figures that make up the Go runtime's memory, as
// GOMEMLIMIT counts it: everything mapped, less heap memory returned to
// the kernel.
const (
	metricGoTotal    = "/memory/classes/total:bytes"
	metricGoReleased = "/memory/classes/heap/released:bytes"
)

// ErrInvalidBudget: NewBudget was given a budget it cannot keep (below
// MinBudget).
var ErrInvalidBudget = errors.New("offheap: invalid budget")

// BudgetOptions tunes a Budget. The zero value is the usual choice.
type BudgetOptions struct {
	// KeepGoLimit leaves the Go runtime's memory limit alone: the Budget
	// then only bounds offheap, by the budget less the Go runtime's
	// memory and its headroom. Use it for a second Budget in a process whose first already
	// drives the Go limit, or when something else manages GOMEMLIMIT.
	KeepGoLimit bool
}

// Budget is one memory budget shared by the Go runtime and one or more
// Heaps (Config.Budget). While it is open it keeps the Go runtime's memory
// limit (debug.SetMemoryLimit) at the budget less the committed memory of
// its heaps, and refuses a heap allocation (ErrOutOfMemory, after the heap
// returned its free memory to the kernel) that would take the heaps'
// committed memory plus the Go runtime's memory, and some headroom for
// the Go heap, past the budget. See the package documentation, "One
// budget for Go and offheap".
//
// A Budget is safe for concurrent use. Only one Budget per process should
// drive the Go limit (the others set KeepGoLimit): two that do each set
// the limit whenever their own heaps move, so the last to set wins.
type Budget struct {
	bytes int64     // the budget; immutable
	step  int64     // hysteresis of the Go limit; immutable
	keep  bool      // BudgetOptions.KeepGoLimit; immutable
	epoch time.Time // origin of readAt; immutable
	// hmu guards heaps: the heaps attached (created and not closed), so
	// an allocation refused for the budget can have the others return
	// their free memory too. Held only to copy or update the set.
	hmu   sync.Mutex
	heaps map[*Heap]struct{}
	open  atomic.Bool  // false once Close has begun
	comm  atomic.Int64 // committed bytes of all attached heaps
	goMem atomic.Int64 // the Go runtime's memory at the last read
	// readAt is when goMem was read, in ns since epoch; reading says a
	// read is in progress, so concurrent allocations do not all read.
	readAt  atomic.Int64
	reading atomic.Bool
	readCom atomic.Int64 // comm at the last read

	// mu serialises setting the Go limit, and Close. It is held across
	// debug.SetMemoryLimit, which takes the runtime's heap lock briefly and
	// makes no system call; it is never taken under a heap lock. prev is
	// guarded by mu; goLimit and setAt are written under mu and read
	// atomically by Stats and by settle's unlocked first check.
	mu      sync.Mutex
	prev    int64        // the Go limit found by NewBudget, restored by Close
	goLimit atomic.Int64 // the Go limit this Budget set last
	setAt   atomic.Int64 // comm when goLimit was set

	sets, overrides, reads, refusals atomic.Uint64
}

// BudgetStats are a Budget's figures, in bytes unless said otherwise.
type BudgetStats struct {
	Budget    uint64 // the budget
	Committed uint64 // offheap committed memory of the attached heaps
	GoMemory  uint64 // the Go runtime's memory at the last read (total mapped less released)
	GoLimit   uint64 // the Go memory limit this Budget set last (0 with KeepGoLimit)
	PrevLimit uint64 // the Go memory limit NewBudget found, which Close restores
	Heaps     uint64 // heaps attached

	GoLimitSets      uint64 // debug.SetMemoryLimit calls made to move the limit (NewBudget's included)
	GoLimitOverrides uint64 // times the limit was found changed by someone else
	GoReads          uint64 // reads of the Go runtime's memory
	Refusals         uint64 // allocations refused because of the budget
	Closed           bool
}

// NewBudget returns an open Budget of bytes. Unless opts.KeepGoLimit, it
// takes over the Go runtime's memory limit at once: it records the limit
// in force (GOMEMLIMIT or an earlier debug.SetMemoryLimit), which Close
// restores, and sets it to bytes less a hysteresis step. A budget below
// MinBudget fails with ErrInvalidBudget.
func NewBudget(bytes int64, opts BudgetOptions) (*Budget, error) {
	if bytes < MinBudget {
		return nil, fmt.Errorf("%w: %d bytes is below MinBudget (%d)", ErrInvalidBudget, bytes, MinBudget)
	}
	b := &Budget{
		bytes: bytes,
		step:  max(goLimitMinStep, bytes/goLimitStepDiv),
		keep:  opts.KeepGoLimit,
		epoch: time.Now(),
		heaps: make(map[*Heap]struct{}),
	}
	b.open.Store(true)
	b.observe(0)
	if !b.keep {
		b.mu.Lock()
		b.prev = debug.SetMemoryLimit(-1)
		b.goLimit.Store(b.prev) // so the first setting is not counted an override
		b.setGoLimitLocked(0)
		b.mu.Unlock()
	}
	return b, nil
}

// Close detaches the Budget: from now on it neither sets the Go memory
// limit nor bounds its heaps (they keep their own MemoryLimit). Unless
// KeepGoLimit, it restores the Go limit NewBudget found, if the limit is
// still the one this Budget set; if someone else has set it since, Close
// leaves their setting. A second Close returns ErrClosed.
func (b *Budget) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Swap(false) {
		return ErrClosed
	}
	if !b.keep && debug.SetMemoryLimit(-1) == b.goLimit.Load() {
		debug.SetMemoryLimit(b.prev)
	}
	return nil
}

// Stats returns the Budget's figures.
func (b *Budget) Stats() BudgetStats {
	st := BudgetStats{
		Budget:           uint64(b.bytes),
		Committed:        uint64(max(b.comm.Load(), 0)),
		GoMemory:         uint64(max(b.goMem.Load(), 0)),
		GoLimitSets:      b.sets.Load(),
		GoLimitOverrides: b.overrides.Load(),
		GoReads:          b.reads.Load(),
		Refusals:         b.refusals.Load(),
		Closed:           !b.open.Load(),
	}
	if !b.keep {
		st.GoLimit = uint64(b.goLimit.Load())
		b.mu.Lock()
		st.PrevLimit = uint64(b.prev)
		b.mu.Unlock()
	}
	b.hmu.Lock()
	st.Heaps = uint64(len(b.heaps))
	b.hmu.Unlock()
	return st
}

// observe reads the Go runtime's memory if the last read is older than
// maxAge (0: now), unless another goroutine is reading it now. It returns
// by how much the figure dropped (0 when it rose or was not read). Never
// called under a heap lock.
func (b *Budget) observe(maxAge time.Duration) int64 {
	now := int64(time.Since(b.epoch))
	if maxAge > 0 && now-b.readAt.Load() < int64(maxAge) {
		return 0
	}
	if !b.reading.CompareAndSwap(false, true) {
		return 0
	}
	defer b.reading.Store(false)
	s := [2]metrics.Sample{{Name: metricGoTotal}, {Name: metricGoReleased}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		// Both exist since Go 1.16; a runtime without them would
		// leave the budget unable to see Go's memory at all.
		panic("offheap: runtime/metrics lacks " + metricGoTotal + " or " + metricGoReleased)
	}
	g := int64(s[0].Value.Uint64() - s[1].Value.Uint64())
	old := b.goMem.Swap(g)
	b.readAt.Store(now)
	b.readCom.Store(b.comm.Load())
	b.reads.Add(1)
	return max(old-g, 0)
}

// over returns by how many bytes need more committed bytes would pass the
// budget, given the Go memory last read, or 0. Atomic loads only: called
// under a heap lock.
func (b *Budget) over(need uintptr) uintptr {
	if !b.open.Load() {
		return 0
	}
	g := b.goMem.Load()
	total := b.comm.Load() + int64(need) + g + max(b.step, g/goHeadroomDiv) // see goHeadroomDiv
	if total <= b.bytes {
		return 0
	}
	return uintptr(total - b.bytes)
}

// moved adds delta to the committed bytes and sets the Go limit again if
// they moved by more than the hysteresis step since it was last set.
func (b *Budget) moved(delta int64) {
	b.comm.Add(delta)
	b.settle()
}

// settle sets the Go limit to budget − committed − step when committed
// has moved by more than step since it was last set. The limit is set a
// step low because committed may grow by up to a step before the next
// setting: Go's limit plus offheap's committed memory then stays within
// the budget. Every change of comm is followed by a settle, which reads
// comm again under mu, so no change is lost to a concurrent setter.
func (b *Budget) settle() {
	if b.keep || !b.open.Load() {
		return
	}
	if d := b.comm.Load() - b.setAt.Load(); d <= b.step && d >= -b.step {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Load() {
		return // Close restored the limit: leave it
	}
	c := b.comm.Load()
	if d := c - b.setAt.Load(); d <= b.step && d >= -b.step {
		return
	}
	b.setGoLimitLocked(c)
}

// setGoLimitLocked sets the Go limit for committed bytes c. Caller holds
// b.mu. A previous limit that is not the one this Budget set means
// someone else changed it: counted, and overridden (the Budget owns the
// limit while open).
func (b *Budget) setGoLimitLocked(c int64) {
	l := max(b.bytes-c-b.step, 0)
	if prev := debug.SetMemoryLimit(l); prev != b.goLimit.Load() {
		b.overrides.Add(1)
	}
	b.goLimit.Store(l)
	b.setAt.Store(c)
	b.sets.Add(1)
}

// The heap's side: hooks called where committed memory changes.

// budgetLink is a heap's share of its Budget's committed bytes, so Close
// can take it back out.
type budgetLink struct {
	committed atomic.Int64
}

// checkBudget refuses a closed Budget (ErrInvalidConfig wrapping
// ErrClosed); Config.normalize calls it.
func (c *Config) checkBudget() error {
	if c.Budget != nil && !c.Budget.open.Load() {
		return fmt.Errorf("%w: Config.Budget: %w", ErrInvalidConfig, ErrClosed)
	}
	return nil
}

// budgetMoved records that npages of the heap became committed (npages >
// 0) or were returned to the kernel (npages < 0), and lets the Budget
// move the Go limit. Call with no lock held: it may call
// debug.SetMemoryLimit.
func (h *Heap) budgetMoved(npages int64) {
	b := h.cfg.Budget
	if b == nil || npages == 0 {
		return
	}
	d := npages * pages.PageSize
	h.budget.committed.Add(d)
	b.moved(d)
}

// budgetObserve reads the Go runtime's memory for the budget if it is due
// (goReadInterval, or a step committed since the last read); allocPages
// calls it before it takes the heap lock.
func (h *Heap) budgetObserve() {
	if b := h.cfg.Budget; b != nil {
		age := goReadInterval
		if b.comm.Load()-b.readCom.Load() > b.step {
			age = 0
		}
		b.observe(age)
	}
}

// relieve makes room for an allocation that would pass a limit by over
// bytes: it reads the Go runtime's memory again (the figure may be up to
// goReadInterval old), then returns free pages to the kernel, this heap's
// first, then, if over the budget still, those of the other heaps sharing
// it. It returns the bytes gained. Called with no lock held.
func (h *Heap) relieve(over uintptr) uintptr {
	b := h.cfg.Budget
	var gained uintptr
	if b != nil {
		gained = uintptr(b.observe(0))
	}
	if gained < over {
		gained += h.scavengeBytes(over - gained)
	}
	if b == nil || gained >= over {
		return gained
	}
	b.hmu.Lock()
	others := make([]*Heap, 0, len(b.heaps))
	for o := range b.heaps {
		if o != h {
			others = append(others, o)
		}
	}
	b.hmu.Unlock()
	for _, o := range others {
		if gained >= over {
			break
		}
		if o.enter() { // closed or closing: Close takes its memory away anyway
			gained += o.scavengeBytes(over - gained)
			o.leave()
		}
	}
	return gained
}

// limitError is the error of an allocation of npages refused by
// MemoryLimit or the budget.
func (h *Heap) limitError(npages uintptr) error {
	need := npages * pages.PageSize
	if b := h.cfg.Budget; b != nil && b.over(need) > 0 {
		b.refusals.Add(1)
		g := b.goMem.Load()
		return fmt.Errorf("%w: %d more bytes would pass the %d-byte budget (offheap committed %d, Go runtime %d, its headroom %d)",
			ErrOutOfMemory, need, b.bytes, b.comm.Load(), g, max(b.step, g/goHeadroomDiv))
	}
	return fmt.Errorf("%w: %d more bytes would pass the %d-byte memory limit",
		ErrOutOfMemory, need, h.cfg.MemoryLimit)
}

// budgetOverLocked is the budget's part of overLimitLocked.
func (h *Heap) budgetOverLocked(npages uintptr) uintptr {
	if b := h.cfg.Budget; b != nil {
		return b.over(npages * pages.PageSize)
	}
	return 0
}

// budgetAttach and budgetDetach count the heap in and out of its Budget
// (NewHeap, Close). Detaching takes the heap's committed bytes back out,
// so the Go limit rises by them.
func (h *Heap) budgetAttach() {
	if b := h.cfg.Budget; b != nil {
		b.hmu.Lock()
		b.heaps[h] = struct{}{}
		b.hmu.Unlock()
	}
}

func (h *Heap) budgetDetach() {
	if b := h.cfg.Budget; b != nil {
		b.hmu.Lock()
		delete(b.heaps, h)
		b.hmu.Unlock()
		b.moved(-h.budget.committed.Swap(0))
	}
}

// budgetStats fills the Budget figures of a heap's Stats.
func (h *Heap) budgetStats(st *Stats) {
	if b := h.cfg.Budget; b != nil {
		bs := b.Stats()
		st.Budget, st.BudgetGoLimit, st.BudgetGoMemory, st.BudgetCommitted =
			bs.Budget, bs.GoLimit, bs.GoMemory, bs.Committed
	}
}
