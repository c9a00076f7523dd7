package arena

import (
	"runtime"
	"sync"
	"unsafe"

	"github.com/offheap/offheap/sizeclasses"
)

// maxProfileDepth is the deepest call stack kept for a profile sample; as
// the Go runtime's heap profiler, deep stacks are cut at the root end.
const maxProfileDepth = 32

// profileStore holds the live sampled allocations. mu guards recs; it is
// taken once per sample and once per free of a sampled object (sampled
// slots are marked, so other frees never look here).
type profileStore struct {
	mu   sync.Mutex
	recs map[uintptr]ProfileRecord
}

// ProfileRecord is one live sampled allocation.
type ProfileRecord struct {
	Addr  uintptr   // the object
	Size  uint64    // its size in the heap (class size, or whole pages)
	Stack []uintptr // return addresses, innermost first, as runtime.Callers
}

// recordSample remembers the allocating stack of a sampled object.
// size is the object's size for class 0.
func (h *Heap) recordSample(p unsafe.Pointer, cl uint8, size uintptr) {
	if cl != 0 {
		size = sizeclasses.Size(cl)
	}
	var pcs [maxProfileDepth]uintptr
	n := runtime.Callers(2, pcs[:])
	rec := ProfileRecord{Addr: uintptr(p), Size: uint64(size), Stack: append([]uintptr(nil), pcs[:n]...)}
	h.prof.mu.Lock()
	if h.prof.recs == nil {
		h.prof.recs = make(map[uintptr]ProfileRecord)
	}
	h.prof.recs[rec.Addr] = rec
	h.prof.mu.Unlock()
}

// forgetSample drops a freed object's sample.
func (h *Heap) forgetSample(addr uintptr) {
	h.prof.mu.Lock()
	delete(h.prof.recs, addr)
	h.prof.mu.Unlock()
}

// ProfileRecords returns the live sampled allocations (none unless
// Config.ProfileRate is set), for building a heap profile: each stands for
// about ProfileRate bytes of allocation. Package arena/arenahttp serves
// them in pprof format.
func (h *Heap) ProfileRecords() []ProfileRecord {
	h.prof.mu.Lock()
	defer h.prof.mu.Unlock()
	out := make([]ProfileRecord, 0, len(h.prof.recs))
	for _, r := range h.prof.recs {
		out = append(out, r)
	}
	return out
}

// ProfileRate returns the heap's Config.ProfileRate.
func (h *Heap) ProfileRate() int { return h.cfg.ProfileRate }
