//go:build !invariants

package arena

import "sync"

// Without the invariants build tag the checks of invariants_on.go compile
// to nothing: checkedMutex is a plain sync.Mutex and the assertions are
// empty functions that inline away.

// checkedMutex is sync.Mutex; see invariants_on.go.
type checkedMutex struct{ sync.Mutex }

func (*checkedMutex) assertHeld(string) {}

func (*Heap) assertUnlocked(string) {}
