package arena

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

type plainRecord struct {
	ID    uint64
	Score float64
	Tags  [4]uint32
	Inner struct{ A, B int32 }
}

type withString struct {
	ID   uint64
	Name string
}

type nestedPointer struct {
	ID    uint64
	Inner struct {
		Arr [2]struct{ P *int }
	}
}

func TestCheckType(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		wantSub string // substring of the error naming the offending field
	}{
		{"int", CheckType[int](), ""},
		{"array", CheckType[[16]byte](), ""},
		{"plain struct", CheckType[plainRecord](), ""},
		{"empty struct", CheckType[struct{}](), ""},
		{"zero-length array of pointers", CheckType[[0]*int](), ""},
		{"pointer", CheckType[*int](), "(ptr)"},
		{"string field", CheckType[withString](), ".Name (string)"},
		{"nested pointer", CheckType[nestedPointer](), ".Inner.Arr[].P (ptr)"},
		{"slice", CheckType[[]byte](), "(slice)"},
		{"map", CheckType[map[int]int](), "(map)"},
		{"chan", CheckType[chan int](), "(chan)"},
		{"func", CheckType[func()](), "(func)"},
		{"interface", CheckType[any](), "(interface)"},
		{"unsafe.Pointer", CheckType[unsafe.Pointer](), "(unsafe.Pointer)"},
	}
	for _, c := range cases {
		if c.wantSub == "" {
			if c.err != nil {
				t.Errorf("%s: unexpected %v", c.name, c.err)
			}
			continue
		}
		if !errors.Is(c.err, ErrPointerType) || !strings.Contains(c.err.Error(), c.wantSub) {
			t.Errorf("%s: got %v, want ErrPointerType naming %q", c.name, c.err, c.wantSub)
		}
	}
}

func TestTypedNewAndFree(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	c := h.NewCache()
	defer c.Close()
	for _, a := range []interface {
		Allocator
		Freer
	}{h, c} {
		r, err := New[plainRecord](a)
		if err != nil {
			t.Fatal(err)
		}
		if *r != (plainRecord{}) {
			t.Fatalf("New returned non-zero memory: %+v", *r)
		}
		if uintptr(unsafe.Pointer(r))%unsafe.Alignof(*r) != 0 {
			t.Fatalf("misaligned %p", r)
		}
		r.ID, r.Tags[3] = 7, 9
		if err := Free(a, r); err != nil {
			t.Fatal(err)
		}
		if err := Free(a, r); !errors.Is(err, ErrDoubleFree) {
			t.Fatalf("second Free: %v, want ErrDoubleFree", err)
		}
		if _, err := New[withString](a); !errors.Is(err, ErrPointerType) {
			t.Fatalf("New[withString]: %v, want ErrPointerType", err)
		}
		if err := Free[plainRecord](a, nil); !errors.Is(err, ErrInvalidPointer) {
			t.Fatalf("Free(nil): %v", err)
		}
	}
	if err := h.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestMakeSlice(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	s, err := MakeSlice[uint64](h, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 10 || cap(s) != 1000 {
		t.Fatalf("len %d cap %d", len(s), cap(s))
	}
	s = s[:cap(s)]
	for i := range s {
		if s[i] != 0 {
			t.Fatalf("element %d not zero", i)
		}
		s[i] = uint64(i)
	}
	if err := FreeSlice(h, s[:0]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ l, c int }{{-1, 0}, {2, 1}, {0, -1}, {1, 1 << 62}} {
		if _, err := MakeSlice[uint64](h, c.l, c.c); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("MakeSlice(%d, %d): %v, want ErrInvalidSize", c.l, c.c, err)
		}
	}
	if _, err := MakeSlice[string](h, 1, 1); !errors.Is(err, ErrPointerType) {
		t.Errorf("MakeSlice[string]: %v", err)
	}
	empty, err := MakeSlice[int](h, 0, 0)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("MakeSlice(0,0) = %v, %v", empty, err)
	}
	if err := FreeSlice(h, empty); err != nil {
		t.Fatalf("FreeSlice of empty: %v", err)
	}
	if err := FreeSlice[int](h, nil); !errors.Is(err, ErrInvalidPointer) {
		t.Fatalf("FreeSlice(nil): %v", err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
}

func TestCloneBytesAndString(t *testing.T) {
	h := newTestHeap(t, Config{Reserve: 256 << 20})
	src := []byte("hello, off-heap world")
	b, err := CloneBytes(h, src)
	if err != nil || string(b) != string(src) {
		t.Fatalf("CloneBytes = %q, %v", b, err)
	}
	if h.spans.Lookup(uintptr(unsafe.Pointer(&b[0]))) == nil {
		t.Fatal("clone is not in the heap")
	}
	src[0] = 'j'
	if b[0] != 'h' {
		t.Fatal("clone aliases its source")
	}
	s, err := CloneString(h, "a string")
	if err != nil || s != "a string" {
		t.Fatalf("CloneString = %q, %v", s, err)
	}
	if err := FreeSlice(h, b); err != nil {
		t.Fatal(err)
	}
	if err := FreeString(h, s); err != nil {
		t.Fatal(err)
	}
	e, err := CloneString(h, "")
	if err != nil || e != "" {
		t.Fatalf("CloneString(\"\") = %q, %v", e, err)
	}
	if err := FreeString(h, e); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.HeapObjects != 0 {
		t.Fatalf("%d objects left", st.HeapObjects)
	}
}

func TestMulNoOverflow(t *testing.T) {
	for _, c := range []struct {
		a, b uint64
		ok   bool
	}{{0, 1 << 63, true}, {1 << 32, 1 << 31, true}, {1 << 32, 1 << 32, false}, {3, 1 << 63, false}} {
		p, ok := mulNoOverflow(c.a, c.b)
		if ok != c.ok || (ok && p != c.a*c.b) {
			t.Errorf("mulNoOverflow(%d, %d) = %d, %v", c.a, c.b, p, ok)
		}
	}
}

const unsafeSizeofRecord = unsafe.Sizeof(plainRecord{})
