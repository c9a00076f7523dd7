//go:build !race

package arena

// budgetMixScale: the Go/offheap mix test at full size (a 512 MiB budget).
const budgetMixScale = 1

// budgetRSSChecked: without the race detector, process RSS is the Go
// runtime's memory, offheap's and the binary's, so the test bounds it.
const budgetRSSChecked = true
