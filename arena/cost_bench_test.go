package arena

import (
	"testing"
)

// costSize is the object size of the cost benchmarks: a typical small
// record.
const costSize = 64

// BenchmarkFeatureCost measures what the optional features and the
// always-on checks cost on a Cache's 64-byte alloc+free pair, each against
// a plain heap in the same run (interleaved blocks, see runInterleaved):
//
//	profile/plain  ProfileRate = DefaultProfileRate (target < 1.05)
//	debug/plain    Config.Debug (target <= 3)
//	guard/plain    GuardSampleRate = 1000
//	checks/nochecks  Free's validation vs the same path without it (target < 1.05)
//
// plain-ns/op is the pair with every feature off; that the fast path pays
// nothing for them is seen by comparing it with BenchmarkPair/size=64/cache,
// which predates them, and in the code: with sampling off, windows are
// never cut, so no branch is added to the fast path.
func BenchmarkFeatureCost(b *testing.B) {
	mk := func(cfg Config) *Cache {
		cfg.Reserve, cfg.ScavengeDelay = 1<<30, -1
		h, err := NewHeap(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		c := h.NewCache()
		return c
	}
	plain := mk(Config{})
	profile := mk(Config{ProfileRate: DefaultProfileRate})
	debug := mk(Config{Debug: true})
	guard := mk(Config{GuardSampleRate: 1000})
	unchecked := mk(Config{})
	unchecked.h.uncheckedFree = true
	caches := []*Cache{plain, profile, debug, guard, unchecked}
	kinds := make([]func(k int) error, len(caches))
	for i, c := range caches {
		kinds[i] = func(k int) error { return pairCache(c, costSize, k) }
		if err := kinds[i](warmPairs); err != nil {
			b.Fatal(err)
		}
	}
	ns := runInterleaved(b, kinds)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ns[0], "plain-ns/op")
	b.ReportMetric(ns[1]/ns[0], "profile/plain")
	b.ReportMetric(ns[2]/ns[0], "debug/plain")
	b.ReportMetric(ns[3]/ns[0], "guard/plain")
	b.ReportMetric(ns[0]/ns[4], "checks/nochecks")
}

// BenchmarkTypedVsRaw compares New[T] with a raw Alloc of the same size
// through a Cache (target: typed <= 1.2x raw).
func BenchmarkTypedVsRaw(b *testing.B) {
	h, err := NewHeap(Config{Reserve: 1 << 30, ScavengeDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	c := h.NewCache()
	size := int(unsafeSizeofRecord)
	kinds := []func(k int) error{
		func(k int) error {
			for range k {
				p, err := c.Alloc(size)
				if err != nil {
					return err
				}
				if err := c.Free(p); err != nil {
					return err
				}
			}
			return nil
		},
		func(k int) error {
			for range k {
				p, err := New[plainRecord](c)
				if err != nil {
					return err
				}
				if err := Free(c, p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	ns := runInterleaved(b, kinds)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ns[0], "raw-ns/op")
	b.ReportMetric(ns[1], "typed-ns/op")
	b.ReportMetric(ns[1]/ns[0], "typed/raw")
}
