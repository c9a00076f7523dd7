package pages

import (
	"errors"
	"testing"

	"github.com/offheap/offheap/mmap"
)

// The allocator's metadata goes through the Kernel it was given. A
// metadata commit the kernel refuses fails Grow with the kernel's error
// and changes nothing; Grow of the same chunks then succeeds.
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
	commits := fi.Calls(mmap.OpCommit)
	fi.FailNth(mmap.OpCommit, 1)
	err = a.Grow(base, ChunkPages)
	if fi.Calls(mmap.OpCommit) == commits {
		t.Fatal("Grow committed no metadata: the test does not test")
	}
	var oe *mmap.OpError
	if !errors.As(err, &oe) || !errors.Is(err, mmap.ErrInjected) {
		t.Fatalf("Grow with a failing metadata commit: %v, want an *mmap.OpError wrapping ErrInjected", err)
	}
	if after := a.Stats(); after != before || a.State(base) != NotGrown {
		t.Fatalf("failed Grow changed the allocator: %+v -> %+v, state %v", before, after, a.State(base))
	}
	if err := a.Grow(base, ChunkPages); err != nil {
		t.Fatalf("Grow after the failure: %v", err)
	}
	if got, _, err := a.Alloc(ChunkPages); err != nil || got != base {
		t.Fatalf("Alloc after Grow: %#x, %v; want %#x", got, err, base)
	}
}
