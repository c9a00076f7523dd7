//go:build race

package arena

// Under the race detector every allocation costs several times more:
// TestGCIndependentOfHeap keeps 256 MiB (4M objects) live instead of
// 1 GiB, which keeps it within seconds.
func init() { gcLiveBytes = 256 << 20 }
