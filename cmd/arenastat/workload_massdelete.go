package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

const (
	// massDefaultFill is -fill's default: the scale of issue 14's cache
	// (2.3 GB of values) cut to what a workstation holds twice over.
	massDefaultFill = 1 << 30
	// massDuration is massdelete's default -duration, the churn time after
	// the delete: the window issue 14's target is set over.
	massDuration = 30 * time.Second
	// massMin and massMax bound the object sizes: issue 14's cache values.
	massMin, massMax = 64, 512
	// massDeletePercent is the share of the live objects deleted at once.
	massDeletePercent = 90
	// massSampleEvery is how often the churn's curve is sampled: often
	// enough to show how fast the heap converges over 30 s, rarely enough
	// that reading smaps (milliseconds on a GiB heap) costs nothing.
	massSampleEvery = time.Second
	// massTargetRatio is issue 14's target for HeapInuse / live bytes under
	// churn at the live size left by the delete.
	massTargetRatio = 1.5
	// massAvgSize is the mean object size, to size the live-set slices.
	massAvgSize = (massMin + massMax) / 2
	// massPaceBatch is how many replacements a goroutine makes between
	// looks at the clock when -turnover paces the churn: a clock read per
	// 64 operations costs nothing, and a sleep is at least that long.
	massPaceBatch = 64
	// maxTurnover bounds -turnover: replacing each live object 100 times a
	// second is beyond what the goroutines can do anyway.
	maxTurnover = 10000
)

func init() {
	register(workload{
		name:      "massdelete",
		about:     "fill with 64-512 B objects, delete 90 % at random, churn at the live size left: does in-use memory follow live memory down?",
		run:       runMassDelete,
		duration:  massDuration,
		lateClock: true,
	})
}

// CurveSample is one point of massdelete's curve: the heap's figures T
// after the delete.
type CurveSample struct {
	T            time.Duration `json:"t_ns"`
	HeapInuse    uint64        `json:"heap_inuse_bytes"`
	HeapAlloc    uint64        `json:"heap_alloc_bytes"` // live
	InusePerLive float64       `json:"inuse_per_live"`   // HeapInuse / HeapAlloc; 0 with nothing live
	Committed    uint64        `json:"committed_bytes"`
	HeapReleased uint64        `json:"heap_released_bytes"`
	RSS          uint64        `json:"rss_bytes"` // resident bytes of the heap's reservation, /proc/self/smaps
	RSSKnown     bool          `json:"rss_known"`
}

// ChurnSummary is what massdelete did and found.
type ChurnSummary struct {
	Fill            uint64        `json:"fill_bytes"`                 // asked for (-fill), in requested bytes
	Turnover        float64       `json:"turnover_percent,omitempty"` // -turnover; 0: unpaced
	FillTime        time.Duration `json:"fill_ns"`
	DeletedPercent  int           `json:"deleted_percent"`
	LiveAfterDelete uint64        `json:"live_after_delete_bytes"` // HeapAlloc
	TargetRatio     float64       `json:"target_ratio"`
	// BelowTarget says whether a sample's InusePerLive fell below
	// TargetRatio; BelowTargetAt is the first such sample's T.
	BelowTarget   bool          `json:"below_target"`
	BelowTargetAt time.Duration `json:"below_target_at_ns"`
}

// runMassDelete is issue 14's shape: a cache fills the heap with small
// values, drops 90 % of them at random, and then lives on at the new size,
// replacing values one for one. The survivors pin most spans after the
// delete; what the curve shows is whether allocation refills those sparse
// spans so that HeapInuse comes down to the live size, or spreads over
// them and keeps HeapInuse where the fill left it.
//
// Each goroutine has its own Cache and live set: it fills its share of
// -fill, deletes massDeletePercent of its objects, then (once the clock
// starts, -duration from then) frees a random live object and allocates
// one of a random size, so the live size stays where the delete left it.
// A sampler records the curve every massSampleEvery from the end of the
// delete.
//
// Unpaced, the churn replaces the whole live set within a second or so:
// every survivor of the delete is soon gone, and with it the sparse spans
// it pinned, whatever the allocator prefers. A real cache replaces a
// small share of its keys a second; -turnover (w.turnover) paces each
// goroutine to that share of its live set, so that survivors linger for
// the whole run and where new objects go decides the curve.
func runMassDelete(w *worker) ([]Phase, func(), error) {
	caches := make([]*arena.Cache, w.goroutines)
	live := make([][]unsafe.Pointer, w.goroutines)
	rngs := make([]*rand.Rand, w.goroutines)
	share := w.fill / uint64(w.goroutines)
	fillStart := time.Now()
	var wg sync.WaitGroup
	for i := range w.goroutines {
		caches[i], rngs[i] = w.h.NewCache(), rng(i)
		live[i] = make([]unsafe.Pointer, 0, share/massAvgSize+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r := w.wrap(caches[i]), rngs[i]
			for got := uint64(0); got < share && !w.stopped(); {
				size := between(r, massMin, massMax)
				p := w.alloc(a, size)
				if p == nil {
					return // out of memory: the fill ends here
				}
				live[i] = append(live[i], p)
				got += uint64(size)
			}
		}()
	}
	wg.Wait()
	fillTime := time.Since(fillStart)
	phases := []Phase{w.snapshot("after fill")}

	for i := range w.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r, objs := w.wrap(caches[i]), rngs[i], live[i]
			// A random subset, by a partial Fisher-Yates shuffle: the first
			// del entries after it are the ones to free.
			del := len(objs) * massDeletePercent / 100
			for j := range del {
				k := j + r.IntN(len(objs)-j)
				objs[j], objs[k] = objs[k], objs[j]
				w.free(a, objs[j])
			}
			live[i] = objs[del:]
		}()
	}
	wg.Wait()

	phases = append(phases, w.snapshot(fmt.Sprintf("after deleting %d %%", massDeletePercent)))
	w.startClock()
	churnStart := time.Now()
	sample := func() CurveSample { return curveSample(w.h, time.Since(churnStart)) }
	curve := []CurveSample{sample()}
	done := make(chan struct{})
	sampled := make(chan []CurveSample)
	go func() {
		var got []CurveSample
		tick := time.NewTicker(massSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				got = append(got, sample())
			case <-done:
				sampled <- got
				return
			}
		}
	}()
	for i := range w.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r, objs := w.wrap(caches[i]), rngs[i], live[i]
			perSec := w.turnover / 100 * float64(len(objs)) // replacements a second; 0: unpaced
			start := time.Now()
			for n := 0; len(objs) > 0 && !w.stopped(); n++ {
				if perSec > 0 && n%massPaceBatch == 0 {
					// Sleep till the batch is due, a bit at a time to see
					// the end of the run.
					due := start.Add(time.Duration(float64(n) / perSec * float64(time.Second)))
					for d := time.Until(due); d > 0 && !w.stopped(); d = time.Until(due) {
						time.Sleep(min(d, massSampleEvery/10))
					}
				}
				j := r.IntN(len(objs))
				w.free(a, objs[j])
				if p := w.alloc(a, between(r, massMin, massMax)); p != nil {
					objs[j] = p
				} else { // out of memory: the live set shrinks
					objs[j] = objs[len(objs)-1]
					objs = objs[:len(objs)-1]
				}
			}
			live[i] = objs
		}()
	}
	wg.Wait()
	close(done)
	curve = append(curve, <-sampled...)
	curve = append(curve, sample())
	phases = append(phases, w.snapshot("after churn"))

	w.curve = curve
	w.churn = summarise(curve, w.fill, fillTime)
	w.churn.Turnover = w.turnover
	cleanup := func() {
		for i := range caches {
			for _, p := range live[i] {
				caches[i].Free(p)
			}
			caches[i].Close()
		}
	}
	return phases, cleanup, nil
}

// curveSample reads h's figures for the curve, t after the delete.
func curveSample(h *arena.Heap, t time.Duration) CurveSample {
	st := h.Stats()
	rss, err := heapview.ResidentBytes(h.Mappings())
	s := CurveSample{T: t, HeapInuse: st.HeapInuse, HeapAlloc: st.HeapAlloc, Committed: st.Committed,
		HeapReleased: st.HeapReleased, RSS: rss, RSSKnown: err == nil}
	if st.HeapAlloc > 0 {
		s.InusePerLive = float64(st.HeapInuse) / float64(st.HeapAlloc)
	}
	return s
}

// summarise finds when the curve first fell below massTargetRatio.
func summarise(curve []CurveSample, fill uint64, fillTime time.Duration) *ChurnSummary {
	cs := &ChurnSummary{Fill: fill, FillTime: fillTime, DeletedPercent: massDeletePercent,
		LiveAfterDelete: curve[0].HeapAlloc, TargetRatio: massTargetRatio}
	for _, s := range curve {
		if s.HeapAlloc > 0 && s.InusePerLive < massTargetRatio {
			cs.BelowTarget, cs.BelowTargetAt = true, s.T
			break
		}
	}
	return cs
}
