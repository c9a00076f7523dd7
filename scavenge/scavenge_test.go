package scavenge

import (
	"errors"
	"testing"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeHeap models a heap's free committed memory as whole 2 MiB pages
// (huge) and fragments of fragRun bytes each (frag; 64 KiB unless a test
// sets it, down to one 8 KiB page). A release costs fixed per run plus
// perByte on the fake clock, like madvise; a call with align 0 releases at
// most maxRuns runs, as the heap bounds a step.
type fakeHeap struct {
	clk         *fakeClock
	inUse       uint64
	huge, frag  uint64
	fragRun     uint64
	maxRuns     int
	released    uint64
	fixed       time.Duration
	perByte     float64 // seconds per byte
	failNext    int     // fail this many Release calls
	calls       []call
	firstRelAt  time.Time
	lastRelAt   time.Time
	sawRelease  bool
	usageCalls  int
	releaseErrs int
}

type call struct{ max, align, got uint64 }

const fakePage = 8 << 10

func newFake(clk *fakeClock) *fakeHeap {
	return &fakeHeap{clk: clk, fixed: 2 * time.Microsecond, perByte: 64e-12, fragRun: 64 * kib, maxRuns: 64}
}

func (f *fakeHeap) Usage() (uint64, uint64) {
	f.usageCalls++
	return f.inUse, f.huge + f.frag
}

func (f *fakeHeap) Release(max, align uint64) (uint64, error) {
	if max < fakePage || max > maxBatch || (align != 0 && align != HugePage) {
		panic("bad Release arguments")
	}
	if f.failNext > 0 {
		f.failNext--
		f.releaseErrs++
		f.clk.Advance(f.fixed)
		return 0, errors.New("injected")
	}
	var got uint64
	runs := 0
	if align == HugePage {
		if f.huge >= align {
			got = min(max, f.huge) / align * align
			f.huge -= got
			runs = 1
		}
	} else {
		max = max / fakePage * fakePage
		// Highest first: say the fragments lie above the huge pages.
		for runs < f.maxRuns && got < max && f.frag > 0 {
			n := min(f.fragRun, f.frag, max-got)
			f.frag -= n
			got += n
			runs++
		}
		if got < max && f.huge > 0 && runs < f.maxRuns {
			n := min(f.huge, max-got)
			f.huge -= n
			got += n
			runs++
		}
	}
	f.calls = append(f.calls, call{max, align, got})
	f.clk.Advance(time.Duration(runs+1)*f.fixed + time.Duration(f.perByte*float64(got)*1e9))
	if got > 0 {
		if !f.sawRelease {
			f.firstRelAt, f.sawRelease = f.clk.t, true
		}
		f.lastRelAt = f.clk.t
		f.released += got
	}
	return got, nil
}

// run drives s until the clock reaches end, calling ev before each step.
func run(clk *fakeClock, s *Scavenger, end time.Time, ev func()) {
	for clk.t.Before(end) {
		if ev != nil {
			ev()
		}
		clk.Advance(s.Step())
	}
}

func setup(cfg Config) (*fakeClock, *fakeHeap, *Scavenger) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	f := newFake(clk)
	cfg.now = clk.Now
	return clk, f, New(f, cfg)
}

func TestGoalDefaults(t *testing.T) {
	_, _, s := setup(Config{})
	if g := s.Goal(0); g != DefaultRetainBytes {
		t.Fatalf("Goal(0) = %d", g)
	}
	if g := s.Goal(1000 * mib); g != DefaultRetainBytes+100*mib {
		t.Fatalf("Goal(1000 MiB) = %d, want 64+100 MiB", g)
	}
	if s.tick != DefaultDelay/ticksPerDelay {
		t.Fatalf("tick %v", s.tick)
	}
	_, _, s = setup(Config{RetainBytes: -1, RetainFraction: -1, Delay: 80 * time.Millisecond})
	if g := s.Goal(gib); g != 0 {
		t.Fatalf("retain none: Goal = %d", g)
	}
	if s.tick != 10*time.Millisecond {
		t.Fatalf("tick %v", s.tick)
	}
}

// After a spike is freed, nothing goes back before Delay, then everything
// above the goal goes back, whole huge pages first, within a burst.
func TestReleaseAfterDelay(t *testing.T) {
	for _, perByte := range []float64{64e-12, 250e-12} { // measured cost, and 4x slower
		clk, f, s := setup(Config{})
		start := clk.t
		f.inUse = 200 * mib
		run(clk, s, start.Add(3*time.Second), nil) // a quiet history
		if f.released != 0 {
			t.Fatalf("released %d with nothing free", f.released)
		}
		f.perByte = perByte
		freedAt := clk.t
		f.huge, f.frag = 1*gib, 8*mib
		f.inUse = 10 * mib
		run(clk, s, freedAt.Add(5*time.Second), nil)
		goal := s.Goal(f.inUse)
		if left := f.huge + f.frag; left > goal || goal-left >= MinBatch {
			t.Fatalf("left %d committed, goal %d", left, goal)
		}
		if d := f.firstRelAt.Sub(freedAt); d < DefaultDelay {
			t.Fatalf("first release %v after the free, before Delay", d)
		}
		lat := f.lastRelAt.Sub(freedAt)
		t.Logf("cost %.0f ps/B: released %d MiB, first after %v, done after %v; busy %v; cycle %v (busy %v)",
			perByte*1e12, f.released/mib, f.firstRelAt.Sub(freedAt), lat, s.Stats().Busy, s.Stats().LastCycle, s.Stats().lastBusy)
		if lat > 2*time.Second {
			t.Fatalf("release took %v after the free, want within 2 s", lat)
		}
		// Whole huge pages went first: every 2 MiB-aligned call precedes
		// every smaller one that released something.
		seenSmall := false
		for _, c := range f.calls {
			if c.got == 0 {
				continue
			}
			if c.align < HugePage {
				seenSmall = true
			} else if seenSmall {
				t.Fatalf("huge page release after a smaller one: %+v", f.calls)
			}
		}
		if st := s.Stats(); st.Cycles == 0 || st.released != f.released || st.LastCycle <= 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// Memory freed and reused within Delay is never released.
func TestTransientNotReleased(t *testing.T) {
	clk, f, s := setup(Config{})
	f.inUse = 100 * mib
	run(clk, s, clk.t.Add(2*time.Second), nil)
	for range 10 {
		f.huge = 512 * mib // a burst of frees...
		run(clk, s, clk.t.Add(700*time.Millisecond), nil)
		f.huge = 0 // ...reused before the delay is up
		run(clk, s, clk.t.Add(700*time.Millisecond), nil)
	}
	if f.released != 0 {
		t.Fatalf("released %d MiB of memory that was reused within Delay", f.released/mib)
	}
}

// Batches: every call asks for at least one page and at most maxBatch,
// either whole huge pages or runs of any length.
func TestBatches(t *testing.T) {
	clk, f, s := setup(Config{RetainBytes: -1, RetainFraction: -1, Delay: 10 * time.Millisecond})
	run(clk, s, clk.t.Add(time.Second), nil)
	f.frag = 100*kib + 3*mib // forces small batches
	f.huge = 6 * mib
	run(clk, s, clk.t.Add(time.Second), nil)
	for _, c := range f.calls {
		if c.max < fakePage || c.max > maxBatch || c.align != 0 && c.align != HugePage {
			t.Fatalf("bad call %+v", c)
		}
	}
	// A remainder under 64 KiB may stay.
	if f.huge+f.frag >= MinBatch {
		t.Fatalf("left huge %d frag %d", f.huge, f.frag)
	}
}

// Free memory made only of single 8 KiB pages (no run reaches 64 KiB, let
// alone a huge page) goes back to the goal within the delay and the burst
// window, even though each step releases only a few hundred KiB and the
// timer cannot sleep less than a millisecond.
func TestSmallRunsReleased(t *testing.T) {
	for _, perByte := range []float64{64e-12, 250e-12} {
		clk, f, s := setup(Config{})
		f.fragRun = fakePage
		f.fixed = time.Microsecond // per madvise call, as measured (doc.go)
		f.perByte = perByte
		f.inUse = 220 * mib
		runCoarse(clk, s, clk.t.Add(3*time.Second), nil)
		freedAt := clk.t
		f.frag = 800 * mib // ~100 000 single pages
		runCoarse(clk, s, clk.t.Add(5*time.Second), nil)
		goal := s.Goal(f.inUse)
		if left := f.frag; left > goal+MinBatch {
			t.Fatalf("left %d MiB committed, goal %d MiB", left/mib, goal/mib)
		}
		lat := f.lastRelAt.Sub(freedAt)
		t.Logf("cost %.0f ps/B: released %d MiB of single pages, done %v after the free (%d calls); busy %v",
			perByte*1e12, f.released/mib, lat, len(f.calls), s.Stats().Busy)
		// Delay, a sampling tick, the burst window and room for the
		// work itself when it exceeds the window (at 250 ps/B it does).
		if bound := DefaultDelay + DefaultDelay/ticksPerDelay + DefaultDelay/burstWindowDiv + 2*s.Stats().Busy; lat > bound {
			t.Fatalf("release done %v after the free, want within %v", lat, bound)
		}
	}
}

// runCoarse is run, but every sleep shorter than a millisecond lasts a
// millisecond, as a real timer's does (minSleep).
func runCoarse(clk *fakeClock, s *Scavenger, end time.Time, ev func()) {
	for clk.t.Before(end) {
		if ev != nil {
			ev()
		}
		if d := s.Step(); d > 0 {
			clk.Advance(max(d, time.Millisecond))
		}
	}
}

// Steady state: when little is due at a time, release work is paced to
// at most ~1 % of wall time even when the kernel is 16x slower than
// measured; and an idle heap costs no release work at all.
func TestSteadyStateCPU(t *testing.T) {
	clk, f, s := setup(Config{})
	f.perByte = 1e-9 // 1 ns per byte: 16x the measured MADV_DONTNEED cost
	f.fixed = 20 * time.Microsecond
	f.fragRun = mib // the trickle arrives in 1 MiB runs: one call each
	f.inUse = 1 * gib
	run(clk, s, clk.t.Add(5*time.Second), nil)
	if s.Stats().Busy != 0 {
		t.Fatalf("idle heap: busy %v", s.Stats().Busy)
	}
	// Free memory trickles in at 8 MiB/s above the goal; at 1 ns/B that
	// is 0.8 % of a core of work if all of it is released.
	start, busy0 := clk.t, s.Stats().Busy
	last := clk.t
	f.huge = s.Goal(f.inUse)
	run(clk, s, clk.t.Add(60*time.Second), func() {
		if d := clk.t.Sub(last); d > 0 {
			f.frag += uint64(8 * mib * d.Seconds())
			last = clk.t
		}
	})
	busy := s.Stats().Busy - busy0
	frac := busy.Seconds() / clk.t.Sub(start).Seconds()
	t.Logf("steady trickle: busy %v over %v = %.3f %% of a core; released %d MiB", busy, clk.t.Sub(start), 100*frac, f.released/mib)
	if frac > 0.0105 {
		t.Fatalf("scavenger used %.2f %% of a core in steady state", 100*frac)
	}
	if f.released < 400*mib {
		t.Fatalf("released only %d MiB of 480 MiB trickled in", f.released/mib)
	}
}

// The pause after a step keeps work at baseFraction when little is due,
// and allows a burst (up to maxFraction) when much is due.
func TestPacing(t *testing.T) {
	_, _, s := setup(Config{})
	if f := s.fraction(10 * mib); f != baseFraction {
		t.Fatalf("fraction(10 MiB) = %v", f)
	}
	if f := s.fraction(4 * gib); f != maxFraction {
		t.Fatalf("fraction(4 GiB) = %v", f)
	}
	if f := s.fraction(gib); f <= baseFraction || f >= maxFraction {
		t.Fatalf("fraction(1 GiB) = %v", f)
	}
	if p := pause(time.Millisecond, 0.01); p != 99*time.Millisecond {
		t.Fatalf("pause = %v", p)
	}
}

// A refused release is counted and retried; nothing is lost.
func TestFailureRetried(t *testing.T) {
	clk, f, s := setup(Config{RetainBytes: -1, RetainFraction: -1, Delay: 100 * time.Millisecond})
	run(clk, s, clk.t.Add(time.Second), nil)
	f.huge = 8 * mib
	f.failNext = 3
	run(clk, s, clk.t.Add(2*time.Second), nil)
	if st := s.Stats(); st.failures != 3 || f.huge != 0 || st.released != 8*mib {
		t.Fatalf("stats %+v, huge left %d", st, f.huge)
	}
}

// Under a memory limit, committed memory above 95 % of it is due at once,
// without waiting for Delay.
func TestLimitPressure(t *testing.T) {
	clk, f, s := setup(Config{MemoryLimit: 100 * mib})
	f.inUse = 50 * mib
	f.huge = 48 * mib // 98 MiB committed
	start := clk.t
	run(clk, s, start.Add(100*time.Millisecond), nil)
	if f.inUse+f.huge+f.frag > 95*mib {
		t.Fatalf("committed %d MiB after 100 ms, want <= 95", (f.inUse+f.huge+f.frag)/mib)
	}
	if f.released == 0 || f.firstRelAt.Sub(start) > time.Millisecond {
		t.Fatalf("released %d, first at %v", f.released, f.firstRelAt.Sub(start))
	}
}

// Run stops promptly when told.
func TestRunStops(t *testing.T) {
	f := newFake(&fakeClock{t: time.Unix(1, 0)})
	s := New(f, Config{Delay: 8 * time.Millisecond})
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { s.Run(stop); close(done) }()
	time.Sleep(30 * time.Millisecond)
	close(stop)
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return after stop")
	}
	if f.usageCalls == 0 {
		t.Fatal("Run never stepped")
	}
}
