package spans

import (
	"fmt"
	"strings"
	"testing"
)

// testBase is a fake, page-aligned heap base: Table only does arithmetic
// with it and never touches the heap.
const testBase uintptr = 1 << 40

// newTestTable makes a Table for a fake heap of heapPages pages, grown
// whole (its page map committed), and closes it when the test ends.
func newTestTable(tb testing.TB, heapPages uintptr) *Table {
	tb.Helper()
	t, err := NewTable(testBase, heapPages, nil)
	if err != nil {
		tb.Fatalf("NewTable(%#x, %d): %v", testBase, heapPages, err)
	}
	if err := t.Grow(heapPages); err != nil {
		tb.Fatalf("Grow(%d): %v", heapPages, err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

// mustNew takes a record or fails the test.
func mustNew(tb testing.TB, t *Table, nelems uint32) *Span {
	tb.Helper()
	s, err := t.New(nelems)
	if err != nil {
		tb.Fatalf("New(%d): %v", nelems, err)
	}
	return s
}

// newPooled takes n 64-slot records from t and returns all of them to the
// pool but the first keep, for the ReleasePooled tests.
func newPooled(tb testing.TB, t *Table, n, keep int) []*Span {
	tb.Helper()
	all := make([]*Span, n)
	for i := range all {
		all[i] = mustNew(tb, t, 64)
	}
	for _, s := range all[keep:] {
		t.Release(s)
	}
	return all
}

// panicMessage runs f and returns what it panicked with, formatted, and
// whether it panicked at all.
func panicMessage(f func()) (msg string, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			msg, panicked = fmt.Sprint(r), true
		}
	}()
	f()
	return "", false
}

// wantPanic fails the test unless f panics with a message containing every
// one of subs.
func wantPanic(tb testing.TB, what string, f func(), subs ...string) {
	tb.Helper()
	msg, ok := panicMessage(f)
	if !ok {
		tb.Errorf("%s: did not panic", what)
		return
	}
	for _, sub := range subs {
		if !strings.Contains(msg, sub) {
			tb.Errorf("%s: panic %q does not mention %q", what, msg, sub)
		}
	}
}

// slotStates copies the span's NSlots state bytes.
func slotStates(s *Span) []uint8 {
	out := make([]uint8, s.NSlots())
	for i := range out {
		out[i] = *s.Slot(uintptr(i))
	}
	return out
}
