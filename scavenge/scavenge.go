package scavenge

import (
	"sync/atomic"
	"time"
)

// Defaults for the zero Config.
const (
	DefaultRetainBytes    = 64 << 20
	DefaultRetainFraction = 0.10
	DefaultDelay          = time.Second
)

const (
	// MinBatch is the least excess over the goal the background scavenger
	// acts on: below 64 KiB a step's fixed costs (sampling, three short
	// lock holds) are not worth it, and the goal is met within 64 KiB.
	// It is not a minimum run: a step releases runs of any length, down
	// to one heap page (see Heap.Release).
	MinBatch = 64 << 10
	// HugePage is the transparent huge page size the scavenger tries to
	// keep whole, and so releases whole first.
	HugePage = 2 << 20
	// maxBatch is the most one step releases: a heap chunk (4 MiB), so the
	// heap lock is retaken at least once per chunk and one step's madvise
	// calls last about a millisecond at most.
	maxBatch = 4 << 20
	// minSleep is the shortest pause worth a sleep. A timer cannot sleep
	// much less than a millisecond (measured here: a 10 µs timer fired
	// after ~0.4 ms, a 100 µs one after ~1.1 ms), so a burst of short
	// steps each followed by its own short pause would run many times
	// slower than its pace. Pauses shorter than this are owed instead, and
	// paid in one sleep once they add up to it.
	minSleep = time.Millisecond

	// baseFraction is the share of one core the scavenger may use when it
	// is near its goal: the steady state.
	baseFraction = 0.01
	// maxFraction caps the share during a burst far above the goal: a
	// whole core, since a burst is bounded by the bytes the program freed
	// (~60 ms of CPU per GiB) and a lower cap stretches it on busy machines
	// (see doc.go).
	maxFraction = 1.0

	// ticksPerDelay: the heap is sampled this many times per Delay, so
	// release lags the delay by at most an eighth of it.
	ticksPerDelay = 8
	// costSmoothing: each step's measured cost per byte moves the
	// estimate 1/costSmoothing of the way, so one slow step (a TLB
	// shootdown, a busy core) does not swing the pace.
	costSmoothing = 4
	// burstWindowDiv: a backlog is paced to be released within
	// Delay/burstWindowDiv, well inside "released within ~2 s of the free".
	burstWindowDiv = 4
	// minTick bounds the sampling period from below.
	minTick = time.Millisecond
	// ringSize holds a Delay's worth of samples plus the boundary one.
	ringSize = ticksPerDelay + 4
	// limitShare: under a memory limit the scavenger keeps committed
	// memory at or below this share of it, without waiting for Delay, so
	// allocations rarely have to release memory themselves.
	limitShare = 0.95
	// initialCost is the release cost assumed before any was measured:
	// ~205 ns per 4 KiB page with MADV_DONTNEED on large ranges, rounded
	// up to 64 ps per byte.
	initialCost = 64e-12
)

// Heap is what the scavenger needs from a heap. Both methods are called
// from one goroutine at a time.
type Heap interface {
	// Usage reports the bytes in use and the free bytes that are still
	// committed (neither in use nor returned to the kernel).
	Usage() (inUse, freeCommitted uint64)
	// Release returns free committed memory to the kernel, at most max
	// bytes, highest addresses first, and reports the bytes released.
	//
	// With align = HugePage it releases one run whose base and length are
	// multiples of HugePage (whole transparent huge pages). With align = 0
	// it releases runs of any length, down to a single heap page, several
	// in one call (the heap bounds how many, so one call stays short).
	//
	// It returns 0 with a nil error when there is nothing to release. A
	// non-nil error means the kernel refused some of it: that memory stays
	// committed and is retried later; the bytes released before or beside
	// the refusal are still reported.
	Release(max, align uint64) (uint64, error)
}

// Config configures a Scavenger. Zero fields take the defaults.
type Config struct {
	// RetainBytes: free memory kept committed regardless of use; 0 means
	// DefaultRetainBytes, negative means none.
	RetainBytes int64
	// RetainFraction: free memory kept committed in proportion to the
	// bytes in use; 0 means DefaultRetainFraction, negative means none.
	RetainFraction float64
	// Delay: how long free memory above the goal must stay free before it
	// is released. 0 means DefaultDelay; the runner (arena) treats a
	// negative Delay as "no background scavenger" and never builds one.
	Delay time.Duration
	// MemoryLimit: a hard cap on committed bytes, 0 for none. The
	// scavenger keeps committed memory under 95 % of it without delay.
	MemoryLimit int64
	// now is the clock; nil means time.Now. Tests inject a fake one.
	now func() time.Time
}

// Stats are the scavenger's counters. Durations are wall time. The
// unexported ones are for this package's tests: arena keeps its own
// released-bytes and failure counts, which include synchronous releases.
type Stats struct {
	Cycles    uint64        // cycles finished: from finding memory due to reaching the goal
	released  uint64        // bytes released by the background scavenger
	failures  uint64        // releases the kernel refused
	steps     uint64        // release steps (one batch each)
	Busy      time.Duration // time spent in release steps
	LastCycle time.Duration // duration of the last finished cycle, sleeps included
	lastBusy  time.Duration // time spent releasing in the last finished cycle
}

type sample struct {
	at     time.Time
	excess uint64 // free committed bytes above the goal at that time
}

// Scavenger is the background release policy. Step is not safe for
// concurrent use (one worker drives it); Stats is.
type Scavenger struct {
	h      Heap
	retain uint64
	frac   float64
	delay  time.Duration
	tick   time.Duration
	limit  uint64
	now    func() time.Time

	ring       [ringSize]sample
	head, n    int // ring[head] is the oldest of n samples
	costPerB   float64
	inCycle    bool
	cycleStart time.Time
	cycleBusy  time.Duration
	cycleFrac  float64       // share of a core allowed in this cycle
	hugeDone   bool          // this cycle found no whole huge page to release
	owed       time.Duration // pauses shorter than minSleep not yet slept

	cycles, released, failures, steps atomic.Uint64
	busy, lastCycle, lastBusy         atomic.Int64
}

// New returns a Scavenger for h.
func New(h Heap, cfg Config) *Scavenger {
	s := &Scavenger{h: h, now: cfg.now, costPerB: initialCost}
	switch {
	case cfg.RetainBytes == 0:
		s.retain = DefaultRetainBytes
	case cfg.RetainBytes > 0:
		s.retain = uint64(cfg.RetainBytes)
	}
	switch {
	case cfg.RetainFraction == 0:
		s.frac = DefaultRetainFraction
	case cfg.RetainFraction > 0:
		s.frac = cfg.RetainFraction
	}
	s.delay = cfg.Delay
	if s.delay <= 0 {
		s.delay = DefaultDelay
	}
	s.tick = max(s.delay/ticksPerDelay, minTick)
	if cfg.MemoryLimit > 0 {
		s.limit = uint64(cfg.MemoryLimit)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Goal returns how many free bytes may stay committed with inUse bytes in
// use.
func (s *Scavenger) Goal(inUse uint64) uint64 {
	return s.retain + uint64(s.frac*float64(inUse))
}

// Step runs the policy once at the clock's current time: it samples the
// heap, works out how much is due for release, releases at most one batch
// if anything is due, and returns how long the caller should wait before
// the next Step. The wait paces the scavenger (see the package doc).
func (s *Scavenger) Step() time.Duration {
	now := s.now()
	inUse, free := s.h.Usage()
	excess := sub(free, s.Goal(inUse))
	s.record(now, excess)
	due := min(s.windowMin(), excess)
	if s.limit > 0 {
		// Memory-limit pressure is due at once, delay or not.
		cap := uint64(limitShare * float64(s.limit))
		due = max(due, min(free, sub(inUse+free, cap)))
	}
	if due < MinBatch {
		s.endCycle(now)
		return s.tick
	}
	if !s.inCycle {
		s.inCycle, s.cycleStart, s.cycleBusy, s.cycleFrac = true, now, 0, 0
		s.hugeDone, s.owed = false, 0
	}
	want := min(due, maxBatch)
	var got uint64
	var err error
	// Whole huge pages first, until a cycle finds none; then runs of any
	// length. Looking for a huge page costs a pass over the chunks under
	// the heap lock, so it is not repeated once a cycle found none.
	if !s.hugeDone && want >= HugePage {
		got, err = s.h.Release(want/HugePage*HugePage, HugePage)
		if got == 0 && err == nil {
			s.hugeDone = true
		}
	}
	if got == 0 && err == nil {
		got, err = s.h.Release(want, 0)
	}
	end := s.now()
	spent := end.Sub(now)
	s.steps.Add(1)
	s.busy.Add(int64(spent))
	s.cycleBusy += spent
	if got > 0 {
		s.released.Add(got)
		s.forget(got)
	}
	if err != nil {
		// The refused memory stays committed; back off a tick and try again.
		s.failures.Add(1)
		return s.tick
	}
	if got == 0 {
		// Nothing releasable (e.g. the free memory sits in worker caches).
		s.endCycle(end)
		return s.tick
	}
	if spent > 0 {
		// Smooth the measured cost per byte.
		c := float64(spent) / 1e9 / float64(got)
		s.costPerB += (c - s.costPerB) / costSmoothing
	}
	left := sub(due, got)
	if left < MinBatch {
		s.endCycle(end)
		return s.tick
	}
	// The share is set by the largest backlog seen in this cycle, so the
	// tail of a burst is not slowed down as the backlog shrinks.
	s.cycleFrac = max(s.cycleFrac, s.fraction(due))
	return s.sleep(pause(spent, s.cycleFrac))
}

// sleep turns a step's pause into how long the caller sleeps: pauses
// shorter than minSleep are added up and slept in one go once they reach
// it (0 until then: the next step runs at once), so the pace holds on
// average however short the steps are.
func (s *Scavenger) sleep(p time.Duration) time.Duration {
	s.owed += p
	if s.owed < minSleep {
		return 0
	}
	d := s.owed
	s.owed = 0
	return d
}

// fraction is the share of a core the scavenger may use with left bytes
// due: enough to release them within Delay/burstWindowDiv at the measured
// cost, never below baseFraction nor above maxFraction.
func (s *Scavenger) fraction(left uint64) float64 {
	need := float64(left) * s.costPerB / (s.delay / burstWindowDiv).Seconds()
	return min(max(need, baseFraction), maxFraction)
}

// pause is how long to sleep after working for spent so that work takes
// fraction f of the wall time.
func pause(spent time.Duration, f float64) time.Duration {
	return time.Duration(float64(spent) * (1/f - 1))
}

// record adds a sample if a tick has passed since the newest one, and
// drops samples older than the window, keeping one at or before its start.
func (s *Scavenger) record(now time.Time, excess uint64) {
	if s.n > 0 {
		newest := &s.ring[(s.head+s.n-1)%ringSize]
		if now.Sub(newest.at) < s.tick {
			newest.excess = min(newest.excess, excess)
			return
		}
	}
	if s.n == ringSize {
		s.head = (s.head + 1) % ringSize
		s.n--
	}
	s.ring[(s.head+s.n)%ringSize] = sample{now, excess}
	s.n++
	start := now.Add(-s.delay)
	for s.n > 1 && !s.ring[(s.head+1)%ringSize].at.After(start) {
		s.head = (s.head + 1) % ringSize
		s.n--
	}
}

// windowMin is the least excess seen over the last Delay: memory that has
// been free (above the goal) that whole time. 0 until a Delay of history
// exists.
func (s *Scavenger) windowMin() uint64 {
	if s.n == 0 || s.ring[s.head].at.After(s.now().Add(-s.delay)) {
		return 0
	}
	m := s.ring[s.head].excess
	for i := 1; i < s.n; i++ {
		m = min(m, s.ring[(s.head+i)%ringSize].excess)
	}
	return m
}

// forget takes released bytes off every sample: they are no longer free
// committed memory, and must not be released twice.
func (s *Scavenger) forget(released uint64) {
	for i := 0; i < s.n; i++ {
		e := &s.ring[(s.head+i)%ringSize].excess
		*e = sub(*e, released)
	}
}

func (s *Scavenger) endCycle(now time.Time) {
	if !s.inCycle {
		return
	}
	s.inCycle = false
	s.cycles.Add(1)
	s.lastCycle.Store(int64(now.Sub(s.cycleStart)))
	s.lastBusy.Store(int64(s.cycleBusy))
}

// Stats returns the counters. Safe to call from any goroutine.
func (s *Scavenger) Stats() Stats {
	return Stats{
		Cycles:    s.cycles.Load(),
		released:  s.released.Load(),
		failures:  s.failures.Load(),
		steps:     s.steps.Load(),
		Busy:      time.Duration(s.busy.Load()),
		LastCycle: time.Duration(s.lastCycle.Load()),
		lastBusy:  time.Duration(s.lastBusy.Load()),
	}
}

// Run calls Step until stop is closed, sleeping as Step says on a real
// timer. It returns promptly once stop is closed (after the step in
// progress).
func (s *Scavenger) Run(stop <-chan struct{}) {
	t := time.NewTimer(s.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		t.Reset(s.Step())
	}
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
