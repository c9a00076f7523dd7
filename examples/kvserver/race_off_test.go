//go:build !race

package main

// testKeys is how many keys TestServer cycles through its store.
const testKeys = 20000
