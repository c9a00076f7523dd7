// Package bench runs allocator benchmark shapes side by side on offheap
// and on the allocators a Go program could use instead: the Go heap, Go's
// experimental arenas, C's allocator through cgo, and (through the C
// driver in c/shapes.c) glibc, tcmalloc, jemalloc and mimalloc.
//
// # Why shapes, not programs
//
// mimalloc-bench, the suite allocator authors compare themselves with,
// is a collection of programs. A Go library cannot be LD_PRELOADed under
// them, so this package ports their shapes, the allocation patterns that
// make each one hard, and runs the same shape in Go over an Allocator
// interface and in C over malloc/free:
//
//   - larson: a server. Each thread replaces random objects of its live
//     set (8-1000 B); every LarsonRound operations a new thread inherits
//     the set, so objects die on threads that did not allocate them and
//     thread caches come and go. Run with a small live set (5,000 objects
//     a thread) and, as larson-big, with ~1 GiB live at 2 threads: the
//     size of cache where the Go GC's marking cost shows.
//   - xmalloc (xmalloc-test): producers allocate 64 B objects and hand
//     them in batches to consumers that free them; every free is remote.
//   - cache-scratch and cache-thrash: false sharing, passive (each thread
//     starts by freeing an object the main thread allocated beside the
//     others') and active (threads allocate small objects at once). The
//     work per thread is fixed, so time relative to one thread shows it.
//   - mstress (mimalloc's stress test): random sizes and lifetimes,
//     objects swapped between threads through a shared array, a rare
//     large object.
//   - alloc-test: a working set of 8 B-1 KiB objects, small sizes far
//     more likely.
//   - glibc-simple and glibc-thread (glibc's bench-malloc-simple and
//     -thread): batches allocated and freed in order; a per-thread
//     working set of 4 B-32 KiB objects.
//   - pair-N: allocate, touch, free N bytes (16, 64, 256, 1024), the
//     fast path alone.
//
// # Fairness
//
// Every allocator runs the same shape with the same splitmix64 sequence
// (rng.go and its C twin; a test checks they agree), the same sizes and
// slot choices, and touches each object it allocates (first and last
// byte). Live sets are built before the clock starts and freed after it
// stops; a throughput run lasts Params.Duration for every allocator, a
// false-sharing run does a fixed amount of work. Allocation goes through
// an interface in Go and through volatile function pointers in C, so no
// compiler can drop an allocation whose memory is only touched.
//
// The Go heap's objects stay reachable while the shape holds them (their
// pointers are in the shape's slices, which the GC scans), so the GC
// marks the same live set offheap keeps out of its sight, and its cost,
// GC CPU seconds and cycles from runtime/metrics during the timed phase,
// is reported beside its throughput. offheap and make hand out zeroed
// memory; cgo uses calloc for the same reason, and the C driver uses
// malloc (what C programs call) unless -native-zero asks for calloc.
//
// Goroutines are not threads: a shape's "thread" is a goroutine on the Go
// side (GOMAXPROCS defaults to the CPU count) and a pthread in C.
// offheap-heap shares the heap's per-P caches between them;
// offheap-cache gives each goroutine its own Cache, the way a worker
// pool would use it.
//
// # Checking itself
//
// Every offheap run opens a fresh Heap and, at the end, fails if any
// object is still live, so a shape that leaks or an allocator that loses
// a free is reported, not measured. The unit test runs every shape on
// every built-in allocator with tiny parameters and checks the heap
// balances.
//
// cmd/arenabench is the command; compare.sh (make bench-compare) builds
// and runs everything and prints one table. README.md says how to run it.
package bench
