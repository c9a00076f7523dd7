package heapview

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/offheap/offheap/arena"
)

// Snapshot is one heap's figures at one moment, with what is derived from
// them. Its JSON form (snake_case keys, byte counts in bytes, durations in
// nanoseconds) is what arenahttp serves and arenastat attach reads; it is
// spelled out here rather than taken from arena.Stats so that the wire
// format changes only on purpose.
type Snapshot struct {
	Time time.Time `json:"time,omitzero"` // when it was taken; zero in tests
	Figures

	// Fragmentation is 1 - HeapAlloc/(HeapInuse - RegionInuse): the share
	// of the pages in object spans not holding live objects (free slots,
	// tail waste of spans). Region spans are left out: a region's bump
	// allocations are not counted as live objects. 0 when nothing is in use.
	Fragmentation float64 `json:"fragmentation"`

	// RSS is the resident bytes of the heap's reservation, from
	// /proc/self/smaps (a Taker's may be up to RSSTTL old); RSSKnown is
	// false where that could not be read.
	RSS      uint64 `json:"rss_bytes"`
	RSSKnown bool   `json:"rss_known"`

	// Classes lists the size classes that ever saw an allocation, by class.
	Classes []ClassView `json:"classes"`
}

// ErrNotSnapshot is returned by ParseSnapshot for a document that is not a
// Snapshot's JSON form.
var ErrNotSnapshot = errors.New("not an offheap snapshot")

// snapshotKeys are the keys a document must have to be taken for a
// Snapshot. The format has no version marker, so these stand in for one:
// figures every version of the format has had, which anything else (an
// empty object, another program's JSON) is unlikely to carry all of.
// Keys not listed, and keys not known, are not required or refused, so
// that a reader still takes a newer or older server's snapshot. Never
// written.
var snapshotKeys = [...]string{
	"reserved_bytes", "heap_sys_bytes", "heap_inuse_bytes", "heap_alloc_bytes",
	"heap_objects", "mallocs", "frees", "committed_bytes", "rss_known", "classes",
}

// ParseSnapshot decodes a Snapshot from its JSON form, refusing with
// ErrNotSnapshot anything that is not one: JSON other than an object
// (null, an array, a string), an object without the keys of snapshotKeys,
// or values of the wrong types. Unknown keys are ignored (see
// snapshotKeys).
func ParseSnapshot(b []byte) (Snapshot, error) {
	var s Snapshot
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return s, fmt.Errorf("%w: %v", ErrNotSnapshot, err)
	}
	if keys == nil {
		return s, fmt.Errorf("%w: null", ErrNotSnapshot)
	}
	var missing []string
	for _, k := range snapshotKeys {
		if _, ok := keys[k]; !ok {
			missing = append(missing, fmt.Sprintf("%q", k))
		}
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("%w: no %s", ErrNotSnapshot, strings.Join(missing, ", "))
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %v", ErrNotSnapshot, err)
	}
	return s, nil
}

// Figures are arena.Stats' heap-wide figures; see there for their meaning.
type Figures struct {
	Reserved     uint64 `json:"reserved_bytes"`
	HeapSys      uint64 `json:"heap_sys_bytes"`
	HeapInuse    uint64 `json:"heap_inuse_bytes"`
	HeapIdle     uint64 `json:"heap_idle_bytes"`
	HeapReleased uint64 `json:"heap_released_bytes"`
	HeapAlloc    uint64 `json:"heap_alloc_bytes"`
	HeapObjects  uint64 `json:"heap_objects"`
	Mallocs      uint64 `json:"mallocs"`
	Frees        uint64 `json:"frees"`
	Metadata     uint64 `json:"metadata_bytes"`
	LargeObjects uint64 `json:"large_objects"`
	LargeAlloc   uint64 `json:"large_alloc_bytes"`
	Regions      uint64 `json:"regions"`
	RegionInuse  uint64 `json:"region_inuse_bytes"`

	LargestFreeRun uint64 `json:"largest_free_run_bytes"`
	MemoryLimit    uint64 `json:"memory_limit_bytes"`
	Committed      uint64 `json:"committed_bytes"`

	ScavengeReleased    uint64        `json:"scavenge_released_bytes"`
	ScavengeFailures    uint64        `json:"scavenge_failures"`
	ScavengeRecommitted uint64        `json:"scavenge_recommitted_bytes"`
	ScavengeGoal        uint64        `json:"scavenge_goal_bytes"`
	ScavengeCycles      uint64        `json:"scavenge_cycles"`
	ScavengeTime        time.Duration `json:"scavenge_time_ns"`

	ScavengeReleaseCalls  uint64 `json:"scavenge_release_calls"`
	ScavengeFreeCommitted uint64 `json:"scavenge_free_committed_bytes"`

	SpanOccupancy   Occupancy `json:"span_occupancy"`
	SpansCached     uint64    `json:"spans_cached"`
	SparseSpanBytes uint64    `json:"sparse_span_bytes"`
}

// Occupancy is arena.Stats.SpanOccupancy with its buckets named, so that
// the wire format says which bucket a count is in rather than relying on
// the order of arena's Occupancy* indexes: the small-object spans on the
// central lists by how full they were when last listed.
type Occupancy struct {
	Under25 uint64 `json:"under25"` // live objects < 25 % of slots
	P25to50 uint64 `json:"25to50"`
	P50to75 uint64 `json:"50to75"`
	P75Plus uint64 `json:"75plus"` // at least one slot free
	Full    uint64 `json:"full"`   // no free slot
}

// OccupancyOf names the buckets of an arena.Stats or arena.ClassStats
// SpanOccupancy.
func OccupancyOf(b [arena.SpanOccupancyBuckets]uint64) Occupancy {
	return Occupancy{
		Under25: b[arena.OccupancyUnder25], P25to50: b[arena.Occupancy25to50],
		P50to75: b[arena.Occupancy50to75], P75Plus: b[arena.Occupancy75Plus],
		Full: b[arena.OccupancyFull],
	}
}

// Total is the spans in all buckets: the central spans.
func (o Occupancy) Total() uint64 { return o.Under25 + o.P25to50 + o.P50to75 + o.P75Plus + o.Full }

// FiguresOf copies st's heap-wide figures.
func FiguresOf(st arena.Stats) Figures {
	return Figures{
		Reserved: st.Reserved, HeapSys: st.HeapSys, HeapInuse: st.HeapInuse, HeapIdle: st.HeapIdle,
		HeapReleased: st.HeapReleased, HeapAlloc: st.HeapAlloc, HeapObjects: st.HeapObjects,
		Mallocs: st.Mallocs, Frees: st.Frees, Metadata: st.Metadata,
		LargeObjects: st.LargeObjects, LargeAlloc: st.LargeAlloc,
		Regions: st.Regions, RegionInuse: st.RegionInuse,
		LargestFreeRun: st.LargestFreeRun, MemoryLimit: st.MemoryLimit, Committed: st.Committed,
		ScavengeReleased: st.ScavengeReleased, ScavengeFailures: st.ScavengeFailures,
		ScavengeRecommitted: st.ScavengeRecommitted, ScavengeGoal: st.ScavengeGoal,
		ScavengeCycles: st.ScavengeCycles, ScavengeTime: st.ScavengeTime,
		ScavengeReleaseCalls: st.ScavengeReleaseCalls, ScavengeFreeCommitted: st.ScavengeFreeCommitted,
		SpanOccupancy: OccupancyOf(st.SpanOccupancy), SpansCached: st.SpansCached,
		SparseSpanBytes: st.SparseSpanBytes,
	}
}

// ClassView is one size class's figures with its utilisation.
type ClassView struct {
	Class   int    `json:"class"`
	Size    uint64 `json:"size"`
	Objects uint64 `json:"objects"`
	Spans   uint64 `json:"spans"`
	Mallocs uint64 `json:"mallocs"`
	Frees   uint64 `json:"frees"`

	// SpanBytes is the size of one span of the class, 0 if unknown.
	SpanBytes uint64 `json:"span_bytes"`
	// Utilisation is Objects*Size / (Spans*SpanBytes): how full the
	// class's spans are. 0 when it has no spans or SpanBytes is unknown.
	Utilisation float64 `json:"utilisation"`

	// SpanOccupancy and SpansCached split Spans as Figures' fields of the
	// same names do, for this class alone.
	SpanOccupancy Occupancy `json:"span_occupancy"`
	SpansCached   uint64    `json:"spans_cached"`
}

// Take reads h's figures now.
func Take(h *arena.Heap) Snapshot {
	st := h.Stats()
	rss, err := ResidentBytes(h.Mappings())
	s := Derive(st, SpanBytes(st), rss, err == nil)
	s.Time = time.Now()
	return s
}

// RSSTTL is how long a Taker reuses a resident size read from
// /proc/self/smaps. That read makes the kernel walk the page tables of
// every mapping of the process, milliseconds for a large heap (4 ms for
// 256 MiB touched, 28 ms measured under load): paid on every scrape, by
// every scraper, it is the handler's whole cost. A monitoring scrape every
// few seconds needs no fresher resident size than a second old; every
// other figure is read fresh each time.
const RSSTTL = time.Second

// Taker takes snapshots of one heap like Take, reusing the resident size
// for up to RSSTTL. Safe for concurrent use.
type Taker struct {
	h   *arena.Heap
	ttl time.Duration

	// mu guards rss, rssKnown and rssAt. It is held only to copy them,
	// never while smaps is read: a stale reading is refreshed unlocked and
	// stored under mu, so two requests that find it stale at once may both
	// read smaps (the later store wins), but no request waits on another's
	// system calls.
	mu       sync.Mutex
	rss      uint64
	rssKnown bool
	rssAt    time.Time // when rss was read; zero before the first read
}

// NewTaker returns a Taker of h's snapshots.
func NewTaker(h *arena.Heap) *Taker { return &Taker{h: h, ttl: RSSTTL} }

// Take reads h's figures now, and its resident size unless the last
// reading is younger than RSSTTL.
func (t *Taker) Take() Snapshot {
	st := t.h.Stats()
	now := time.Now()
	t.mu.Lock()
	rss, known, at := t.rss, t.rssKnown, t.rssAt
	t.mu.Unlock()
	if at.IsZero() || now.Sub(at) >= t.ttl {
		r, err := ResidentBytes(t.h.Mappings())
		rss, known = r, err == nil
		t.mu.Lock()
		t.rss, t.rssKnown, t.rssAt = rss, known, now
		t.mu.Unlock()
	}
	s := Derive(st, SpanBytes(st), rss, known)
	s.Time = now
	return s
}

// Derive computes the derived figures of st. spanBytes maps a class's
// object size to its span size (sizes it lacks get no utilisation).
func Derive(st arena.Stats, spanBytes map[uint64]uint64, rss uint64, rssKnown bool) Snapshot {
	s := Snapshot{Figures: FiguresOf(st), RSS: rss, RSSKnown: rssKnown}
	if st.HeapInuse > st.RegionInuse {
		if objSpans := st.HeapInuse - st.RegionInuse; st.HeapAlloc <= objSpans {
			s.Fragmentation = 1 - float64(st.HeapAlloc)/float64(objSpans)
		}
	}
	for cl, c := range st.Classes {
		if cl == 0 || c.Mallocs == 0 {
			continue
		}
		v := ClassView{Class: cl, Size: c.Size, Objects: c.Objects, Spans: c.Spans,
			Mallocs: c.Mallocs, Frees: c.Frees, SpanBytes: spanBytes[c.Size],
			SpanOccupancy: OccupancyOf(c.SpanOccupancy), SpansCached: c.SpansCached}
		if v.Spans > 0 && v.SpanBytes > 0 {
			v.Utilisation = float64(v.Objects*v.Size) / float64(v.Spans*v.SpanBytes)
		}
		s.Classes = append(s.Classes, v)
	}
	return s
}
