package spans

import "fmt"

// List is a doubly linked list of spans threaded through Span.next/prev,
// tagged with its kind (ListPartial or ListFull) so a span knows which list
// holds it. Not locked: the caller holds the owning size class's lock.
type List struct {
	head ID
	n    int
	kind uint8
}

// NewList returns an empty list of the given kind.
func NewList(kind uint8) List { return List{kind: kind} }

// len returns the number of spans on the list.
func (l *List) len() int { return l.n }

// Len returns the number of spans on the list (for stats; the caller holds
// the lock that guards the list).
func (l *List) Len() int { return l.n }

// Push puts s at the front. A span already on a list is refused with an
// error naming it (an internal invariant broken), changing nothing: the
// caller holds the class lock, and panics once it has released it.
func (l *List) Push(t *Table, s *Span) error {
	if s.List != ListNone {
		return fmt.Errorf("spans: Push of a listed %s", s.Describe())
	}
	s.prev, s.next = 0, l.head
	if l.head != 0 {
		t.Span(l.head).prev = s.id
	}
	l.head = s.id
	s.List = l.kind
	l.n++
	return nil
}

// Remove takes s off the list. A span not on this list is refused with an
// error, changing nothing, as Push.
func (l *List) Remove(t *Table, s *Span) error {
	if s.List != l.kind {
		return fmt.Errorf("spans: Remove from the wrong list of %s", s.Describe())
	}
	l.unlink(t, s)
	return nil
}

// unlink takes s, which is on l, off it.
func (l *List) unlink(t *Table, s *Span) {
	if s.prev != 0 {
		t.Span(s.prev).next = s.next
	} else {
		l.head = s.next
	}
	if s.next != 0 {
		t.Span(s.next).prev = s.prev
	}
	s.next, s.prev, s.List = 0, 0, ListNone
	l.n--
}

// Pop removes and returns the front span, or nil. The head is on the list
// by construction, so there is nothing to refuse.
func (l *List) Pop(t *Table) *Span {
	if l.head == 0 {
		return nil
	}
	s := t.Span(l.head)
	l.unlink(t, s)
	return s
}

// Each calls f for every span on the list (for Verify and stats).
func (l *List) Each(t *Table, f func(*Span)) {
	for id := l.head; id != 0; {
		s := t.Span(id)
		id = s.next
		f(s)
	}
}
