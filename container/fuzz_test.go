package container

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/offheap/offheap/arena"
)

// FuzzBytesMap runs a sequence of operations decoded from the input on a
// BytesMap and on a Go map model, and compares them after every operation
// that answers something, and in full (with go-cmp) every few operations
// and at the end. The first byte picks the heap: unlimited, or limited to
// a few MiB so that Sets fail with arena.ErrOutOfMemory, which must leave
// the map equal to the model. Bulk operations insert and delete runs of
// keys, to push the table through growth and shrinking within one input.
// After Close the Heap must hold nothing.
func FuzzBytesMap(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{data: data}
		cfg := arena.Config{Reserve: 64 << 20, ScavengeDelay: -1}
		if r.byte()%4 == 0 {
			cfg.MemoryLimit = 4 << 20
		}
		h, err := arena.NewHeap(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		m, err := NewBytesMap(h, int(r.byte()%64))
		if err != nil {
			t.Fatal(err)
		}
		model := map[string]string{}
		oom := 0
		set := func(k, v []byte, str bool) {
			var err error
			if str {
				err = m.SetString(string(k), v)
			} else {
				err = m.Set(k, v)
			}
			switch {
			case err == nil:
				model[string(k)] = string(v)
			case errors.Is(err, arena.ErrOutOfMemory) && cfg.MemoryLimit != 0:
				oom++
			default:
				t.Fatalf("Set(%q, %d bytes): %v", k, len(v), err)
			}
		}
		for n := 0; n < fuzzMaxOps && r.more(); n++ {
			switch op := r.byte() % opCount; op {
			case opSet, opSetString:
				set(r.key(), r.value(), op == opSetString)
			case opSetBig:
				set(r.key(), bytes.Repeat([]byte{r.byte()}, int(r.byte())<<12), false)
			case opGet:
				k := r.key()
				got, ok := m.Get([]byte("prefix"), k)
				want, wok := model[string(k)]
				if ok != wok || string(got) != "prefix"+want {
					t.Fatalf("Get(%q) = %q, %v; model %q, %v", k, got, ok, want, wok)
				}
				gs, ok := m.GetString(nil, string(k))
				if ok != wok || string(gs) != want {
					t.Fatalf("GetString(%q) = %q, %v; model %q, %v", k, gs, ok, want, wok)
				}
			case opView:
				k := r.key()
				want, wok := model[string(k)]
				var got string
				if m.View(k, func(v []byte) { got = string(v) }) != wok || got != want {
					t.Fatalf("View(%q) = %q; model %q, %v", k, got, want, wok)
				}
				if m.Has(k) != wok {
					t.Fatalf("Has(%q) != %v", k, wok)
				}
			case opDelete:
				k := r.key()
				_, wok := model[string(k)]
				if m.Delete(k) != wok {
					t.Fatalf("Delete(%q) != %v", k, wok)
				}
				delete(model, string(k))
			case opBulkSet:
				base, cnt := int(r.byte()), int(r.byte())*4
				for i := range cnt {
					set(fmt.Appendf(nil, "bulk%d", base*256+i), fmt.Appendf(nil, "v%d", i), false)
				}
			case opBulkDelete:
				// Delete most of the model, leaving one key in frac.
				frac := int(r.byte()%8) + 2
				i := 0
				for k := range model {
					if i++; i%frac != 0 {
						if !m.Delete([]byte(k)) {
							t.Fatalf("bulk Delete(%q) missed", k)
						}
						delete(model, k)
					}
				}
			case opRangeStop:
				stop, seen := int(r.byte()), 0
				m.Range(func(k, v []byte) bool {
					if want, ok := model[string(k)]; !ok || want != string(v) {
						t.Fatalf("Range: %q → %q, model %q %v", k, v, want, ok)
					}
					seen++
					return seen < stop
				})
				if seen != min(stop, len(model)) && !(stop == 0 && seen == min(1, len(model))) {
					t.Fatalf("Range stopping after %d visited %d of %d", stop, seen, len(model))
				}
			case opDefrag:
				// Defrag is a writer that moves entries: whatever it moves,
				// the contents stay the model's (checked every 16 ops and
				// at the end). Under a limited heap it may run out of
				// memory mid-step, which must change nothing either.
				per, steps := int(r.byte()%32)+1, int(r.byte()%8)+1
				before := m.MemStats().DefragMoved
				total := 0
				for range steps {
					n, err := m.Defrag(per)
					if err != nil && !(errors.Is(err, arena.ErrOutOfMemory) && cfg.MemoryLimit != 0) {
						t.Fatalf("Defrag(%d): %v", per, err)
					}
					if n > per {
						t.Fatalf("Defrag(%d) moved %d", per, n)
					}
					total += n
				}
				if got := m.MemStats().DefragMoved - before; got != uint64(total) {
					t.Fatalf("DefragMoved grew by %d, Defrag returned %d", got, total)
				}
			}
			if m.Len() != len(model) {
				t.Fatalf("op %d: Len %d, model %d", n, m.Len(), len(model))
			}
			if n%16 == 15 {
				compareModel(t, m, model)
			}
			if st := m.MemStats(); st.MaxMoved > moveEntries || st.Entries != len(model) {
				t.Fatalf("MemStats %+v with %d in the model", st, len(model))
			}
		}
		compareModel(t, m, model)
		if oom > 0 {
			t.Logf("%d Sets refused for want of memory; %d entries, %+v", oom, len(model), m.MemStats())
		}
		if err := h.Verify(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if st := h.Stats(); st.HeapObjects != 0 || st.HeapAlloc != 0 {
			t.Fatalf("after Close the heap holds %d objects, %d bytes (%d Sets refused)", st.HeapObjects, st.HeapAlloc, oom)
		}
	})
}

// compareModel compares the whole map, read through Range, with the model.
func compareModel(t *testing.T, m *BytesMap, model map[string]string) {
	t.Helper()
	got := make(map[string]string, m.Len())
	m.Range(func(k, v []byte) bool {
		if _, dup := got[string(k)]; dup {
			t.Fatalf("Range visited %q twice", k)
		}
		got[string(k)] = string(v)
		return true
	})
	if d := cmp.Diff(model, got); d != "" {
		t.Fatalf("map differs from the model (-model +map):\n%s", d)
	}
}

const fuzzMaxOps = 300

// Operations: the first byte of each step picks one, modulo opCount.
const (
	opSet        = iota // key, value
	opSetString         // key, value
	opSetBig            // key, fill byte, length/4096
	opGet               // key
	opView              // key
	opDelete            // key
	opBulkSet           // base, count/4
	opBulkDelete        // keep one in 2..9
	opRangeStop         // stop after n
	opDefrag            // entries per step - 1, steps
	opCount
)

type fuzzReader struct {
	data []byte
}

func (r *fuzzReader) more() bool { return len(r.data) > 0 }

func (r *fuzzReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

// key reads a key from a small space (so operations meet the same keys
// again): 64 short keys, some of them empty or sharing prefixes, and
// bulk keys.
func (r *fuzzReader) key() []byte {
	b := r.byte()
	switch {
	case b < 8:
		return bytes.Repeat([]byte{'k'}, int(b)) // "", "k", "kk", ...
	case b < 200:
		return fmt.Appendf(nil, "key%d", b%56)
	default:
		return fmt.Appendf(nil, "bulk%d", int(b-200)+int(r.byte())*256)
	}
}

// value reads a length (0..255) and a fill byte.
func (r *fuzzReader) value() []byte {
	n := int(r.byte())
	return bytes.Repeat([]byte{r.byte()}, n)
}

// fuzzSeeds are hand-made inputs covering each operation, growth
// through bulk inserts, shrinking through bulk deletes, and the limited
// heap running out.
func fuzzSeeds() [][]byte {
	return [][]byte{
		{1, 0, opSet, 9, 3, 'a', opGet, 9, opView, 9, opDelete, 9, opGet, 9},
		{1, 0, opSet, 0, 0, 0, opSetString, 0, 5, 'x', opGet, 0, opDelete, 0, opView, 0},
		{1, 10, opBulkSet, 0, 255, opRangeStop, 7, opBulkDelete, 0, opGet, 203, 0, opBulkSet, 1, 200, opBulkDelete, 5},
		{0, 0, opSetBig, 10, 'b', 200, opSetBig, 11, 'c', 200, opSetBig, 12, 'd', 255, opSetBig, 13, 'e', 255,
			opSetBig, 14, 'f', 255, opSetBig, 15, 'g', 255, opGet, 10, opBulkSet, 3, 255, opDelete, 12, opSetBig, 12, 'h', 100},
		{1, 63, opSet, 20, 200, 'q', opSet, 20, 200, 'r', opSet, 20, 10, 's', opRangeStop, 0, opBulkDelete, 7},
		// Grow, scatter, defragment in small steps, mid-resize and after.
		{1, 0, opBulkSet, 0, 255, opBulkSet, 1, 255, opDefrag, 3, 7, opBulkDelete, 8, opDefrag, 0, 7,
			opDefrag, 31, 7, opBulkSet, 2, 100, opDefrag, 5, 7, opGet, 203, 0, opDefrag, 31, 7, opDefrag, 31, 7},
		{0, 0, opBulkSet, 0, 255, opBulkDelete, 8, opSetBig, 10, 'b', 255, opDefrag, 31, 7, opDefrag, 31, 7},
	}
}
