package main

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/arena"
)

// Active defragmentation of the offheap store.
//
// Deleting most keys leaves the survivors scattered: nearly every span of
// the heap keeps a few, so nothing can go back to the kernel and RSS stays
// at its peak. Like Redis's activedefrag, a background goroutine moves
// surviving entries out of sparse spans (container.BytesMap.Defrag, which
// asks arena.Heap.DefragHint which entries are worth moving) so that those
// spans empty, the heap frees them and the scavenger returns their pages
// (ScavengeDelay, 1 s, after they empty).
//
// It works shard by shard, one bounded Defrag step at a time under the
// shard's write lock, so a client of that shard waits at most one step
// (defragStepEntries entries: tens of microseconds); between steps it
// sleeps in proportion to the time the step took, which bounds its CPU
// share whatever the machine's speed. Like Redis's active-defrag-cycle-min
// and -max, the share grows with the fragmentation (defragShare): a heap
// at 1.6x its live bytes after churn is compacted gently, without taking a
// quarter of a core from the clients, and one at 9x after a mass delete at
// full speed.

const (
	// defragStartRatio: a pass starts when the heap's HeapInuse (bytes
	// in spans) exceeds this multiple of HeapAlloc (bytes of live
	// objects). Below it at most a third of the span memory is free
	// slots, which is ordinary churn (each size class has partly filled
	// spans being allocated from) and not worth moving entries for.
	defragStartRatio = 1.5

	// defragStopRatio: once started, passes go on while the ratio stays
	// above this (and the last pass moved something). The gap is Redis's
	// upper and lower thresholds: a pass that began before a mass delete
	// has swept some shards before the delete thinned them, and may end
	// just under defragStartRatio with much left to win; without the gap
	// the heap would stay there.
	defragStopRatio = 1.1

	// defragMinWaste: nor does a pass start unless HeapInuse - HeapAlloc
	// is at least this much. A nearly empty heap has a high ratio from
	// its few partly filled spans alone, and there is nothing to win.
	defragMinWaste = 4 << 20

	// defragStepEntries: entries one step looks at (and at most that many
	// moved: an allocation, a copy of under 1 KiB and a free each), so a
	// step holds its shard's lock for tens of microseconds, well under a
	// millisecond, and a pass over a million keys takes a few thousand
	// steps.
	defragStepEntries = 256

	// defragShareMin, defragShareMax: after each step the defragger
	// sleeps (1/share - 1) times as long as the step took, so it uses at
	// most that share of one core while it runs, and clients find the
	// shard locks free the rest of the time. The share is defragShareMin
	// for a pass that starts at defragStartRatio and grows linearly to
	// defragShareMax at defragFullRatio and above (defragShare). On the
	// 2-vCPU bench machine, a pass at a quarter of a core after the
	// SET/GET phase (ratio about 1.6) doubled the -P 1 p99 latency.
	defragShareMin  = 0.05
	defragShareMax  = 0.25
	defragFullRatio = 3.0

	// defragMinSleep: the shortest pause between steps, so that even
	// steps that found nothing to move (an empty stretch of the table)
	// let the scheduler and the lock's waiters in.
	defragMinSleep = 20 * time.Microsecond

	// defragCheckEvery: how often the idle defragger looks at the heap's
	// Stats (one call, no locks of the maps).
	defragCheckEvery = 100 * time.Millisecond

	// defragSettleDiv: nor while a mass delete is still under way (the
	// heap's HeapAlloc fell by more than 1/defragSettleDiv since the last
	// check), and a pass under way pauses between shards meanwhile:
	// entries moved then are mostly deleted right after, which tripled
	// the moves in a 90 % delete of 1 M keys. Waiting costs one check
	// (defragCheckEvery) after the deletes stop. A heap shrinking by 1/64
	// per check halves in 4.4 s: a delete rate that never settles below
	// that empties the heap within a minute. 1/16 missed the bench's 90 %
	// delete of 3 M keys in 2 s (under 5 % of the heap per check at
	// first), and the pass that started in it moved entries the delete
	// then removed and ended with the heap at 1.15x its live bytes 5 s
	// later, against 1.02x when it waited.
	defragSettleDiv = 64

	// defragIdleBackoff: after a pass that moved nothing (what is left is
	// not sparse enough, or sits in cache-owned spans), the next pass
	// waits this long, so a heap that stays above the ratio is not swept
	// over and over for nothing.
	defragIdleBackoff = 10 * time.Second
)

// defragStats counts the defragger's work; all atomic (written by the
// defragger, read by INFO).
type defragStats struct {
	runs     atomic.Uint64 // passes started
	steps    atomic.Uint64 // Defrag steps taken
	moved    atomic.Uint64 // entries moved
	busy     atomic.Int64  // nanoseconds spent in steps (holding a shard lock)
	maxStep  atomic.Int64  // longest step, nanoseconds
	lastPass atomic.Int64  // duration of the last complete pass, nanoseconds
	share    atomic.Uint64 // CPU share of the current or last pass (float64 bits)
	running  atomic.Bool   // a pass is in progress
	errors   atomic.Uint64 // steps that failed (the heap refused a new entry)
	pauses   atomic.Uint64 // waits of a pass for a mass delete to settle
}

// massDelete reports whether HeapAlloc falling from prev to now at one
// look of the defragger means a mass delete is under way
// (defragSettleDiv).
func massDelete(prev, now uint64) bool { return now < prev-prev/defragSettleDiv }

// defragWanted reports whether the heap is fragmented enough for a pass
// and not shrinking fast (see defragSettleDiv); lastAlloc is HeapAlloc at
// the previous check, updated here.
func (s *offStore) defragWanted(lastAlloc *uint64, ratio float64) bool {
	st := s.h.Stats()
	prev := *lastAlloc
	*lastAlloc = st.HeapAlloc
	if massDelete(prev, st.HeapAlloc) {
		return false
	}
	return st.HeapInuse > st.HeapAlloc && st.HeapInuse-st.HeapAlloc >= defragMinWaste &&
		float64(st.HeapInuse) > ratio*float64(st.HeapAlloc)
}

// startDefrag starts the defragger; Close stops it before closing the
// maps. Call it at most once, before serving.
func (s *offStore) startDefrag() {
	s.defragStop = make(chan struct{})
	s.defragDone = make(chan struct{})
	go s.defragLoop(s.defragStop, s.defragDone)
}

// stopDefrag stops the defragger, if started, and waits for it.
func (s *offStore) stopDefrag() {
	if s.defragStop == nil {
		return
	}
	select {
	case <-s.defragStop:
	default:
		close(s.defragStop)
	}
	<-s.defragDone
}

// defragLoop runs until stop is closed; it closes done when it returns.
func (s *offStore) defragLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(defragCheckEvery)
	defer tick.Stop()
	var notBefore time.Time
	var lastAlloc uint64
	ratio := defragStartRatio // defragStopRatio while passes keep moving entries
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if !s.defragWanted(&lastAlloc, ratio) || time.Now().Before(notBefore) {
			ratio = defragStartRatio
			continue
		}
		moved, ok := s.defragPass(stop)
		if !ok {
			return
		}
		ratio = defragStopRatio
		if moved == 0 {
			ratio = defragStartRatio
			notBefore = time.Now().Add(defragIdleBackoff)
		}
	}
}

// defragShare is the CPU share of a pass that starts with the heap's
// HeapInuse at ratio times its HeapAlloc (see defragShareMin).
func defragShare(ratio float64) float64 {
	f := (ratio - defragStartRatio) / (defragFullRatio - defragStartRatio)
	return defragShareMin + (defragShareMax-defragShareMin)*min(max(f, 0), 1)
}

// defragPass sweeps every shard once and returns the entries moved; false
// if stop was closed or the store closed meanwhile.
func (s *offStore) defragPass(stop <-chan struct{}) (moved uint64, ok bool) {
	d := &s.defrag
	// The share is set from the ratio at the start and raised, never
	// lowered, at each look at the heap between shards: a gentle pass
	// under way when a mass delete lands speeds up, and the pass after a
	// delete keeps its speed as it brings the ratio down.
	share := 0.0
	raise := func(st arena.Stats) {
		r := defragFullRatio
		if st.HeapAlloc > 0 {
			r = float64(st.HeapInuse) / float64(st.HeapAlloc)
		}
		if v := defragShare(r); v > share {
			share = v
			d.share.Store(math.Float64bits(share))
		}
	}
	st := s.h.Stats()
	raise(st)
	d.runs.Add(1)
	d.running.Store(true)
	defer d.running.Store(false)
	start := time.Now()
	pace := time.NewTimer(time.Hour) // reset before each wait: no timer garbage per step
	defer pace.Stop()
	wait := func(d time.Duration) bool {
		pace.Reset(d)
		select {
		case <-stop:
			return false
		case <-pace.C:
			return true
		}
	}
	lastAlloc, lastAt := st.HeapAlloc, time.Now()
	for i := range s.shards {
		// A pass under way pauses, between shards, while a mass delete
		// is (see defragSettleDiv): it would move entries about to be
		// deleted, and take CPU and shard locks from the deletes.
		if time.Since(lastAt) >= defragCheckEvery {
			for {
				st := s.h.Stats()
				a := st.HeapAlloc
				falling := massDelete(lastAlloc, a)
				lastAlloc, lastAt = a, time.Now()
				if !falling {
					raise(st)
					break
				}
				d.pauses.Add(1)
				if !wait(defragCheckEvery) {
					return moved, false
				}
			}
		}
		sh := &s.shards[i]
		var sweeps uint64
		var prev any // the map the steps started on (Flush replaces it)
		for {
			sh.mu.Lock()
			// Timed from here: the lock hold is what clients wait for,
			// and what the pacing is proportional to (the wait for the
			// lock is other goroutines' work).
			t0 := time.Now()
			if sh.closed {
				sh.mu.Unlock()
				return moved, false
			}
			m := sh.m
			if prev == nil {
				prev, sweeps = m, m.MemStats().DefragSweeps
			} else if prev != any(m) {
				// Flushed since the last step: the new map is empty.
				sh.mu.Unlock()
				break
			}
			n, err := m.Defrag(defragStepEntries)
			done := m.MemStats().DefragSweeps != sweeps
			took := time.Since(t0)
			sh.mu.Unlock()
			d.steps.Add(1)
			d.moved.Add(uint64(n))
			d.busy.Add(int64(took))
			if int64(took) > d.maxStep.Load() {
				d.maxStep.Store(int64(took))
			}
			moved += uint64(n)
			if err != nil {
				// The heap is full (MemoryLimit): moving needs a new entry
				// before the old one is freed. Leave this shard for now.
				d.errors.Add(1)
				done = true
			}
			pause := max(time.Duration(float64(took)*(1/share-1)), defragMinSleep)
			if !wait(pause) {
				return moved, false
			}
			if done {
				break
			}
		}
	}
	d.lastPass.Store(int64(time.Since(start)))
	return moved, true
}

// defragInfo appends the defragger's INFO fields.
func (s *offStore) defragInfo(w *infoWriter) {
	d := &s.defrag
	st := s.h.Stats()
	w.section("Defrag")
	ratio := 0.0
	if st.HeapAlloc > 0 {
		ratio = float64(st.HeapInuse) / float64(st.HeapAlloc)
	}
	w.f64("defrag_frag_ratio", ratio)
	w.f64("defrag_start_ratio", defragStartRatio)
	running := 0
	if d.running.Load() {
		running = 1
	}
	w.int("defrag_running", running)
	w.u64("defrag_runs", d.runs.Load())
	w.u64("defrag_steps", d.steps.Load())
	w.u64("defrag_moved", d.moved.Load())
	w.u64("defrag_errors", d.errors.Load())
	w.u64("defrag_pauses", d.pauses.Load())
	w.dur("defrag_busy_seconds", time.Duration(d.busy.Load()))
	w.dur("defrag_max_step_seconds", time.Duration(d.maxStep.Load()))
	w.dur("defrag_last_pass_seconds", time.Duration(d.lastPass.Load()))
	w.f64("defrag_cpu_share", math.Float64frombits(d.share.Load()))
}
