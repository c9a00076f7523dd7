//go:build !race

package container

// raceEnabled: tests scale down under the race detector.
const raceEnabled = false

// gcEntries is how many entries TestGCIndependence keeps in its map.
const gcEntries = 1 << 20

// gcTimingChecked: uninstrumented builds check GC time too, not just what
// the GC scans (under the race detector a GC's time measures the race
// runtime's bookkeeping).
const gcTimingChecked = true
