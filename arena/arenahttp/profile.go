package arenahttp

import (
	"io"
	"math"
	"runtime"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/offheap/offheap/arena"
)

// internalPrefix names the frames of offheap's own allocation path, which
// are cut from the leaf end of every stack so a profile starts at the
// caller's code.
const internalPrefix = "github.com/offheap/offheap/arena."

// WriteProfile writes h's live sampled allocations (Config.ProfileRate) as
// a gzipped pprof heap profile with inuse_objects and inuse_space sample
// types, which go tool pprof opens. As for Go's heap profiles, each sample
// is scaled by the inverse of the chance that an allocation of its size
// was sampled, so the totals estimate all live off-heap memory. A heap
// that does not sample gives an empty profile.
func WriteProfile(w io.Writer, h *arena.Heap) error {
	rate := h.ProfileRate()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"},
		},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     int64(rate),
	}
	b := profileBuilder{p: p, locs: map[uintptr]*profile.Location{}, funcs: map[string]*profile.Function{}}
	for _, r := range h.ProfileRecords() {
		scale := 1.0
		if rate > 0 && r.Size > 0 {
			scale = 1 / -math.Expm1(-float64(r.Size)/float64(rate))
		}
		p.Sample = append(p.Sample, &profile.Sample{
			Value:    []int64{int64(math.Round(scale)), int64(math.Round(scale * float64(r.Size)))},
			Location: b.locations(r.Stack),
			NumLabel: map[string][]int64{"bytes": {int64(r.Size)}},
		})
	}
	return p.Write(w)
}

// profileBuilder turns return addresses into pprof locations, one per
// frame, shared between samples.
type profileBuilder struct {
	p     *profile.Profile
	locs  map[uintptr]*profile.Location
	funcs map[string]*profile.Function
}

func (b *profileBuilder) locations(stack []uintptr) []*profile.Location {
	var out []*profile.Location
	frames := runtime.CallersFrames(stack)
	leaf := true
	for {
		f, more := frames.Next()
		internal := strings.HasPrefix(f.Function, internalPrefix) || strings.HasPrefix(f.Function, "runtime.Callers")
		if !(leaf && internal) && f.Function != "" {
			leaf = false
			out = append(out, b.location(f))
		}
		if !more {
			return out
		}
	}
}

func (b *profileBuilder) location(f runtime.Frame) *profile.Location {
	if l, ok := b.locs[f.PC]; ok {
		return l
	}
	fn, ok := b.funcs[f.Function]
	if !ok {
		fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
		b.funcs[f.Function] = fn
		b.p.Function = append(b.p.Function, fn)
	}
	l := &profile.Location{
		ID:      uint64(len(b.p.Location) + 1),
		Address: uint64(f.PC),
		Line:    []profile.Line{{Function: fn, Line: int64(f.Line)}},
	}
	b.locs[f.PC] = l
	b.p.Location = append(b.p.Location, l)
	return l
}
