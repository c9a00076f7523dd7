//go:build race

package container

// raceEnabled: tests scale down under the race detector.
const raceEnabled = true
