package spans

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkLookup(b *testing.B) {
	const pages = 4096
	tb := newTestTable(b, pages)
	for p := uintptr(0); p < pages; p += 2 {
		s := mustNew(b, tb, 64)
		s.Base, s.NPages = testBase+p*pageSize, 2
		tb.Publish(s, StateInUse)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	addrs := make([]uintptr, 1024)
	for i := range addrs {
		addrs[i] = testBase + uintptr(rng.IntN(pages*pageSize))
	}
	var hits int
	for i := 0; b.Loop(); i++ {
		if tb.Lookup(addrs[i%len(addrs)]) != nil {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no lookup found a span")
	}
}

func BenchmarkFreeMask(b *testing.B) {
	tb := newTestTable(b, 16)
	s := mustNew(b, tb, maxSlots)
	rng := rand.New(rand.NewPCG(2, 2))
	for i := uintptr(0); i < maxSlots; i++ {
		if rng.IntN(2) == 0 {
			*s.Slot(i) = SlotAllocated
		}
	}
	var sink uint64
	for i := uintptr(0); b.Loop(); i++ {
		sink += s.FreeMask(i % (maxSlots / 64))
	}
	if sink == 0 {
		b.Fatal("no free slot seen")
	}
}

func BenchmarkCountAllocated(b *testing.B) {
	tb := newTestTable(b, 16)
	s := mustNew(b, tb, maxSlots)
	for i := uintptr(0); i < maxSlots; i += 3 {
		*s.Slot(i) = SlotAllocated
	}
	for b.Loop() {
		if s.CountAllocated() != (maxSlots+2)/3 {
			b.Fatal("wrong count")
		}
	}
}
