package arena

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// ErrPointerType: the type holds Go pointers, which must not live in memory
// the garbage collector does not scan.
var ErrPointerType = errors.New("offheap: type contains Go pointers")

// typeFacts is what the typed API needs to know about a type, computed once.
type typeFacts struct {
	key  uintptr // the runtime's descriptor of *T (see factsOf)
	size uintptr
	err  error // nil, or ErrPointerType naming the field path
}

// typeMemoSize is the number of slots of the type memo: a direct-mapped
// cache, so a lookup is one atomic load and one compare; a collision only
// costs a recomputation.
const typeMemoSize = 256

// typeMemo caches typeFacts by type. It is process-wide on purpose: it
// holds facts about Go types, which are the same for every Heap, and no
// Heap's state. Entries are immutable once stored.
var typeMemo [typeMemoSize]atomic.Pointer[typeFacts]

// factsOf returns the facts for T. The memo key is the type word of an
// interface holding a *T: a constant the compiler materialises, unique per
// type, so a hit costs no reflection at all.
func factsOf[T any]() *typeFacts {
	e := any((*T)(nil))
	key := (*[2]uintptr)(unsafe.Pointer(&e))[0]
	slot := &typeMemo[(key>>4^key>>12)%typeMemoSize]
	if f := slot.Load(); f != nil && f.key == key {
		return f
	}
	f := newFacts(reflect.TypeFor[T](), key)
	slot.Store(f)
	return f
}

// newFacts computes the facts for t.
func newFacts(t reflect.Type, key uintptr) *typeFacts {
	f := &typeFacts{key: key, size: t.Size()}
	if path, ok := pointerPath(t, t.String()); ok {
		f.err = fmt.Errorf("%w: %s holds %s", ErrPointerType, t, path)
	}
	return f
}

// pointerPath reports whether t contains a Go pointer at any depth and, if
// so, the path to the first one (for example "T.Inner.Name (string)").
func pointerPath(t reflect.Type, path string) (string, bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan,
		reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return fmt.Sprintf("%s (%s)", path, t.Kind()), true
	case reflect.Array:
		if t.Len() == 0 {
			return "", false
		}
		return pointerPath(t.Elem(), path+"[]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p, ok := pointerPath(f.Type, path+"."+f.Name); ok {
				return p, true
			}
		}
	}
	return "", false
}

// CheckType returns nil if values of type T may live in offheap memory, and
// otherwise an error wrapping ErrPointerType that names the first field
// holding a Go pointer.
func CheckType[T any]() error { return factsOf[T]().err }
