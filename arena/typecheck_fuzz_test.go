package arena

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// shape is the plain model of a generated type: a leaf kind, or an array
// or struct of shapes.
type shape struct {
	kind   reflect.Kind // leaf kind, or Array / Struct
	elem   *shape       // Array
	n      int          // Array length
	fields []shape      // Struct
}

var leafTypes = []reflect.Type{
	reflect.TypeFor[uint8](), reflect.TypeFor[int64](), reflect.TypeFor[float32](),
	reflect.TypeFor[bool](), reflect.TypeFor[complex128](), reflect.TypeFor[uintptr](),
	reflect.TypeFor[*int](), reflect.TypeFor[string](), reflect.TypeFor[[]byte](),
	reflect.TypeFor[map[int]int](), reflect.TypeFor[chan int](), reflect.TypeFor[func()](),
	reflect.TypeFor[any](), reflect.TypeFor[error](),
}

// decodeShape builds a shape and its reflect.Type from fuzz bytes.
func decodeShape(data []byte, depth int) (shape, reflect.Type, []byte) {
	if len(data) == 0 {
		return shape{kind: reflect.Int}, reflect.TypeFor[int](), data
	}
	op, data := data[0], data[1:]
	switch {
	case op%8 == 6 && depth < 4: // array
		n := int(op/8) % 4
		el, et, rest := decodeShape(data, depth+1)
		return shape{kind: reflect.Array, elem: &el, n: n}, reflect.ArrayOf(n, et), rest
	case op%8 == 7 && depth < 4: // struct
		nf := int(op/8)%4 + 1
		var sh shape
		sh.kind = reflect.Struct
		var fields []reflect.StructField
		for i := range nf {
			fs, ft, rest := decodeShape(data, depth+1)
			data = rest
			sh.fields = append(sh.fields, fs)
			fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: ft})
		}
		return sh, reflect.StructOf(fields), data
	}
	t := leafTypes[int(op)%len(leafTypes)]
	return shape{kind: t.Kind()}, t, data
}

// hasPointers is the model: the rule written out plainly.
func (s shape) hasPointers() bool {
	switch s.kind {
	case reflect.Array:
		return s.n > 0 && s.elem.hasPointers()
	case reflect.Struct:
		for _, f := range s.fields {
			if f.hasPointers() {
				return true
			}
		}
		return false
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan,
		reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	}
	return false
}

func FuzzPointerCheck(f *testing.F) {
	for _, seed := range [][]byte{
		{0}, {6}, {7, 0, 1, 2, 3}, {14, 7, 0, 7}, {7 + 8*3, 0, 1, 6 + 8, 7, 2}, {8 + 6, 7, 4, 5},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sh, typ, _ := decodeShape(data, 0)
		f := newFacts(typ, 0)
		if got, want := f.err != nil, sh.hasPointers(); got != want {
			t.Fatalf("%v: check says pointers=%v (%v), model says %v", typ, got, f.err, want)
		}
		if f.err != nil && !errors.Is(f.err, ErrPointerType) {
			t.Fatalf("%v: error %v does not wrap ErrPointerType", typ, f.err)
		}
		if f.size != typ.Size() {
			t.Fatalf("%v: size %d, want %d", typ, f.size, typ.Size())
		}
	})
}
