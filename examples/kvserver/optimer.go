package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// opBuckets: bucket i counts store operations that took [2^i, 2^(i+1))
// nanoseconds; 40 buckets reach 2^40 ns, about 18 minutes.
const opBuckets = 40

// opTimer records how long store operations take inside the server, lock
// waits included: INFO reports its quantiles, so a slow client-side
// latency can be told apart from time spent in the store (a stall there)
// and from time outside it (scheduling, GC pauses, the network). Safe for
// concurrent use: every field is atomic.
type opTimer struct {
	counts [opBuckets]atomic.Uint64
	max    atomic.Int64 // nanoseconds
}

func (t *opTimer) record(d time.Duration) {
	ns := max(int64(d), 1)
	t.counts[min(bits.Len64(uint64(ns))-1, opBuckets-1)].Add(1)
	for {
		m := t.max.Load()
		if ns <= m || t.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// quantiles returns the count, p50, p99 and p99.9 (upper bucket edges, so
// upper bounds) and the exact maximum.
func (t *opTimer) quantiles() (n uint64, p50, p99, p999, maxd time.Duration) {
	var c [opBuckets]uint64
	for i := range c {
		c[i] = t.counts[i].Load()
		n += c[i]
	}
	if n == 0 {
		return 0, 0, 0, 0, 0
	}
	q := func(frac float64) time.Duration {
		want := uint64(frac * float64(n))
		var seen uint64
		for i, ci := range c {
			seen += ci
			if seen > want {
				return time.Duration(uint64(1) << (i + 1))
			}
		}
		return time.Duration(uint64(1) << opBuckets)
	}
	return n, q(0.50), q(0.99), q(0.999), time.Duration(t.max.Load())
}
