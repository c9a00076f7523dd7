//go:build !cgo

package bench

// cgoProviders: this binary was built with CGO_ENABLED=0, so there is no
// calloc to call.
func cgoProviders() []Provider { return nil }
