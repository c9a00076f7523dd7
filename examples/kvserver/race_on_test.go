//go:build race

package main

import "time"

// testKeys: the race detector slows every access ~10x; fewer keys keep the
// test at a few seconds and still grow and shrink the maps.
const testKeys = 5000

// maxDefragStep bounds TestActiveDefrag's longest defrag step. It guards
// against a step that is not bounded by defragStepEntries, not against a
// slow one: a race-and-invariants step of 256 entries takes 15-30 ms
// alone here, and 97 ms was seen with the other packages' race tests
// running beside it (a clean-clone CI run).
const maxDefragStep = 500 * time.Millisecond
