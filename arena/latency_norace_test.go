//go:build !race

package arena

import "time"

// rssLatencyBound is how soon after a GiB is freed the background
// scavenger must have given it back (TestScavengerRSSLatency): the issue's
// "within 2 s".
const rssLatencyBound = 2 * time.Second

// gcTimingChecked: uninstrumented: the GC timing check of TestGCIndependentOfHeap runs.
const gcTimingChecked = true
