package mmap

import (
	"errors"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFailNthCounting(t *testing.T) {
	ps := PageSize()
	inj := NewFaultInjector(nil)
	m := reserve(t, 8*ps, inj)
	inj.FailNth(OpCommit, 3)
	inj.FailNth(OpCommit, 5)
	inj.FailNth(OpHugePage, 1) // must not affect commits
	var got []bool
	for i := 1; i <= 7; i++ {
		err := m.Commit(m.Base(), ps)
		if err != nil && !errors.Is(err, ErrInjected) {
			t.Fatalf("commit %d: %v", i, err)
		}
		got = append(got, err != nil)
	}
	want := []bool{false, false, true, false, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("commit %d failed=%v, want %v", i+1, got[i], want[i])
		}
	}
	if n := inj.Calls(OpCommit); n != 7 {
		t.Errorf("Calls(OpCommit) = %d, want 7", n)
	}
	if n := inj.Calls(OpReserve); n != 1 {
		t.Errorf("Calls(OpReserve) = %d, want 1", n)
	}
	// n counts from now, not from the start.
	inj.FailNth(OpCommit, 1)
	if err := m.Commit(m.Base(), ps); !errors.Is(err, ErrInjected) {
		t.Errorf("FailNth(op, 1) after 7 calls: next commit = %v, want ErrInjected", err)
	}
	if err := m.HugePage(m.Base(), ps); !errors.Is(err, ErrInjected) {
		t.Errorf("pending hugepage fault not delivered: %v", err)
	}
	if err := m.HugePage(m.Base(), ps); err != nil {
		t.Errorf("second hugepage: %v", err)
	}
}

func TestFailNthBadArgsPanic(t *testing.T) {
	inj := NewFaultInjector(nil)
	for _, c := range []struct {
		op Op
		n  int
	}{{OpCommit, 0}, {Op(-1), 1}, {Op(numOps), 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FailNth(%v, %d) did not panic", c.op, c.n)
				}
			}()
			inj.FailNth(c.op, c.n)
		}()
	}
}

// TestInjectedFaultEachOp fails the next call of each op once, checks the
// error names op and range, and that the Mapping works afterwards.
func TestInjectedFaultEachOp(t *testing.T) {
	ps := PageSize()
	inj := NewFaultInjector(nil)

	inj.FailNth(OpReserve, 1)
	_, err := Reserve(4*ps, inj)
	var oe *OpError
	if !errors.Is(err, ErrInjected) || !errors.As(err, &oe) || oe.Op != OpReserve {
		t.Fatalf("Reserve: %v, want OpError{reserve} wrapping ErrInjected", err)
	}

	m := reserve(t, 4*ps, inj)
	addr := m.Base() + ps
	ops := []struct {
		op Op
		f  func() error
	}{
		{OpCommit, func() error { return m.Commit(addr, ps) }},
		{OpDecommit, func() error { return m.Decommit(addr, ps, DecommitDontNeed) }},
		{OpDecommit, func() error { return m.Decommit(addr, ps, DecommitFree) }},
		{OpHugePage, func() error { return m.HugePage(addr, ps) }},
		{OpName, func() error { return m.SetName("x") }},
		{OpRelease, func() error { return m.Release() }},
	}
	for _, o := range ops {
		inj.FailNth(o.op, 1)
		err := o.f()
		if !errors.Is(err, ErrInjected) || !errors.As(err, &oe) || oe.Op != o.op {
			t.Errorf("%s: %v, want OpError{%s} wrapping ErrInjected", o.op, err, o.op)
			continue
		}
		if o.op != OpName && o.op != OpRelease && (oe.Addr != addr || oe.Len != ps) {
			t.Errorf("%s: error range [%#x,+%d), want [%#x,+%d)", o.op, oe.Addr, oe.Len, addr, ps)
		}
		// The same call succeeds next time, and the mapping still works.
		if err := o.f(); err != nil && o.op != OpRelease {
			t.Errorf("%s retry: %v", o.op, err)
		}
		if o.op == OpRelease {
			break
		}
		if err := m.Commit(addr, ps); err != nil {
			t.Fatalf("Commit after injected %s fault: %v", o.op, err)
		}
		touch(addr, ps, 9)
		if load(addr) != 9 {
			t.Fatalf("mapping unusable after injected %s fault", o.op)
		}
	}
}

func TestInjectedReleaseKeepsMapping(t *testing.T) {
	ps := PageSize()
	inj := NewFaultInjector(nil)
	m := reserve(t, 2*ps, inj)
	if err := m.Commit(m.Base(), ps); err != nil {
		t.Fatal(err)
	}
	touch(m.Base(), ps, 5)
	inj.FailNth(OpRelease, 1)
	if err := m.Release(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Release: %v", err)
	}
	if load(m.Base()) != 5 {
		t.Fatal("contents lost after failed Release")
	}
	if err := m.Commit(m.Base()+ps, ps); err != nil {
		t.Fatalf("Commit after failed Release: %v", err)
	}
	if err := m.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

// TestStrictDecommitHalfDone: madvise succeeds, mprotect fails. The error
// is reported and the range is released but still accessible.
func TestStrictDecommitHalfDone(t *testing.T) {
	ps := PageSize()
	inj := NewFaultInjector(nil)
	m := reserve(t, 4*ps, inj)
	if err := m.Commit(m.Base(), m.Size()); err != nil {
		t.Fatal(err)
	}
	touch(m.Base(), m.Size(), 1)
	inj.FailNth(OpDecommit, 2) // the mprotect after the madvise
	err := m.Decommit(m.Base(), m.Size(), DecommitStrict)
	var oe *OpError
	if !errors.Is(err, ErrInjected) || !errors.As(err, &oe) || oe.Op != OpDecommit {
		t.Fatalf("half-done strict decommit: %v, want OpError{decommit} wrapping ErrInjected", err)
	}
	if n := inj.Calls(OpDecommit); n != 2 {
		t.Errorf("Calls(OpDecommit) = %d, want 2 (madvise then mprotect)", n)
	}
	if c := countResident(t, m.Base(), m.Size()); c != 0 {
		t.Errorf("%d pages resident; the madvise half should have run", c)
	}
	if _, faulted := faultOn(t, m.Base()); faulted {
		t.Error("range faults, but its mprotect was the step that failed")
	}
	if load(m.Base()) != 0 {
		t.Error("range not zero after its DONTNEED half")
	}
	// A retry completes it.
	if err := m.Decommit(m.Base(), m.Size(), DecommitStrict); err != nil {
		t.Fatal(err)
	}
	if _, faulted := faultOn(t, m.Base()); !faulted {
		t.Error("retried strict decommit does not fault")
	}
}

// fakeKernel returns fixed errors, to drive paths the real kernel here
// cannot (an old kernel's EINVAL for MADV_FREE or for naming).
type fakeKernel struct {
	Kernel
	madvise func(advice int) error
	name    error
}

func (f fakeKernel) Madvise(addr, n uintptr, advice int) error {
	if err := f.madvise(advice); err != nil {
		return err
	}
	return f.Kernel.Madvise(addr, n, advice)
}
func (f fakeKernel) SetVMAName(addr, n uintptr, name string) error { return f.name }

func TestOldKernelFallbacks(t *testing.T) {
	ps := PageSize()
	var advices []int
	fk := fakeKernel{Kernel: Real(), name: unix.EINVAL, madvise: func(a int) error {
		advices = append(advices, a)
		if a == unix.MADV_FREE {
			return unix.EINVAL
		}
		return nil
	}}
	m := reserve(t, 2*ps, fk)
	if err := m.SetName("heap"); err != nil {
		t.Errorf("SetName with EINVAL kernel = %v, want nil", err)
	}
	if err := m.Commit(m.Base(), ps); err != nil {
		t.Fatal(err)
	}
	touch(m.Base(), ps, 1)
	if err := m.Decommit(m.Base(), ps, DecommitFree); err != nil {
		t.Fatalf("DecommitFree without MADV_FREE: %v", err)
	}
	if len(advices) != 2 || advices[0] != unix.MADV_FREE || advices[1] != unix.MADV_DONTNEED {
		t.Errorf("advice sequence %v, want [FREE DONTNEED]", advices)
	}
	if load(m.Base()) != 0 {
		t.Error("fallback DONTNEED did not zero the page")
	}
	fk.name = unix.EPERM
	m2 := reserve(t, ps, fk)
	if err := m2.SetName("heap"); !errors.Is(err, unix.EPERM) {
		t.Errorf("SetName with EPERM = %v, want EPERM", err)
	}
}

func TestInjectorConcurrent(t *testing.T) {
	const workers, per = 8, 200
	ps := PageSize()
	inj := NewFaultInjector(nil)
	m := reserve(t, workers*ps, inj)
	const fails = 10
	for i := 1; i <= fails; i++ {
		inj.FailNth(OpCommit, i*37)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	injected := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(addr uintptr) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				err := m.Commit(addr, ps)
				if errors.Is(err, ErrInjected) {
					mu.Lock()
					injected++
					mu.Unlock()
				} else if err != nil {
					t.Error(err)
				}
				if err := m.Decommit(addr, ps, DecommitDontNeed); err != nil {
					t.Error(err)
				}
			}
		}(m.Base() + uintptr(w)*ps)
	}
	wg.Wait()
	if injected != fails {
		t.Errorf("%d injected failures, want %d", injected, fails)
	}
	if n := inj.Calls(OpCommit); n != workers*per {
		t.Errorf("Calls(OpCommit) = %d, want %d", n, workers*per)
	}
	if n := inj.Calls(OpDecommit); n != workers*per {
		t.Errorf("Calls(OpDecommit) = %d, want %d", n, workers*per)
	}
}
