// Package addr turns addresses of memory outside the Go heap into pointers,
// for the packages that keep their data in mmap'd memory (pages, spans,
// arena). It is the one place that does so.
package addr

import "unsafe"

// Pointer returns a as an unsafe.Pointer. a must be an address in memory
// the Go runtime does not manage (an mmap'd range that outlives every use
// of the result): the garbage collector ignores such a pointer, so the
// usual rule that a uintptr cannot keep an object alive does not apply.
//
// It reinterprets the word in place rather than converting
// unsafe.Pointer(a), which go vet rightly flags as a possible misuse of
// unsafe.Pointer, and rather than unsafe.Add(nil, a), which is pointer
// arithmetic on nil: the result is the same address either way.
func Pointer(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }
