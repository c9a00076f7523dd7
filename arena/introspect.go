package arena

import (
	"github.com/offheap/offheap/pages"
)

// PageState is the state of one heap page in a PageMap.
type PageState uint8

const (
	PageFree     PageState = iota // grown, free, physical memory may be present
	PageReleased                  // grown, free, returned to the kernel
	PageInUse                     // in a span (or held by a worker's page cache)
)

// PageSize is the heap page size in bytes; a chunk, the unit the heap
// grows by and the row of a page map, is ChunkPages pages.
const (
	PageSize   = pages.PageSize
	ChunkPages = pages.ChunkPages
)

// PageMap returns the state of every grown page of the heap, lowest address
// first, appended to dst[:0]. The grown part of a heap is contiguous from
// the base of its reservation. It takes the heap lock once per chunk (512
// pages, about a microsecond), so a large heap's map never stalls
// allocation for long; pages may change state between chunks.
func (h *Heap) PageMap(dst []PageState) []PageState {
	dst = dst[:0]
	if !h.enter() {
		return dst
	}
	defer h.leave()
	for chunk := h.base; ; chunk += pages.ChunkBytes {
		h.lock.Lock()
		end := h.growNext
		if chunk >= end || h.closed.Load() {
			h.lock.Unlock()
			return dst
		}
		for addr := chunk; addr < chunk+pages.ChunkBytes && addr < end; addr += pages.PageSize {
			dst = append(dst, pageState(h.pages.State(addr)))
		}
		h.lock.Unlock()
	}
}

func pageState(st pages.State) PageState {
	switch st {
	case pages.Free:
		return PageFree
	case pages.FreeScavenged, pages.NotGrown:
		// NotGrown: a claimed chunk whose commit failed, not usable yet.
		return PageReleased
	}
	return PageInUse
}

// Mapping describes one address range the heap has mapped.
type Mapping struct {
	Name string  // "heap" for the reservation, else the metadata it holds
	Base uintptr // first byte
	Size uintptr // bytes
}

// Mappings returns the address ranges of the heap's reservation, so tools
// can find its lines in /proc/PID/maps and /proc/PID/smaps. Metadata
// mappings are not listed; Stats.Metadata counts their touched bytes.
func (h *Heap) Mappings() []Mapping {
	return []Mapping{{Name: "heap", Base: h.base, Size: h.limit - h.base}}
}
