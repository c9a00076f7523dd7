// Package container holds hash maps whose buckets and entries live in an
// arena.Heap, so that a service's big index costs the Go garbage
// collector nothing: BytesMap (byte-string keys and values, copied
// off-heap) and Map[K, V] (fixed-size keys and values without Go pointers).
//
// # Table layout
//
// A map is a chained hash table. Its table is nbuckets words (a power of
// two), each the address of the first entry of its chain, 0 when empty.
// The words are not one array: they are cut into segments of 4096 buckets
// (32 KiB, the heap's largest small size class; a table smaller than that
// is one segment of its size), and a directory, also off-heap, holds the
// segments' addresses. A segment is allocated when a bucket of its first
// gets an entry, and freed as soon as a resize has drained it. So no
// single operation allocates, clears or frees more than 32 KiB of table,
// however big the table: a Go map, or a table allocated in one piece,
// pays for a whole new table (a large object cleared, or page-faulted
// in) in the one insert that triggers growth. The price is one load of
// the directory per lookup, which stays in cache (32 KiB of directory for
// 16 M buckets).
//
// An entry is one Heap allocation: a header (the chain link and the key's
// full 64-bit hash; for BytesMap also the key and value lengths, 24 bytes
// in all), then the key and the value. A BytesMap entry is sized to its
// key and value, so the Heap's size classes serve it and Delete hands it
// straight back; a Map entry is a fixed struct. Lookups compare the stored
// hash before the key, so a chain's other entries cost one load each.
//
// # Hashing
//
// Each map draws its own hash/maphash seed when it is made: BytesMap
// hashes with maphash.Bytes and maphash.String (which agree, so Set and
// SetString reach the same entry), Map with maphash.Comparable, whose
// hash agrees with == (+0 and -0, padding bytes of structs). A per-map
// random seed means an attacker who picks keys cannot know which ones
// collide, and two maps never share a hash layout. The package has no
// mutable state of its own.
//
// # Incremental resizing
//
// A table grows (doubles) when an insert would give it more entries than
// buckets, and shrinks when a delete leaves it fewer than one entry per
// eight buckets (to twice the entries, down to the smallest table). The
// size hint sizes the first table and is not a floor: a service that was
// preloaded with millions of keys and then deleted most of them wants the
// table's memory back too (at 3 M keys, a table kept at the hint held 32
// MiB of a 128 MiB heap after a 90 % delete), and growing back is as
// incremental as any growth. Neither rehashes the table at once. Like
// Redis's dict, the map allocates the new table's directory and from then
// on holds two tables: every insert goes to the new one, every lookup
// searches both, and every Set and Delete, after doing its own work, moves
// a bounded part of the old table over: at most 16 entries, and at most
// 128 empty buckets (or unallocated segments) stepped over. Entries move one
// at a time, head of chain first, keeping their stored hash, so a move
// touches one entry and two bucket words and no key is rehashed. When a
// segment of the old table has been passed it is freed; when the last has,
// the old directory is, and the new table becomes the only one.
//
// The bound keeps up with growth: a grow starts at n entries into 2n
// buckets, so at least n inserts come before the next grow is due, and
// draining n entries from n buckets takes at most n/16 + n/128 + 1
// operations. MapStats.MaxMoved records the most entries any one
// operation moved, and the tests check it never passes 16.
//
// Reads (Get, View, Has, Range) never move anything: they never write to
// the map, so the usual reader/writer rule applies to them (see below).
// A map that only reads while resizing just keeps both tables until the
// next write.
//
// If the Heap refuses memory to a resize (the new directory or a segment),
// nothing is lost: the map goes on with the table it has, at a higher
// load, or with the drain paused, and tries again later (a growth after
// 1/16 more entries or a delete, straight to the size the entries need);
// MapStats.ResizeErr says so meanwhile. An insert whose segment in the new
// table is refused goes to an old bucket the drain has not reached yet.
// Set fails only when its own entry, or any bucket for it, cannot be had,
// and then leaves the map unchanged.
//
// # Memory ownership
//
// Everything a map holds belongs to the Heap it was made with: the
// directories, the segments and the entries, allocated with Heap.Alloc
// (safe for concurrent use, so maps of one Heap may be written by
// different goroutines) and returned with Heap.Free the moment they are
// no longer needed: Delete frees the entry, replacing a value with one of
// another length frees the old entry, draining frees old segments, Close
// frees the rest. MapStats reports the bytes the map asked for; the Heap
// rounds each object up to its size class (see arena.Heap.Stats).
// Slices handed to View and Range callbacks view that memory in place and
// are valid only during the callback; Get copies.
//
// The Heap must outlive the map: closing the Heap first unmaps the map's
// memory under it.
//
// # Concurrency
//
// A map is not safe for concurrent use. Writers (Set, SetString, Delete,
// Close) must be serialised by the caller, with each other and with
// readers. The readers (Get, GetString, View, Has, Len, Range, MemStats)
// write nothing, so any number may run together while no writer does:
// a sync.RWMutex, or one mutex per shard of maps, is the intended use.
// A Set, Delete or Close called from inside a Range callback on the same
// map panics (it would free or move the entries Range is walking): collect
// keys during Range and change the map after it.
//
// # What the GC sees
//
// A BytesMap or Map value is a Go struct of a few dozen words: a Heap
// pointer, the hash seed and the tables' addresses, which are integers
// (uintptr) and addresses outside the Go heap. Off-heap, links between
// entries and tables are plain integers too. So however many entries a
// map holds, the Go heap holds the same few hundred bytes, the GC has
// nothing more to mark or scan, and no write barrier runs on the map's
// links. TestGCIndependence checks this with the runtime's own metrics.
package container
