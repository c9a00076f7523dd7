package arena

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/offheap/offheap/mmap"
)

const (
	// closeRaceBudget is the time each configuration of
	// TestCloseConcurrent may spend on new rounds (a round in progress
	// finishes): four configurations stay within about 3 s in all.
	closeRaceBudget = 600 * time.Millisecond
	// closeRaceMinRounds is run whatever the budget, so a slow machine
	// (or the race detector) still closes a heap under traffic a few
	// times.
	closeRaceMinRounds = 8
	// closeRaceMaxDelay bounds how long a round's traffic runs before
	// Close: long enough for every worker to be in the middle of its loop,
	// short enough for many rounds.
	closeRaceMaxDelay = 3 * time.Millisecond
)

// closeRaceCheck records a call's error: nil and ErrClosed are what a call
// racing with Close may return; after Close has returned, only ErrClosed.
type closeRaceCheck struct {
	mu      sync.Mutex
	bad     []string
	calls   atomic.Int64
	closedN atomic.Int64 // calls that returned ErrClosed
}

func (c *closeRaceCheck) note(what string, err error, afterClose bool) {
	c.calls.Add(1)
	if errors.Is(err, ErrClosed) {
		c.closedN.Add(1)
		return
	}
	if err == nil && !afterClose {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) < 20 {
		c.bad = append(c.bad, fmt.Sprintf("%s (after Close returned: %v): %v", what, afterClose, err))
	}
}

// Many goroutines use a heap through every entry point while another closes
// it at a random moment: every call must return nil or ErrClosed, none may
// fault (which would kill the test process), and once Close has returned
// every call returns ErrClosed. Workers never touch the memory they get:
// that would be their own use after Close; everything touching heap memory
// and metadata here is the package's. Before Close waited for calls in
// flight, this faulted within a few rounds.
func TestCloseConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		// moreProcs raises GOMAXPROCS past the heap's per-P caches for
		// the round, so goroutines also grow the table of them.
		moreProcs bool
	}{
		{"default", Config{}, false},
		{"debug", Config{Debug: true}, false},
		{"guard1", Config{GuardSampleRate: 1, ProfileRate: 4096}, false},
		{"moreP", Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rounds := 0
			for rounds < closeRaceMinRounds || time.Since(start) < closeRaceBudget {
				closeRaceRound(t, tc.cfg, tc.moreProcs, uint64(rounds))
				rounds++
				if t.Failed() {
					break
				}
			}
			t.Logf("%d rounds in %v", rounds, time.Since(start).Round(time.Millisecond))
		})
	}
}

func closeRaceRound(t *testing.T, cfg Config, moreProcs bool, seed uint64) {
	cfg.Reserve = 256 << 20
	cfg.ScavengeDelay = 100 * time.Microsecond // the worker runs too
	cfg.RetainBytes = 1
	h, err := NewHeap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if moreProcs {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2*len(h.perPCaches()) + 1))
	}
	var (
		chk       closeRaceCheck
		closeDone atomic.Bool
		// verifyMu keeps Verify, which reads caches' private state, from
		// running while workers use their caches; Close is not under it.
		verifyMu sync.RWMutex
		wg       sync.WaitGroup
		started  sync.WaitGroup
	)
	workers := max(4, runtime.GOMAXPROCS(0))
	// run calls op until it has made one call that began after Close had
	// returned.
	run := func(name string, op func(r *rand.Rand, after bool)) {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(len(name))))
			first := true
			for {
				after := closeDone.Load()
				op(r, after)
				if first {
					started.Done()
					first = false
				}
				if after {
					return
				}
			}
		}()
	}
	sizes := []int{0, 8, 24, 100, 512, 4000, 32768, 40000, 200000}
	for w := 0; w < workers; w++ {
		// Heap.Alloc/Free and typed helpers through the heap.
		run(fmt.Sprintf("heap%d", w), func(r *rand.Rand, after bool) {
			verifyMu.RLock()
			defer verifyMu.RUnlock()
			var live []unsafe.Pointer
			for range 16 {
				p, err := h.Alloc(sizes[r.IntN(len(sizes))])
				chk.note("Heap.Alloc", err, after)
				if err == nil {
					live = append(live, p)
				}
			}
			x, err := New[[4]uint64](h)
			chk.note("New", err, after)
			if err == nil {
				live = append(live, unsafe.Pointer(x))
			}
			b, err := CloneBytes(h, []byte("a short string to copy"))
			chk.note("CloneBytes", err, after)
			if err == nil {
				live = append(live, unsafe.Pointer(unsafe.SliceData(b)))
			}
			// The per-object lookups (per-P sections) and a Realloc,
			// moving or not, of the first object.
			if len(live) > 0 {
				_, err := h.UsableSize(live[0])
				chk.note("UsableSize", err, after)
				h.DefragHint(live[0])
				_, err = Bytes(h, HandleOf(live[0]), 8)
				chk.note("Bytes", err, after)
				q, err := h.Realloc(live[0], sizes[r.IntN(len(sizes))])
				chk.note("Realloc", err, after)
				if err == nil {
					live[0] = q
				}
			}
			for _, p := range live {
				chk.note("Heap.Free", h.Free(p), after)
			}
		})
		// An explicit Cache, closed at the end of each batch; objects are
		// freed through the cache, the heap, or another cache.
		run(fmt.Sprintf("cache%d", w), func(r *rand.Rand, after bool) {
			verifyMu.RLock()
			defer verifyMu.RUnlock()
			c := h.NewCache()
			var live []unsafe.Pointer
			for range 32 {
				p, err := c.Alloc(sizes[r.IntN(len(sizes))])
				chk.note("Cache.Alloc", err, after)
				if err == nil {
					live = append(live, p)
				}
			}
			for i, p := range live {
				if i%3 == 0 {
					chk.note("Heap.Free", h.Free(p), after)
				} else {
					chk.note("Cache.Free", c.Free(p), after)
				}
			}
			p, err := MakeSlice[uint32](c, 10, 100)
			chk.note("MakeSlice", err, after)
			if err == nil {
				chk.note("FreeSlice", FreeSlice(c, p), after)
			}
			chk.note("Cache.Close", c.Close(), after)
		})
	}
	// Regions: concurrent Allocs, then Free.
	run("region", func(_ *rand.Rand, after bool) {
		verifyMu.RLock()
		defer verifyMu.RUnlock()
		reg := h.NewRegion()
		var rwg sync.WaitGroup
		for range 2 {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for range 64 {
					_, err := reg.Alloc([]int{16, 1000, 9000, 20000}[rand.IntN(4)])
					chk.note("Region.Alloc", err, after)
				}
			}()
		}
		rwg.Wait()
		chk.note("Region.Free", reg.Free(), after)
	})
	// Readers: Stats, Scavenge, PageMap, Explain, Verify.
	run("readers", func(r *rand.Rand, after bool) {
		verifyMu.RLock() // Heap.Scavenge takes pages out of the allocator
		defer verifyMu.RUnlock()
		st := h.Stats()
		_ = h.PageMap(nil)
		if n := h.Scavenge(); after && n != 0 {
			chk.note("Scavenge", fmt.Errorf("released %d bytes after Close", n), after)
		}
		if _, ok := h.Explain(h.base + uintptr(r.IntN(int(st.HeapSys)+1))); after && ok {
			chk.note("Explain", errors.New("explained an address after Close"), after)
		}
		_ = h.ProfileRecords()
	})
	run("verify", func(r *rand.Rand, after bool) {
		verifyMu.Lock()
		err := h.Verify()
		verifyMu.Unlock()
		chk.note("Verify", err, after)
		time.Sleep(200 * time.Microsecond) // let the workers run
	})

	started.Wait() // every worker is in its loop
	time.Sleep(time.Duration(rand.Int64N(int64(closeRaceMaxDelay))))
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closeDone.Store(true)
	wg.Wait()

	// Everything after Close says ErrClosed.
	if err := h.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if h.slowInFlight() {
		t.Errorf("sections still counted in flight after the round (%d outside the per-P shards)", h.inflight.Load())
	}
	for _, msg := range chk.bad {
		t.Error(msg)
	}
	if chk.closedN.Load() == 0 {
		t.Errorf("no call returned ErrClosed in %d calls", chk.calls.Load())
	}
}

// After Close, every entry point returns ErrClosed (or its empty answer)
// without touching the unmapped memory.
func TestCallsAfterClose(t *testing.T) {
	h := newTestHeap(t, quiet(Config{Reserve: 64 << 20}))
	c := h.NewCache()
	p, err := c.Alloc(64) // leaves a window of free slots in c
	if err != nil {
		t.Fatal(err)
	}
	q, err := h.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	reg := h.NewRegion()
	if _, err := reg.Alloc(64); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Heap.Alloc small":  second(h.Alloc(64)),
		"Heap.Alloc large":  second(h.Alloc(1 << 20)),
		"Heap.Free":         h.Free(q),
		"Cache.Alloc":       second(c.Alloc(64)),
		"Cache.Alloc large": second(c.Alloc(1 << 20)),
		"Cache.Free":        c.Free(p),
		"Cache.Close":       c.Close(),
		"Region.Alloc":      second(reg.Alloc(64)),
		"Region.Free":       reg.Free(),
		"Verify":            h.Verify(),
		"New":               second(New[int](h)),
		"CloneBytes":        second(CloneBytes(h, []byte("x"))),
		"Close":             h.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if n := h.Scavenge(); n != 0 {
		t.Errorf("Scavenge after Close released %d bytes", n)
	}
	if m := h.PageMap(nil); len(m) != 0 {
		t.Errorf("PageMap after Close has %d pages", len(m))
	}
	if _, ok := h.Explain(uintptr(q)); ok {
		t.Error("Explain after Close found an allocation")
	}
}

func second[T any](_ T, err error) error { return err }

// mappedAt reports whether any line of /proc/self/maps overlaps
// [base, base+size).
func mappedAt(t *testing.T, base, size uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rng, _, _ := strings.Cut(line, " ")
		lo, hi, _ := strings.Cut(rng, "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad maps line %q", line)
		}
		if uintptr(l) < base+size && uintptr(h) > base {
			return true
		}
	}
	return false
}

// A Close whose munmap fails still releases the other parts, says which
// failed, and leaves the heap closed and closable: the retry unmaps what
// remains and succeeds, and only a Close after that returns ErrClosed.
// Close unmaps the reservation (munmap 1), the page allocator's metadata
// (2), then the span table's page map (3) and records (4), all through
// Config.Kernel. Before the fix the second Close returned ErrClosed and
// the failed part stayed mapped for good.
func TestCloseRetryAfterFailedUnmap(t *testing.T) {
	for _, c := range []struct {
		n    int
		part string
	}{{1, "reservation"}, {2, "page allocator"}, {3, "span table"}, {4, "span table"}} {
		t.Run(fmt.Sprint(c.n), func(t *testing.T) {
			fi := mmap.NewFaultInjector(mmap.Real())
			h, err := NewHeap(quiet(Config{Reserve: 64 << 20, Kernel: fi}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Alloc(100); err != nil {
				t.Fatal(err)
			}
			base, size := h.base, h.limit-h.base
			before := h.Stats()
			fi.FailNth(mmap.OpRelease, c.n)
			munmaps := fi.Calls(mmap.OpRelease)

			err = h.Close()
			if !errors.Is(err, mmap.ErrInjected) || !strings.Contains(err.Error(), c.part) {
				t.Errorf("Close with munmap %d failing = %v, want an error naming the %s and wrapping mmap.ErrInjected",
					c.n, err, c.part)
			}
			if got := fi.Calls(mmap.OpRelease) - munmaps; got != 4 {
				t.Errorf("failed Close tried %d munmaps, want all 4", got)
			}
			if got, want := mappedAt(t, base, size), c.n == 1; got != want {
				t.Errorf("after the failed Close the reservation mapped = %v, want %v", got, want)
			}
			if _, err := h.Alloc(100); !errors.Is(err, ErrClosed) {
				t.Errorf("Alloc after a failed Close = %v, want ErrClosed", err)
			}
			if st := h.Stats(); st.HeapObjects != before.HeapObjects || st.HeapSys != before.HeapSys {
				t.Errorf("Stats after a failed Close: %s, want the figures at Close: %s", statsLine(st), statsLine(before))
			}

			if err := h.Close(); err != nil {
				t.Fatalf("Close retry = %v, want nil", err)
			}
			if got := fi.Calls(mmap.OpRelease) - munmaps; got != 5 {
				t.Errorf("failed Close and retry made %d munmaps, want 5 (the retry only the failed one)", got)
			}
			if mappedAt(t, base, size) {
				t.Errorf("reservation [%#x, +%#x) still mapped after the retry", base, size)
			}
			if err := h.Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("Close after a successful retry = %v, want ErrClosed", err)
			}
			if got := fi.Calls(mmap.OpRelease) - munmaps; got != 5 {
				t.Errorf("Close after success reached the kernel: %d munmaps", got)
			}
		})
	}
}
