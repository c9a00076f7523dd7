package spans

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// collectEvery is how often the owner collects without running out of
// slots: often, so collects overlap remote frees.
const collectEvery = 3

// findFree returns the lowest free slot, as an owner's allocator would.
func findFree(s *Span) (uintptr, bool) {
	for w := uintptr(0); w < uintptr(s.NSlots())/64; w++ {
		if m := s.FreeMask(w); m != 0 {
			return w*64 + uintptr(bits.TrailingZeros64(m)), true
		}
	}
	return 0, false
}

// TestRemoteFreesWhileOwnerAllocates runs the slot protocol of doc.go: one
// owner allocates slots (writing their state bytes) and hands each index to
// one of three remote goroutines, which read that slot's byte and set its
// freed bit; the owner collects freed bits when it runs out of slots and
// now and then besides. Every allocation must come back exactly once.
//
// Under -race this exercises the protocol but cannot prove it race free:
// the race detector ignores memory outside the Go heap (slot bytes and the
// freed bitmap are in the Table's mapping), and atomics on such memory do
// not create happens-before edges for it. The checks that catch a broken
// protocol are the ones here: every remote sees its slot allocated, no
// slot is freed twice, and the counts balance.
func TestRemoteFreesWhileOwnerAllocates(t *testing.T) {
	for _, c := range []struct {
		nelems uint32
		allocs int
	}{
		{1, 2000},    // one slot: every allocation waits for a collect
		{64, 300000}, // one freed word: every collect contends with every free
		{100, 30000}, // padding in the last word
		{maxSlots, 60000},
	} {
		tb := newTestTable(t, 16)
		s := mustNew(t, tb, c.nelems)
		const remotes = 3
		ch := make(chan uintptr, 64)
		var wg sync.WaitGroup
		var notAllocated, doubleFree, outOfRange atomic.Int64
		freedBy := make([]int, remotes)
		for r := range remotes {
			wg.Go(func() {
				for i := range ch {
					if i >= uintptr(s.NElems) {
						outOfRange.Add(1)
					}
					if *s.Slot(i) != SlotAllocated {
						notAllocated.Add(1)
					}
					if !s.MarkFreed(i) {
						doubleFree.Add(1)
					}
					freedBy[r]++
				}
			})
		}

		allocated, collected := 0, 0
		live := make([]bool, s.NSlots()) // owner's own record of what it handed out
		collect := func() int {
			got, bad := s.Collect()
			if bad.N != 0 {
				t.Errorf("Collect: %s", bad.Message())
			}
			n := int(got)
			collected += n
			if n > 0 {
				// Collect freed n of the slots the owner handed out.
				was := 0
				for j := range live {
					if live[j] && *s.Slot(uintptr(j)) == SlotFree {
						live[j] = false
						was++
					}
				}
				if was != n {
					t.Fatalf("nelems %d: Collect returned %d but freed %d handed-out slots", c.nelems, n, was)
				}
			}
			return n
		}
		for allocated < c.allocs {
			i, ok := findFree(s)
			if !ok {
				if collect() == 0 {
					runtime.Gosched()
				}
				continue
			}
			if live[i] {
				t.Fatalf("nelems %d: FreeMask offered slot %d, which is still allocated", c.nelems, i)
			}
			live[i] = true
			*s.Slot(i) = SlotAllocated
			allocated++
			ch <- i
			if allocated%collectEvery == 0 {
				collect()
			}
		}
		close(ch)
		wg.Wait()
		collect()

		freed := 0
		for _, n := range freedBy {
			freed += n
		}
		if n := notAllocated.Load(); n != 0 {
			t.Errorf("nelems %d: %d remote frees found their slot not allocated", c.nelems, n)
		}
		if n := doubleFree.Load(); n != 0 {
			t.Errorf("nelems %d: %d remote frees found the freed bit already set", c.nelems, n)
		}
		if n := outOfRange.Load(); n != 0 {
			t.Errorf("nelems %d: %d slots handed out past NElems", c.nelems, n)
		}
		if freed != allocated || collected != allocated {
			t.Errorf("nelems %d: allocated %d, remotely freed %d, collected %d", c.nelems, allocated, freed, collected)
		}
		if s.HasPending() {
			t.Errorf("nelems %d: frees still pending at the end", c.nelems)
		}
		if got := s.CountAllocated(); got != 0 {
			t.Errorf("nelems %d: CountAllocated at the end = %d", c.nelems, got)
		}
		for i, b := range slotStates(s) {
			want := uint8(SlotFree)
			if uint32(i) >= c.nelems {
				want = SlotPad
			}
			if b != want {
				t.Errorf("nelems %d: slot %d ends in state %d, want %d", c.nelems, i, b, want)
				break
			}
		}
	}
}

// TestConcurrentNewRelease takes and returns records from several
// goroutines; no record may be handed to two at once.
func TestConcurrentNewRelease(t *testing.T) {
	tb := newTestTable(t, 256)
	const workers, rounds = 4, 2000
	var owners sync.Map // ID → worker holding it
	var clash atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var held []*Span
			for k := range rounds {
				n := uint32(1 + (k*37+w*11)%maxSlots)
				s, err := tb.New(n)
				if err != nil {
					t.Errorf("worker %d: New(%d): %v", w, n, err)
					return
				}
				if prev, loaded := owners.LoadOrStore(s.ID(), w); loaded {
					clash.Add(1)
					t.Errorf("record %d handed to worker %d while worker %v holds it", s.ID(), w, prev)
				}
				// Use the record as an owner would.
				*s.Slot(uintptr(n - 1)) = SlotAllocated
				s.SetOwner(uint32(w + 1))
				held = append(held, s)
				if len(held) > 8 || k%3 == 0 {
					r := held[0]
					held = held[1:]
					if r.Owner() != uint32(w+1) || *r.Slot(uintptr(r.NElems - 1)) != SlotAllocated {
						t.Errorf("record %d changed while worker %d held it", r.ID(), w)
					}
					owners.Delete(r.ID())
					tb.Release(r)
				}
			}
			for _, r := range held {
				owners.Delete(r.ID())
				tb.Release(r)
			}
		})
	}
	wg.Wait()
	if clash.Load() == 0 && tb.inUseRecords() != 0 {
		t.Errorf("inUseRecords = %d after every record was released", tb.inUseRecords())
	}
}
