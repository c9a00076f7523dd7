package spans

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// listIDs walks l with Each.
func listIDs(tb *Table, l *List) []ID {
	ids := []ID{}
	l.Each(tb, func(s *Span) { ids = append(ids, s.ID()) })
	return ids
}

// checkList compares l with the model (front first) and checks the links
// and tags of every span on it.
func checkList(t *testing.T, tb *Table, l *List, model []ID, kind uint8, step int) {
	t.Helper()
	if diff := cmp.Diff(model, listIDs(tb, l), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("step %d: list %d contents (-model +got):\n%s", step, kind, diff)
	}
	if l.len() != len(model) {
		t.Fatalf("step %d: list %d Len = %d, want %d", step, kind, l.len(), len(model))
	}
	for k, id := range model {
		s := tb.Span(id)
		if s.List != kind {
			t.Fatalf("step %d: span %d on list %d tagged %d", step, id, kind, s.List)
		}
		var prev, next ID
		if k > 0 {
			prev = model[k-1]
		}
		if k+1 < len(model) {
			next = model[k+1]
		}
		if s.prev != prev || s.next != next {
			t.Fatalf("step %d: span %d links prev %d next %d, want %d %d", step, id, s.prev, s.next, prev, next)
		}
	}
}

func TestListModel(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		tb := newTestTable(t, 64)
		var pool []*Span
		for range 12 {
			pool = append(pool, mustNew(t, tb, uint32(rng.IntN(maxSlots)+1)))
		}
		lists := []*List{ptr(NewList(ListPartial)), ptr(NewList(ListFull))}
		kinds := []uint8{ListPartial, ListFull}
		models := make([][]ID, 2)
		where := map[ID]int{} // span → list index; absent: on none

		for step := 0; step < 400; step++ {
			li := rng.IntN(2)
			l := lists[li]
			switch op := rng.IntN(4); op {
			case 0, 1: // push an unlisted span, if any
				var free []*Span
				for _, s := range pool {
					if _, on := where[s.ID()]; !on {
						free = append(free, s)
					}
				}
				if len(free) == 0 {
					continue
				}
				s := free[rng.IntN(len(free))]
				l.Push(tb, s)
				models[li] = append([]ID{s.ID()}, models[li]...)
				where[s.ID()] = li
			case 2: // remove a random member
				if len(models[li]) == 0 {
					continue
				}
				k := rng.IntN(len(models[li]))
				id := models[li][k]
				l.Remove(tb, tb.Span(id))
				models[li] = slices.Delete(models[li], k, k+1)
				delete(where, id)
			case 3: // pop
				s := l.Pop(tb)
				if len(models[li]) == 0 {
					if s != nil {
						t.Fatalf("seed %d step %d: Pop of empty list = span %d", seed, step, s.ID())
					}
					continue
				}
				if s == nil || s.ID() != models[li][0] {
					t.Fatalf("seed %d step %d: Pop = %s, want span %d", seed, step, describeOrNil(s), models[li][0])
				}
				models[li] = models[li][1:]
				delete(where, s.ID())
			}
			for i := range lists {
				checkList(t, tb, lists[i], models[i], kinds[i], step)
			}
			for _, s := range pool {
				if _, on := where[s.ID()]; !on && (s.List != ListNone || s.next != 0 || s.prev != 0) {
					t.Fatalf("seed %d step %d: unlisted span %d has list %d next %d prev %d", seed, step, s.ID(), s.List, s.next, s.prev)
				}
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// Push of a listed span and Remove from the wrong list are refused with an
// error, not a panic (the caller holds a class lock), and change nothing.
func TestListRefusals(t *testing.T) {
	tb := newTestTable(t, 16)
	partial, full := NewList(ListPartial), NewList(ListFull)
	a, b := mustNew(t, tb, 8), mustNew(t, tb, 8)
	if err := partial.Push(tb, a); err != nil {
		t.Fatal(err)
	}
	if err := full.Push(tb, b); err != nil {
		t.Fatal(err)
	}
	c := mustNew(t, tb, 8)
	for _, tt := range []struct {
		what string
		op   func() error
		want string
	}{
		{"Push of a span on the same list", func() error { return partial.Push(tb, a) }, "Push of a listed span "},
		{"Push of a span on another list", func() error { return full.Push(tb, a) }, "Push of a listed"},
		{"Remove from the wrong list", func() error { return full.Remove(tb, a) }, "wrong list"},
		{"Remove of an unlisted span", func() error { return partial.Remove(tb, c) }, "wrong list"},
	} {
		if err := tt.op(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s: %v, want an error containing %q", tt.what, err, tt.want)
		}
	}

	// The refused operations changed nothing.
	checkList(t, tb, &partial, []ID{a.ID()}, ListPartial, -1)
	checkList(t, tb, &full, []ID{b.ID()}, ListFull, -1)
}

func TestListEmpty(t *testing.T) {
	tb := newTestTable(t, 4)
	l := NewList(ListPartial)
	if l.len() != 0 || l.Pop(tb) != nil {
		t.Fatal("new list not empty")
	}
	called := false
	l.Each(tb, func(*Span) { called = true })
	if called {
		t.Fatal("Each on an empty list called f")
	}
	s := mustNew(t, tb, 1)
	l.Push(tb, s)
	l.Remove(tb, s)
	if l.len() != 0 || l.Pop(tb) != nil || s.List != ListNone {
		t.Fatal("list not empty after Push, Remove")
	}
	l.Push(tb, s) // pushable again
	if l.Pop(tb) != s {
		t.Fatal("Pop after re-Push")
	}
}
