//go:build race

package container

// raceEnabled: tests scale down under the race detector.
const raceEnabled = true

// gcEntries is how many entries TestGCIndependence keeps in its map:
// fewer under the race detector, where each Set costs several times more.
const gcEntries = 128 << 10

// gcTimingChecked: under the race detector a GC's time measures the race
// runtime's bookkeeping, not what the GC scans; the scan figures are
// still checked exactly.
const gcTimingChecked = false
