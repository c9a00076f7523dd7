//go:build !race

package main

import "time"

// testKeys is how many keys TestServer cycles through its store.
const testKeys = 20000

// maxDefragStep bounds TestActiveDefrag's longest defrag step: a step of
// 256 entries takes 0.5-2 ms here, so 50 ms leaves room for a loaded
// machine and still catches a step that is not bounded by
// defragStepEntries.
const maxDefragStep = 50 * time.Millisecond
