//go:build !offheap_nolinkname

package arena

import _ "unsafe" // for go:linkname

// The runtime's P pinning, reached by linkname (see pcache.go). Builds with
// the tag offheap_nolinkname use pin_nolinkname.go instead.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// pickP returns the id of the caller's P, a hint for which of n per-P
// caches to lock in the mutex builds (sync_race.go). It may be n or more
// when GOMAXPROCS grew after NewHeap; the goroutine may have moved by the
// time the caller uses it, which costs locality, not correctness.
func pickP(n int) int {
	pid := procPin()
	procUnpin()
	return pid
}

// perPByP: a goroutine learns its P, so the per-P table follows
// GOMAXPROCS as it grows (pcache.go).
const perPByP = true
