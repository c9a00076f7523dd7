//go:build !goexperiment.arenas

package bench

// arenaProviders: this binary was built without GOEXPERIMENT=arenas.
// compare.sh builds a second binary with it for the go-arena column.
func arenaProviders() []Provider { return nil }
