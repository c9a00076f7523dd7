//go:build offheap_nolinkname

package arena

import "math/rand/v2"

// pickP spreads callers over the n per-P caches at random, for builds
// that may not reach runtime.procPin by linkname: without it a goroutine
// cannot learn its P. Each cache is taken under its mutex (sync_race.go),
// so any choice is correct; a random one (the runtime's per-thread
// generator, no shared state) keeps concurrent callers from all locking
// the same cache. It returns 0 when n is 0.
func pickP(n int) int {
	if n == 0 {
		return 0
	}
	return rand.IntN(n)
}

// perPByP: no goroutine learns its P here, so the table keeps the length
// it had at NewHeap (pickP never picks past it); a shrink still trims it.
const perPByP = false
