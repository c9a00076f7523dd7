package arena

import (
	"testing"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
)

// BenchmarkRealloc compares a Realloc that stays in its size class (a
// check and a clear of the slack) with one that moves (Alloc, copy, Free)
// at a few sizes, through a Cache. Each iteration resizes back and forth
// between two sizes, so the object is in the same state after every pair.
func BenchmarkRealloc(b *testing.B) {
	for _, bc := range []struct {
		name     string
		from, to int
	}{
		{"InPlace/100-112", 100, 112},
		{"Move/100-200", 100, 200},
		{"InPlace/1000-1024", 1000, 1024},
		{"Move/1000-2000", 1000, 2000},
		{"InPlace/large-60K-64K", 60 << 10, 64 << 10},
		{"Move/large-40K-80K", 40 << 10, 80 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newTestHeap(b, quiet(Config{Reserve: 256 << 20}))
			c := h.NewCache()
			defer c.Close()
			p, err := c.Alloc(bc.from)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := bc.to
				if i&1 == 1 {
					n = bc.from
				}
				if p, err = c.Realloc(p, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppend appends 1000 uint64s one at a time to an empty slice:
// off-heap through a Cache (then freed), and with Go's append (garbage).
func BenchmarkAppend(b *testing.B) {
	const n = 1000
	b.Run("offheap", func(b *testing.B) {
		h := newTestHeap(b, quiet(Config{Reserve: 256 << 20}))
		c := h.NewCache()
		defer c.Close()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var s []uint64
			var err error
			for j := range n {
				if s, err = Append(c, s, uint64(j)); err != nil {
					b.Fatal(err)
				}
			}
			if err := FreeSlice(c, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var s []uint64
			for j := range n {
				s = append(s, uint64(j))
			}
			sinkU64 = s
		}
	})
}

var sinkU64 []uint64

// BenchmarkFreeSized measures what a sized free could save. A free here
// must read the object's span record whatever it is told (the slot's
// state byte and the span's owner live there), so knowing the size could
// spare only the span lookup's share of the class and the object index:
// Lookup+Index times exactly that, beside Free (through a Cache, small
// object, local free) and Free[T] (which also checks the size it is
// given against the span, as a sized free would).
func BenchmarkFreeSized(b *testing.B) {
	type obj [64]byte
	b.Run("AllocFree", func(b *testing.B) {
		h := newTestHeap(b, quiet(Config{Reserve: 64 << 20}))
		c := h.NewCache()
		defer c.Close()
		for i := 0; i < b.N; i++ {
			p, _ := c.Alloc(64)
			if err := c.Free(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AllocFreeTyped", func(b *testing.B) {
		h := newTestHeap(b, quiet(Config{Reserve: 64 << 20}))
		c := h.NewCache()
		defer c.Close()
		for i := 0; i < b.N; i++ {
			p, _ := New[obj](c)
			if err := Free(c, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Lookup+Index", func(b *testing.B) {
		h := newTestHeap(b, quiet(Config{Reserve: 64 << 20}))
		p, _ := h.Alloc(64)
		var sink uintptr
		for i := 0; i < b.N; i++ {
			s := h.spans.Lookup(uintptr(p))
			sink += sizeclasses.ObjIndex(s.Class, uintptr(p)-s.Base)
		}
		sinkUintptr = sink
	})
}

var sinkUintptr uintptr

// BenchmarkEpochEnterExit times a reader's Enter and Exit pair, with
// another reader registered (what a writer's advance scans).
func BenchmarkEpochEnterExit(b *testing.B) {
	h := newTestHeap(b, quiet(Config{Reserve: 64 << 20}))
	e := h.NewEpoch()
	other := e.NewReader()
	defer other.Close()
	rd := e.NewReader()
	defer rd.Close()
	for i := 0; i < b.N; i++ {
		rd.Enter()
		rd.Exit()
	}
}

// BenchmarkHandle times turning a Ref into a pointer (a bounds check
// and an add) and making a checked view (a span lookup in a section).
func BenchmarkHandle(b *testing.B) {
	h := newTestHeap(b, quiet(Config{Reserve: 64 << 20}))
	r, err := NewRef[[64]byte](h)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		var sink byte
		for i := 0; i < b.N; i++ {
			sink += r.Get(h)[0]
		}
		sinkByte = sink
	})
	b.Run("Bytes", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Bytes(h, r.Handle(), 64); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var sinkByte byte

// BenchmarkLookupParallel calls UsableSize and DefragHint on live objects
// from every P at once (b.RunParallel): what a store pays per overwrite or
// defrag step while its clients run on the other cores. Each opens a
// per-P section; with one counter for the whole heap, the 2-vCPU machine
// measured 85 ns per UsableSize from 2 goroutines, against 15 ns now.
func BenchmarkLookupParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		f    func(h *Heap, p unsafe.Pointer) error
	}{
		{"UsableSize", func(h *Heap, p unsafe.Pointer) error { _, err := h.UsableSize(p); return err }},
		{"DefragHint", func(h *Heap, p unsafe.Pointer) error { h.DefragHint(p); return nil }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newTestHeap(b, quiet(Config{Reserve: 256 << 20}))
			b.RunParallel(func(pb *testing.PB) {
				var ps [64]unsafe.Pointer
				for i := range ps {
					p, err := h.Alloc(300)
					if err != nil {
						b.Error(err)
						return
					}
					ps[i] = p
				}
				for i := 0; pb.Next(); i++ {
					if err := bc.f(h, ps[i%len(ps)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
