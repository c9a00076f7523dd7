//go:build !race

package arena

// raceBuild: the race detector is off.
const raceBuild = false
