package mmap

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRangeChecks(t *testing.T) {
	ps := PageSize()
	const pages = 8
	inj := NewFaultInjector(nil)
	m := reserve(t, pages*ps, inj)
	b, end := m.Base(), m.Base()+m.Size()
	cases := []struct {
		name    string
		addr, n uintptr
		want    error
	}{
		{"misaligned addr", b + 1, ps, ErrMisaligned},
		{"misaligned len", b, ps + 1, ErrMisaligned},
		{"zero len", b, 0, ErrOutOfRange},
		{"below base", b - ps, ps, ErrOutOfRange},
		{"past end", end, ps, ErrOutOfRange},
		{"straddles end", end - ps, 2 * ps, ErrOutOfRange},
		{"longer than mapping", b, m.Size() + ps, ErrOutOfRange},
		{"overflow", b + ps, ^uintptr(0) - ps + 1, ErrOutOfRange},
		{"addr near top", ^uintptr(0) &^ (ps - 1), ps, ErrOutOfRange},
	}
	ops := []struct {
		op Op
		f  func(addr, n uintptr) error
	}{
		{OpCommit, m.Commit},
		{OpDecommit, func(a, n uintptr) error { return m.Decommit(a, n, DecommitDontNeed) }},
		{OpDecommit, func(a, n uintptr) error { return m.Decommit(a, n, DecommitStrict) }},
		{OpHugePage, m.HugePage},
	}
	for _, c := range cases {
		for _, o := range ops {
			err := o.f(c.addr, c.n)
			var oe *OpError
			if !errors.As(err, &oe) || !errors.Is(err, c.want) {
				t.Errorf("%s %s: err %v, want *OpError wrapping %v", o.op, c.name, err, c.want)
				continue
			}
			if oe.Op != o.op || oe.Addr != c.addr || oe.Len != c.n {
				t.Errorf("%s %s: OpError{%v %#x %d}, want {%v %#x %d}", o.op, c.name, oe.Op, oe.Addr, oe.Len, o.op, c.addr, c.n)
			}
		}
	}
	// No check failure reached the kernel.
	for _, op := range []Op{OpCommit, OpDecommit, OpHugePage} {
		if n := inj.Calls(op); n != 0 {
			t.Errorf("%d %s calls reached the kernel for invalid ranges", n, op)
		}
	}
	// The whole mapping and a single page at either end are fine.
	for _, r := range [][2]uintptr{{b, m.Size()}, {b, ps}, {end - ps, ps}} {
		if err := m.Commit(r[0], r[1]); err != nil {
			t.Errorf("Commit(%#x, %d): %v", r[0], r[1], err)
		}
	}
	if err := m.Decommit(b, ps, DecommitMode(42)); !errors.Is(err, ErrInvalidMode) {
		t.Errorf("bad mode: %v, want ErrInvalidMode", err)
	}
}

func TestReserveChecks(t *testing.T) {
	for _, c := range []struct {
		size uintptr
		want error
	}{{0, ErrOutOfRange}, {PageSize() + 1, ErrMisaligned}} {
		_, err := Reserve(c.size, nil)
		var oe *OpError
		if !errors.As(err, &oe) || !errors.Is(err, c.want) || oe.Op != OpReserve || oe.Len != c.size {
			t.Errorf("Reserve(%d) = %v, want OpError{reserve} wrapping %v", c.size, err, c.want)
		}
	}
	// The kernel's own refusal comes back as its errno: more address
	// space than a 47-bit user half has.
	_, err := Reserve(1<<62, nil)
	if !errors.Is(err, unix.ENOMEM) {
		t.Errorf("Reserve(1<<62) = %v, want ENOMEM", err)
	}
}

func TestOpErrorText(t *testing.T) {
	err := error(&OpError{OpDecommit, 0x10000, 0x2000, unix.ENOMEM})
	s := err.Error()
	for _, want := range []string{"decommit", "0x10000", "0x12000", "8192", "cannot allocate memory"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if !errors.Is(err, unix.ENOMEM) {
		t.Error("errors.Is(OpError, ENOMEM) is false")
	}
	names := map[Op]string{OpReserve: "reserve", OpCommit: "commit", OpDecommit: "decommit",
		OpRelease: "release", OpHugePage: "hugepage", OpName: "name", Op(99): "Op(99)"}
	for op, want := range names {
		if op.String() != want {
			t.Errorf("Op(%d).String() = %q, want %q", int(op), op.String(), want)
		}
	}
	if DecommitStrict.String() != "strict" || DecommitMode(9).String() != "DecommitMode(9)" {
		t.Error("DecommitMode.String")
	}
}
