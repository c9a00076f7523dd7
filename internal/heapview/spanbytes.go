package heapview

import "github.com/offheap/offheap/arena"

// SpanBytes returns the span size of every small size class in st, keyed
// by the class's object size (arena.ClassStats.SpanBytes).
func SpanBytes(st arena.Stats) map[uint64]uint64 {
	m := make(map[uint64]uint64, len(st.Classes))
	for _, c := range st.Classes {
		if c.Size != 0 && c.SpanBytes != 0 {
			m[c.Size] = c.SpanBytes
		}
	}
	return m
}
