package arenahttp

import (
	"expvar"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/internal/heapview"
)

// Publish registers h's snapshot (the JSON the handler serves) as the
// expvar name, so it appears under /debug/vars. Like expvar.Publish it
// panics if the name is already registered: names are chosen by the
// program, once, at start-up.
func Publish(name string, h *arena.Heap) {
	snap := heapview.NewTaker(h)
	expvar.Publish(name, expvar.Func(func() any { return snap.Take() }))
}
