// Package heapviewtest holds a fixed heap snapshot for golden tests of the
// renderers in heapview and cmd/arenastat.
package heapviewtest

import (
	"time"

	"github.com/offheap/offheap/arena"
)

// Stats returns a fixed, self-consistent arena.Stats: HeapSys = HeapInuse
// + HeapIdle, HeapReleased <= HeapIdle, HeapAlloc = the sum of live class
// bytes plus LargeAlloc.
func Stats() arena.Stats {
	classes := []arena.ClassStats{
		{},
		{Size: 8, Objects: 1000, Spans: 1, Mallocs: 5000, Frees: 4000},
		{Size: 16},
		{Size: 48, Objects: 300, Spans: 2, Mallocs: 900, Frees: 600},
		{Size: 1024, Objects: 0, Spans: 0, Mallocs: 70, Frees: 70},
		{Size: 28672, Objects: 3, Spans: 3, Mallocs: 3, Frees: 0},
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
	for _, c := range classes {
		st.HeapObjects += c.Objects
		st.HeapAlloc += c.Objects * c.Size
	}
	st.HeapObjects += st.LargeObjects
	st.HeapAlloc += st.LargeAlloc
	return st
}

// SpanBytes is the span size of each class of Stats, by object size.
func SpanBytes() map[uint64]uint64 {
	return map[uint64]uint64{8: 8192, 16: 8192, 48: 8192, 1024: 8192, 28672: 57344}
}

// RSS is the resident figure that goes with Stats.
const RSS = 5 << 20
