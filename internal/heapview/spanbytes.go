package heapview

import (
	"sync"

	"github.com/offheap/offheap/arena"
)

// probeReserve is the reservation of the scratch heap that SpanBytes
// measures: room for one span of every class.
const probeReserve = 64 << 20

var (
	spanBytesOnce sync.Once
	spanBytes     map[uint64]uint64
)

// SpanBytes returns the span size of every small size class, keyed by the
// class's object size.
//
// arena.Stats does not say how large a class's spans are, so this measures
// it once per process with the public API alone: on a scratch heap it
// allocates one object of each class and reads how far HeapInuse moved
// (the first object of a class takes exactly one new span). Classes whose
// measurement looks wrong (not a positive whole number of pages holding at
// least one object) are left out. If the scratch heap cannot be made the
// map is empty and utilisation is reported as unknown.
func SpanBytes() map[uint64]uint64 {
	spanBytesOnce.Do(func() { spanBytes = probeSpanBytes() })
	return spanBytes
}

func probeSpanBytes() map[uint64]uint64 {
	m := make(map[uint64]uint64)
	h, err := arena.NewHeap(arena.Config{Reserve: probeReserve, Name: "offheap-probe", ScavengeDelay: -1})
	if err != nil {
		return m
	}
	defer h.Close()
	st := h.Stats()
	for _, c := range st.Classes {
		if c.Size == 0 {
			continue
		}
		before := h.Stats().HeapInuse
		if _, err := h.Alloc(int(c.Size)); err != nil {
			continue
		}
		d := h.Stats().HeapInuse - before
		if d > 0 && d%arena.PageSize == 0 && d >= c.Size {
			m[c.Size] = d
		}
	}
	return m
}
