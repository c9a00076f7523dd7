package spans

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// zeroBytesRef is the obvious zeroBytes: bit k set when byte k (little
// endian, byte 0 the least significant) is zero.
func zeroBytesRef(x uint64) uint64 {
	var m uint64
	for k := 0; k < 8; k++ {
		if byte(x>>(8*k)) == 0 {
			m |= 1 << k
		}
	}
	return m
}

func checkZeroBytes(t *testing.T, x uint64) bool {
	t.Helper()
	if got, want := zeroBytes(x), zeroBytesRef(x); got != want {
		t.Errorf("zeroBytes(%#016x) = %#010b, want %#010b", x, got, want)
		return false
	}
	return true
}

func TestZeroBytesEveryByteInEveryPosition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Backgrounds for the other seven bytes: all zero, all 0xff, all 0x80
	// (high bit only, the case a careless high-bit trick gets wrong), all
	// 0x01, all 0x7f, and random words.
	backgrounds := []uint64{0, ^uint64(0), 0x8080808080808080, 0x0101010101010101, 0x7f7f7f7f7f7f7f7f}
	for range 32 {
		backgrounds = append(backgrounds, rng.Uint64())
	}
	failures := 0
	for _, bg := range backgrounds {
		for pos := 0; pos < 8; pos++ {
			for v := 0; v < 256; v++ {
				x := bg&^(0xff<<(8*pos)) | uint64(v)<<(8*pos)
				if !checkZeroBytes(t, x) {
					failures++
				}
				if failures > 20 {
					t.Fatal("too many failures")
				}
			}
		}
	}
}

func TestZeroBytesEveryZeroPattern(t *testing.T) {
	// Every one of the 256 sets of zero bytes, filled with each non-zero
	// byte value in turn and with random non-zero bytes.
	rng := rand.New(rand.NewPCG(3, 4))
	for pattern := 0; pattern < 256; pattern++ {
		fills := make([]func(k int) byte, 0, 260)
		for v := 1; v < 256; v++ {
			fills = append(fills, func(int) byte { return byte(v) })
		}
		for range 4 {
			fills = append(fills, func(int) byte { return byte(rng.IntN(255) + 1) })
		}
		for _, fill := range fills {
			var x uint64
			for k := 0; k < 8; k++ {
				if pattern&(1<<k) == 0 {
					x |= uint64(fill(k)) << (8 * k)
				}
			}
			if got := zeroBytes(x); got != uint64(pattern) {
				t.Fatalf("zeroBytes(%#016x) = %#010b, want %#010b", x, got, pattern)
			}
		}
	}
}

func TestZeroBytesRandomWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 200000; n++ {
		x := rng.Uint64()
		// Clear a random subset of bytes so zero bytes are common.
		x &^= spreadBits(rng.Uint64() & 0xff)
		if !checkZeroBytes(t, x) {
			t.FailNow()
		}
	}
}

// spreadBits turns bit k of an 8-bit mask into byte k of 0xff.
func spreadBits(m uint64) uint64 {
	var x uint64
	for k := 0; k < 8; k++ {
		if m&(1<<k) != 0 {
			x |= 0xff << (8 * k)
		}
	}
	return x
}

func TestZeroBytesRefSanity(t *testing.T) {
	// Guards the reference itself.
	for _, c := range []struct{ x, want uint64 }{
		{0, 0xff},
		{^uint64(0), 0},
		{0xff, 0xfe},
		{0xff << 56, 0x7f},
		{0x0100000000000080, 0x7e},
	} {
		if got := zeroBytesRef(c.x); got != c.want {
			t.Errorf("zeroBytesRef(%#x) = %#b, want %#b", c.x, got, c.want)
		}
	}
}

// slotCounts covers one object, each side of every 64-slot boundary that
// matters, real size-class counts, and the maximum.
var slotCounts = []uint32{1, 2, 3, 7, 8, 9, 63, 64, 65, 73, 85, 102, 127, 128, 129, 170, 191, 192, 256, 511, 512, 513, 1000, 1023, 1024}

func TestNewSlotLayout(t *testing.T) {
	tb := newTestTable(t, 64)
	for _, n := range slotCounts {
		s := mustNew(t, tb, n)
		wantSlots := (n + 63) / 64 * 64
		if s.NSlots() != wantSlots {
			t.Errorf("New(%d): NSlots = %d, want %d (NElems rounded up to 64)", n, s.NSlots(), wantSlots)
			continue
		}
		if s.NElems != n {
			t.Errorf("New(%d): NElems = %d", n, s.NElems)
		}
		if uintptr(s.slots())%8 != 0 {
			t.Errorf("New(%d): slot bytes at %p, not 8-byte aligned", n, s.slots())
		}
		for i, b := range slotStates(s) {
			want := uint8(SlotFree)
			if uint32(i) >= n {
				want = SlotPad
			}
			if b != want {
				t.Errorf("New(%d): slot %d state %d, want %d", n, i, b, want)
				break
			}
		}
	}
}

// TestOneObjectSpanSlotIsItsOwn: a span of one object (size classes with
// one object per span exist, e.g. 8192-byte objects in one page) must have
// a state byte of its own, not one that belongs to the next record.
func TestOneObjectSpanSlotIsItsOwn(t *testing.T) {
	tb := newTestTable(t, 16)
	a := mustNew(t, tb, 1)
	b := mustNew(t, tb, 1)
	*a.Slot(0) = SlotAllocated
	if b.FreedBit(0) || b.HasPending() {
		t.Fatalf("writing slot 0 of span %d set a freed bit of span %d", a.ID(), b.ID())
	}
	if got := a.FreeMask(0); got != 0 {
		t.Errorf("FreeMask(0) with the one slot allocated = %#x, want 0", got)
	}
	if got := a.CountAllocated(); got != 1 {
		t.Errorf("CountAllocated = %d, want 1", got)
	}
	*a.Slot(0) = SlotFree
	if got := a.FreeMask(0); got != 1 {
		t.Errorf("FreeMask(0) with the one slot free = %#x, want 1", got)
	}
	if got := a.CountAllocated(); got != 0 {
		t.Errorf("CountAllocated of an empty one-object span = %d, want 0", got)
	}
}

func TestFreeMaskAndCountAllocated(t *testing.T) {
	tb := newTestTable(t, 64)
	rng := rand.New(rand.NewPCG(7, 8))
	counts := append([]uint32(nil), slotCounts...)
	for range 20 {
		counts = append(counts, uint32(rng.IntN(maxSlots)+1))
	}
	for _, n := range counts {
		t.Run(strconv.Itoa(int(n)), func(t *testing.T) {
			s := mustNew(t, tb, n)
			defer tb.Release(s)
			for _, density := range []float64{0, 0.1, 0.5, 0.9, 1} {
				model := make([]bool, n) // allocated?
				allocated := uint32(0)
				for i := range model {
					model[i] = rng.Float64() < density
					st := uint8(SlotFree)
					if model[i] {
						st = SlotAllocated
						allocated++
					}
					*s.Slot(uintptr(i)) = st
				}
				for w := uintptr(0); w < uintptr(s.NSlots())/64; w++ {
					var want uint64
					for k := uintptr(0); k < 64; k++ {
						if i := w*64 + k; i < uintptr(n) && !model[i] {
							want |= 1 << k
						}
					}
					if got := s.FreeMask(w); got != want {
						t.Fatalf("density %v: FreeMask(%d) = %#016x, want %#016x (diff %#016x)", density, w, got, want, got^want)
					}
				}
				// Padding past NElems is never free.
				if last := uintptr(s.NSlots())/64 - 1; n%64 != 0 {
					if pad := s.FreeMask(last) >> (n % 64); pad != 0 {
						t.Fatalf("padding slots reported free: %#x", pad)
					}
				}
				if got := s.CountAllocated(); got != allocated {
					t.Fatalf("density %v: CountAllocated = %d, want %d", density, got, allocated)
				}
			}
		})
	}
}

func TestFreeMaskOnlyZeroIsFree(t *testing.T) {
	// Any non-zero state byte, not just the named ones, is "not free".
	tb := newTestTable(t, 4)
	s := mustNew(t, tb, 64)
	for v := 1; v < 256; v++ {
		for i := uintptr(0); i < 64; i++ {
			*s.Slot(i) = SlotFree
		}
		i := uintptr(v % 64)
		*s.Slot(i) = uint8(v)
		if got, want := s.FreeMask(0), ^uint64(0)&^(1<<i); got != want {
			t.Fatalf("slot %d = %d: FreeMask = %#x, want %#x", i, v, got, want)
		}
	}
}

func TestMarkFreedAndCollect(t *testing.T) {
	tb := newTestTable(t, 64)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range slotCounts {
		s := mustNew(t, tb, n)
		if s.HasPending() {
			t.Fatalf("New(%d): HasPending", n)
		}
		if got, bad := s.Collect(); got != 0 || bad.N != 0 {
			t.Fatalf("New(%d): Collect = %d, want 0", n, got)
		}
		allocated := map[uintptr]bool{}
		for i := uintptr(0); i < uintptr(n); i++ {
			if rng.IntN(3) > 0 {
				*s.Slot(i) = SlotAllocated
				allocated[i] = true
			}
		}
		freed := map[uintptr]bool{}
		for i := range allocated {
			if rng.IntN(2) == 0 {
				continue
			}
			if s.FreedBit(i) {
				t.Fatalf("n=%d: FreedBit(%d) before MarkFreed", n, i)
			}
			if !s.MarkFreed(i) {
				t.Fatalf("n=%d: first MarkFreed(%d) = false", n, i)
			}
			if !s.FreedBit(i) {
				t.Fatalf("n=%d: FreedBit(%d) false after MarkFreed", n, i)
			}
			if s.MarkFreed(i) {
				t.Fatalf("n=%d: second MarkFreed(%d) = true, want false (double free)", n, i)
			}
			if !s.HasPending() {
				t.Fatalf("n=%d: HasPending false after MarkFreed(%d)", n, i)
			}
			freed[i] = true
		}
		// Freed bits are set for exactly the freed slots; state bytes are
		// untouched until Collect.
		for i := uintptr(0); i < uintptr(s.NSlots()); i++ {
			if s.FreedBit(i) != freed[i] {
				t.Fatalf("n=%d: FreedBit(%d) = %v, want %v", n, i, s.FreedBit(i), freed[i])
			}
		}
		if got := s.CountAllocated(); got != uint32(len(allocated)) {
			t.Fatalf("n=%d: CountAllocated before Collect = %d, want %d", n, got, len(allocated))
		}
		if got, bad := s.Collect(); got != uint32(len(freed)) || bad.N != 0 {
			t.Fatalf("n=%d: Collect = %d, want %d", n, got, len(freed))
		}
		if s.HasPending() {
			t.Fatalf("n=%d: HasPending after Collect", n)
		}
		for i := uintptr(0); i < uintptr(s.NSlots()); i++ {
			want := uint8(SlotFree)
			switch {
			case i >= uintptr(n):
				want = SlotPad
			case allocated[i] && !freed[i]:
				want = SlotAllocated
			}
			if got := *s.Slot(i); got != want {
				t.Fatalf("n=%d: after Collect slot %d state %d, want %d", n, i, got, want)
			}
			if s.FreedBit(i) {
				t.Fatalf("n=%d: FreedBit(%d) still set after Collect", n, i)
			}
		}
		if got, want := s.CountAllocated(), uint32(len(allocated)-len(freed)); got != want {
			t.Fatalf("n=%d: CountAllocated after Collect = %d, want %d", n, got, want)
		}
		if got, bad := s.Collect(); got != 0 || bad.N != 0 {
			t.Fatalf("n=%d: second Collect = %d, want 0", n, got)
		}
		// A collected slot can be freed again once reallocated.
		for i := range freed {
			*s.Slot(i) = SlotAllocated
			if !s.MarkFreed(i) {
				t.Fatalf("n=%d: MarkFreed(%d) after Collect and reallocation = false", n, i)
			}
			if got, bad := s.Collect(); got != 1 || bad.N != 0 {
				t.Fatalf("n=%d: Collect of one = %d", n, got)
			}
			break
		}
	}
}

// A freed bit on a slot that is not allocated (a double free that raced)
// is dropped and reported, not collected, and Collect does not panic: its
// callers hold a class lock or are pinned, and panic once they are not.
func TestCollectReportsFreeOfUnallocatedSlot(t *testing.T) {
	tb := newTestTable(t, 16)
	for _, c := range []struct {
		name  string
		n     uint32
		slot  uintptr
		state uint8
	}{
		{"free slot", 100, 5, SlotFree},
		{"free slot in the last word", 100, 99, SlotFree},
		{"padding slot", 100, 100, SlotPad},
		{"last padding slot", 100, 127, SlotPad},
		{"retired slot", 100, 7, SlotRetired},
		{"odd state", 64, 63, 7},
	} {
		s := mustNew(t, tb, c.n)
		s.Base = testBase + 3*pageSize
		s.NPages = 2
		s.Class = 9
		s.ElemSize = 48
		*s.Slot(c.slot) = c.state
		*s.Slot(0) = SlotAllocated
		s.MarkFreed(0)
		s.NotePending()
		s.MarkFreed(c.slot)
		s.NotePending()
		n, bad := s.Collect()
		if n != 1 || bad.N != 1 || bad.slot != c.slot || bad.state != c.state {
			t.Fatalf("%s: Collect = %d, %+v; want 1, slot %d state %d", c.name, n, bad, c.slot, c.state)
		}
		if *s.Slot(0) != SlotFree || *s.Slot(c.slot) != c.state {
			t.Fatalf("%s: slot 0 state %d, slot %d state %d after Collect", c.name, *s.Slot(0), c.slot, *s.Slot(c.slot))
		}
		if s.HasPending() || s.Pending() != 0 {
			t.Fatalf("%s: pending %d after Collect", c.name, s.Pending())
		}
		msg := bad.Message()
		for _, want := range []string{
			"span " + strconv.Itoa(int(s.ID())) + " ",
			"slot " + strconv.Itoa(int(c.slot)),
			"state " + strconv.Itoa(int(c.state)),
			"class 9",
			fmt.Sprintf("%#x", s.Base+c.slot*48),
		} {
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: message %q lacks %q", c.name, msg, want)
			}
		}
	}
}

func TestFreedBitIndependentOfNeighbours(t *testing.T) {
	// Every slot's freed bit is its own: setting one sets no other, in
	// this span or in the records next to it.
	tb := newTestTable(t, 16)
	prev := mustNew(t, tb, maxSlots)
	s := mustNew(t, tb, maxSlots)
	next := mustNew(t, tb, maxSlots)
	for i := uintptr(0); i < maxSlots; i++ {
		if !s.MarkFreed(i) {
			t.Fatalf("MarkFreed(%d) = false on a fresh span", i)
		}
		for j := uintptr(0); j < maxSlots; j += 1 + j/7 {
			if s.FreedBit(j) != (j <= i) {
				t.Fatalf("after marking 0..%d: FreedBit(%d) = %v", i, j, s.FreedBit(j))
			}
		}
	}
	if prev.HasPending() || next.HasPending() {
		t.Fatal("freed bits of one span leaked into a neighbouring record")
	}
	for i, b := range slotStates(prev) {
		if b != SlotFree {
			t.Fatalf("neighbour's slot %d changed to %d", i, b)
		}
	}
	if got := bits.OnesCount64(s.freed[freedWords-1].Load()); got != 64 {
		t.Fatalf("last freed word has %d bits", got)
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{StateDead: "dead", StateInit: "init", StateInUse: "in-use", StateLarge: "large", 9: "state(9)"} {
		if got := st.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint32(st), got, want)
		}
	}
}

func TestDescribeAndEnd(t *testing.T) {
	tb := newTestTable(t, 16)
	s := mustNew(t, tb, 10)
	s.Base = testBase + 2*pageSize
	s.NPages = 3
	s.Class = 44
	s.SetOwner(17)
	if got, want := s.End(), testBase+5*pageSize; got != want {
		t.Errorf("End = %#x, want %#x", got, want)
	}
	d := s.Describe()
	for _, sub := range []string{"span " + strconv.Itoa(int(s.ID())), "0x10000004000", "0x1000000a000", "class 44", "state init", "owner 17"} {
		if !strings.Contains(d, sub) {
			t.Errorf("Describe() = %q, missing %q", d, sub)
		}
	}
}

// Everything a free reads in the header (pending included, see Span) is
// on its first line, and the freed bitmap, which remote frees write, is on
// lines of its own.
func TestSpanLayoutSeparatesWrittenFields(t *testing.T) {
	var s Span
	line := func(off uintptr) uintptr { return off / 64 }
	read := []uintptr{unsafe.Offsetof(s.state), unsafe.Offsetof(s.owner), unsafe.Offsetof(s.gen),
		unsafe.Offsetof(s.pending), unsafe.Offsetof(s.Base), unsafe.Offsetof(s.ElemSize),
		unsafe.Offsetof(s.NElems), unsafe.Offsetof(s.Class), unsafe.Offsetof(s.needZero)}
	for _, r := range read {
		if line(r) != 0 {
			t.Fatalf("field at %d, which every free reads, is on line %d, not the first", r, line(r))
		}
	}
	written := []uintptr{unsafe.Offsetof(s.freed), unsafe.Offsetof(s.freed) + unsafe.Sizeof(s.freed) - 1}
	for _, w := range written {
		if line(w) == 0 {
			t.Fatalf("freed bitmap byte at %d shares the first line", w)
		}
	}
	if headerSize%64 != 0 {
		t.Fatalf("header size %d not a whole number of lines", headerSize)
	}
}
