package pages

import (
	"errors"
	"sync"
	"testing"

	"github.com/offheap/offheap/mmap"
)

// The allocator's metadata goes through the Kernel it was given. A
// metadata commit the kernel refuses fails CommitGrow with the kernel's
// error and changes nothing: Grow of the chunks still finds their
// metadata missing. CommitGrow of the same chunks then succeeds, and so
// does Grow.
func TestGrowMetadataCommitFailure(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	a, err := New(testBase, 64*ChunkBytes, fi)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if fi.Calls(mmap.OpReserve) != 1 || fi.Calls(mmap.OpCommit) == 0 {
		t.Fatalf("New made %d reserves, %d commits through the kernel; want 1 and some",
			fi.Calls(mmap.OpReserve), fi.Calls(mmap.OpCommit))
	}
	// Chunk 40 is far from the eagerly committed metadata, so growing it
	// commits more.
	base := testBase + 40*ChunkBytes
	before := a.Stats()
	_, metaBefore := a.MetadataBytes()
	commits := fi.Calls(mmap.OpCommit)
	fi.FailNth(mmap.OpCommit, 1)
	err = a.CommitGrow(base, ChunkPages)
	if fi.Calls(mmap.OpCommit) == commits {
		t.Fatal("CommitGrow committed no metadata: the test does not test")
	}
	var oe *mmap.OpError
	if !errors.As(err, &oe) || !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("CommitGrow with a failing metadata commit: %v, want an *mmap.OpError wrapping ErrInjected", err)
	}
	if _, m := a.MetadataBytes(); m != metaBefore {
		t.Fatalf("failed CommitGrow counts %d committed metadata bytes, had %d", m, metaBefore)
	}
	if err := a.Grow(base, ChunkPages); !errors.Is(err, errNotCommitted) {
		t.Fatalf("Grow after a failed CommitGrow: %v, want errNotCommitted", err)
	}
	if after := a.Stats(); after != before || a.State(base) != NotGrown {
		t.Fatalf("failed CommitGrow and Grow changed the allocator: %+v -> %+v, state %v", before, after, a.State(base))
	}
	if err := grow(a, base, ChunkPages); err != nil {
		t.Fatalf("growing after the failure: %v", err)
	}
	if got, _, err := a.Alloc(ChunkPages); err != nil || got != base {
		t.Fatalf("Alloc after Grow: %#x, %v; want %#x", got, err, base)
	}
}

// Grow makes no system call: it only checks that CommitGrow committed the
// chunks' metadata, and refuses (changing nothing) when it did not. A
// CommitGrow repeated for committed chunks makes no call either.
func TestGrowMakesNoSyscall(t *testing.T) {
	fi := mmap.NewFaultInjector(nil)
	a, err := New(testBase, 64*ChunkBytes, fi)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := testBase + 40*ChunkBytes
	before := a.Stats()
	commits := fi.Calls(mmap.OpCommit)
	if err := a.Grow(base, 2*ChunkPages); !errors.Is(err, errNotCommitted) {
		t.Fatalf("Grow without CommitGrow: %v, want errNotCommitted", err)
	}
	if a.Stats() != before || a.State(base) != NotGrown || fi.Calls(mmap.OpCommit) != commits {
		t.Fatalf("refused Grow changed the allocator or committed: %+v, state %v, %d commits",
			a.Stats(), a.State(base), fi.Calls(mmap.OpCommit)-commits)
	}
	if err := a.CommitGrow(base, 2*ChunkPages); err != nil {
		t.Fatal(err)
	}
	if fi.Calls(mmap.OpCommit) == commits {
		t.Fatal("CommitGrow committed nothing: the test does not test")
	}
	commits = fi.Calls(mmap.OpCommit)
	if err := a.CommitGrow(base, 2*ChunkPages); err != nil {
		t.Fatal(err)
	}
	if err := a.Grow(base, 2*ChunkPages); err != nil {
		t.Fatal(err)
	}
	if got := fi.Calls(mmap.OpCommit) - commits; got != 0 {
		t.Fatalf("a second CommitGrow and Grow made %d commits, want none", got)
	}
	if st := a.Stats(); st.Grown != 2*ChunkPages || a.State(base) != FreeScavenged {
		t.Fatalf("after Grow: %+v, state %v", st, a.State(base))
	}
	if err := a.CommitGrow(base+ChunkBytes/2, ChunkPages); !errors.Is(err, errInvalidRange) {
		t.Fatalf("CommitGrow of a misaligned range: %v, want errInvalidRange", err)
	}
}

// CommitGrow runs without the heap lock, concurrently with itself and with
// the methods called under the lock (here a mutex standing in for it):
// the race detector checks that they share nothing unguarded. Every chunk
// committed by its grower is then grown under the lock.
func TestCommitGrowConcurrent(t *testing.T) {
	const nchunks = 512 // 2 GiB: chunk bitmaps over 16 OS pages
	a, err := New(testBase, nchunks*ChunkBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var heapLock sync.Mutex
	var wg sync.WaitGroup
	const growers = 4
	errs := make(chan error, growers)
	for g := range growers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := uint(g); c < nchunks; c += growers {
				base := testBase + uintptr(c)*ChunkBytes
				if err := a.CommitGrow(base, ChunkPages); err != nil {
					errs <- err
					return
				}
				heapLock.Lock()
				err := a.Grow(base, ChunkPages)
				if err == nil {
					_, _, err = a.Alloc(1)
				}
				_ = a.Stats()
				_, _ = a.MetadataBytes()
				heapLock.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Grown != nchunks*ChunkPages || st.Free != nchunks*(ChunkPages-1) {
		t.Fatalf("after growing every chunk and one page from each: %+v", st)
	}
}
