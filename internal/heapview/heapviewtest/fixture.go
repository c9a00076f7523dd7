// Package heapviewtest holds a fixed heap snapshot for golden tests of the
// renderers in heapview and cmd/arenastat.
package heapviewtest

import (
	"time"

	"github.com/offheap/offheap/arena"
)

// Stats returns a fixed, self-consistent arena.Stats: HeapSys = HeapInuse
// + HeapIdle, HeapReleased <= HeapIdle, HeapAlloc = the sum of live class
// bytes plus LargeAlloc, each class's SpanOccupancy plus SpansCached =
// its Spans, and the heap's occupancy figures the sums of the classes'.
func Stats() arena.Stats {
	classes := []arena.ClassStats{
		{},
		// Occupancy: 1024 slots a span of 8 B, one span, cached.
		{Size: 8, Objects: 1000, Spans: 1, Mallocs: 5000, Frees: 4000, SpansCached: 1},
		{Size: 16},
		// 170 slots a span of 48 B: 300 live as 170 (full) + 120 (70 %)
		// + 10 (6 %, the sparse span).
		{Size: 48, Objects: 300, Spans: 3, Mallocs: 900, Frees: 600,
			SpanOccupancy: occupancy(arena.OccupancyFull, arena.Occupancy50to75, arena.OccupancyUnder25)},
		{Size: 1024, Objects: 0, Spans: 0, Mallocs: 70, Frees: 70},
		// 2 slots a span of 28 KiB: 3 live as 2 (full) + 1 (50 %), and an
		// emptied span a cache still owns.
		{Size: 28672, Objects: 3, Spans: 3, Mallocs: 3, Frees: 0,
			SpanOccupancy: occupancy(arena.OccupancyFull, arena.Occupancy50to75), SpansCached: 1},
	}
	st := arena.Stats{
		Reserved:            64 << 30,
		HeapSys:             12 << 20,
		HeapInuse:           3<<20 + 64<<10,
		HeapIdle:            9<<20 - 64<<10,
		HeapReleased:        8 << 20,
		Mallocs:             5000 + 900 + 70 + 3 + 2,
		Frees:               4000 + 600 + 70 + 0 + 0,
		Metadata:            200 << 10,
		LargeObjects:        2,
		LargeAlloc:          2 * 1 << 20,
		LargestFreeRun:      9 << 20,
		MemoryLimit:         256 << 20,
		Regions:             1,
		RegionInuse:         64 << 10,
		ScavengeGoal:        1 << 20,
		ScavengeCycles:      3,
		ScavengeTime:        1500 * time.Microsecond,
		ScavengeRecommitted: 2 << 20,
		ScavengeReleased:    10 << 20,
		ScavengeFailures:    1,
		// 10 MiB in 40 calls: 256 KiB a call. Free committed is idle and
		// not released: at most HeapIdle - HeapReleased (960 KiB).
		ScavengeReleaseCalls:  40,
		ScavengeFreeCommitted: 512 << 10,
		Classes:               classes,
	}
	st.Committed = st.HeapSys - st.HeapReleased
	spanBytes := SpanBytes()
	for _, c := range classes {
		for b, n := range c.SpanOccupancy {
			st.SpanOccupancy[b] += n
		}
		st.SpansCached += c.SpansCached
		st.SparseSpanBytes += c.SpanOccupancy[arena.OccupancyUnder25] * spanBytes[c.Size]
		st.HeapObjects += c.Objects
		st.HeapAlloc += c.Objects * c.Size
	}
	st.HeapObjects += st.LargeObjects
	st.HeapAlloc += st.LargeAlloc
	return st
}

// occupancy counts one span in each of the buckets given.
func occupancy(buckets ...int) (o [arena.SpanOccupancyBuckets]uint64) {
	for _, b := range buckets {
		o[b]++
	}
	return o
}

// SpanBytes is the span size of each class of Stats, by object size.
func SpanBytes() map[uint64]uint64 {
	return map[uint64]uint64{8: 8192, 16: 8192, 48: 8192, 1024: 8192, 28672: 57344}
}

// RSS is the resident figure that goes with Stats.
const RSS = 5 << 20
