// Package heapview turns a heap's figures into what people and tools read:
// a Snapshot (arena.Stats plus the figures derived from it: fragmentation,
// per-class utilisation, resident bytes), and its renderings as a table,
// JSON and Prometheus text, plus a compact wire form of the page map.
//
// It is shared by the HTTP handler (arena/arenahttp) and the CLI
// (cmd/arenastat) so that a live process and a local run report the same
// figures the same way. Like them it uses only arena's exported API.
package heapview
