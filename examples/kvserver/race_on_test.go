//go:build race

package main

// testKeys: the race detector slows every access ~10x; fewer keys keep the
// test at a few seconds and still grow and shrink the maps.
const testKeys = 5000
