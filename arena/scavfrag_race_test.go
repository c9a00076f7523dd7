//go:build race

package arena

// raceBuild: the race detector is on; GiB-scale tests scale down.
const raceBuild = true
