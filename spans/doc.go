// Package spans is part of offheap's engine: arena imports it, and it makes
// no compatibility promise. Programs import arena (and arena/arenahttp).
//
// It holds span metadata: who owns each run of heap
// pages, how a small-object span is divided into slots, and which slots are
// handed out.
//
// # Records live off the Go heap
//
// A span record is a fixed header followed by one state byte per object
// slot. Records are carved from an anonymous mapping reserved when the Table
// is made and are named by a 32-bit ID, their offset in that mapping in
// 64-byte units. Nothing in a record is a Go pointer, and the page → span
// table is a flat array of IDs in another such mapping, so the Go garbage
// collector never scans memory that grows with the off-heap heap.
//
// Both mappings are reserved PROT_NONE and committed on demand, as a prefix
// that only grows: the page map as the heap grows (Table.Grow, one entry
// per grown page), the records 256 KiB at a time as the pool's bump pointer
// reaches them. The record mapping is sized for the worst case (every page
// a one-page span with a full record, twice over: about 31 % of the heap,
// 20 GiB of address space for a 64 GiB heap), which costs only address
// space; committing it all up front would be charged in full under
// vm.overcommit_memory=2.
//
// Records come in size buckets by slot count (a multiple of 64 slots), each
// bucket with its own free list, so a span of 8-byte objects (1024 slots)
// and a large-object span (64 slots, of which it uses one) do not pay for
// the same record. The free lists are stacks of IDs on the Go heap, not
// links through the records, so that the OS pages only pooled records
// cover can be given back to the kernel (Table.ReleasePooled, run by the
// heap's scavenger; records.go): after a mass delete the records of the
// freed spans would otherwise stay resident, a few per cent of the peak
// heap. A record is a 256-byte header (one cache line read by
// every free, two for the freed bitmap, one for its count) plus the slot
// bytes: about 4.7 % of a heap of 64-byte objects.
//
// # Slot state bytes and the freed bitmap
//
// Each slot has a state byte: SlotFree, SlotAllocated, SlotSampled (an
// allocated slot whose allocation a profile sampled), SlotPad (slots
// past the span's object count, never handed out), or SlotRetired (a free
// slot whose debug poison check failed: it keeps the corrupted bytes, is
// never handed out again and cannot be freed, so it keeps its span in use),
// or SlotRemote (freed by a goroutine that does not own the span, its freed
// bit set or about to be, awaiting collection). Only the span's current
// owner writes state bytes: the Cache that holds it, the goroutine moving it
// between owners, or the holder of its size class's central lock while it is
// unowned. A goroutine freeing an object it was handed only reads that
// object's own byte: the hand-off of the pointer from the allocating
// goroutine orders the owner's write before that read, and bytes are
// separate memory locations, so the owner may write other slots' bytes at
// the same time without a data race. The one byte a non-owner writes is
// the state of the object it frees, allocated to SlotRemote (MarkRemote):
// the owner writes an allocated slot's byte only when it frees or collects
// that same object, so the two meet only in a double free.
//
// A free by a goroutine that does not own the span sets the slot's bit in
// the span's freed bitmap with an atomic OR and counts it in Pending, one
// free at a time (MarkFreed, NotePending) or, after marking each slot
// SlotRemote, a word's worth at once (PublishFreed). The
// bit is the arbiter between concurrent frees (the second sees it set: a
// double free) and the message to the owner, who collects freed bits with
// an atomic swap when it runs out of slots and only then marks the slots
// free. For a span no cache owns, Allocated (kept under the class lock)
// and Pending together tell a freer when it freed the span's last object.
//
// # Publication
//
// A span becomes visible to lookups only when its state is set to InUse or
// Large with an atomic store, after the page → span table entries are
// written; Lookup loads the table entry and then the state with atomic
// loads. Gen changes every time a record is reused, so a goroutine that
// dropped all locks can tell whether a record still describes the span it
// saw.
//
// # Locking
//
// Table's record pool has its own mutex (taken once per span, never on the
// object path). The page → span table is written by the goroutine that owns
// the span being published or unpublished and read with atomic loads by
// anyone. List is not locked: the caller holds the lock of the size class
// the list belongs to.
package spans
