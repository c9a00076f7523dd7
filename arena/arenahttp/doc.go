// Package arenahttp serves a live heap's figures over HTTP, for people, for
// Prometheus and for arenastat attach.
//
// Mount the handler under a path of the service's debug mux:
//
//	mux.Handle("/debug/offheap/", arenahttp.New(h))
//
// It answers GET and HEAD, keyed on the last element of the path, so it
// works whether or not the mux strips the prefix:
//
//	/debug/offheap/                  the snapshot as JSON (also ?format=json)
//	/debug/offheap/?format=text      the same as the table arenastat prints
//	/debug/offheap/?format=prom      Prometheus text exposition
//	/debug/offheap/metrics           the same
//	/debug/offheap/pagemap           the page map, run-length encoded JSON
//	/debug/offheap/profile           live sampled allocations as a pprof heap
//	                                 profile (Config.ProfileRate): go tool pprof
//	                                 http://host/debug/offheap/profile
//
// # Design
//
// A debug endpoint is read rarely and must never hurt the service it
// observes, so every request does the least that answers it. A snapshot
// is h.Stats() (which holds the heap lock only to read the page
// allocator's counters), plus the resident bytes of the heap's reservation
// read from /proc/self/smaps, plus figures derived from those:
// fragmentation and per-class utilisation. Reading smaps costs the kernel
// a walk of the page tables of every mapping of the process, milliseconds
// for a large heap (28 ms measured under load), so the handler reuses a
// reading for heapview.RSSTTL (a second): scrapes closer together than
// that, or several scrapers at once, pay for one read (heapview.Taker; its
// mutex is held only to copy the cached figure, never across the read).
// The figure is not kept up to date in the background: nothing is spent
// when nobody asks. The page map holds
// the heap lock for about a nanosecond a page (a millisecond per 8 GiB
// grown), so it is served only on its own path, never as part of a scrape.
//
// Nothing here reaches inside arena: the handler uses the exported API
// alone (Stats, Mappings, PageMap, ProfileRecords). The pprof encoding
// uses github.com/google/pprof/profile, which only this package imports,
// so the allocator's core carries no dependency for it.
//
// The JSON is the wire format between a service and arenastat attach: its
// keys are spelled out (snake_case, bytes in bytes) instead of mirroring
// arena.Stats, so that adding a field to Stats does not change what old
// tools read. Prometheus names follow the usual conventions: an offheap_
// prefix, _bytes for sizes, _total for counters, a size label for a class.
//
// Publish registers the same snapshot as an expvar, for services that
// already expose /debug/vars.
package arenahttp
