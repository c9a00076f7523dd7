//go:build race

package arena

// budgetMixScale: under the race detector the mix test runs at a quarter
// of the size (a 128 MiB budget): instrumented code is several times
// slower, and `go test -race ./...` shares the cores with other packages.
const budgetMixScale = 4

// budgetRSSChecked: the race runtime keeps shadow memory for the Go heap
// (several bytes per byte) outside both the Go limit and offheap, so RSS
// is logged but not bounded; the uninstrumented run checks the bound.
const budgetRSSChecked = false
