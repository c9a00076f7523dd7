// Package classgen computes the offheap size-class table and renders it as
// Go source. It is used by sizeclasses/mkclasses.go (go generate) and by the
// sizeclasses tests, which check that the checked-in table is current.
package classgen

// The rules the table is built from. They are repeated, in words, at the
// top of the generated file.
const (
	PageShift    = 13             // heap page: 8 KiB
	PageSize     = 1 << PageShift //
	MaxSmallSize = 32 << 10       // largest size with a class

	// MaxTailWasteDiv bounds the tail of a span: span bytes mod object size
	// must be at most span bytes / MaxTailWasteDiv (1/8 = 12.5 %).
	MaxTailWasteDiv = 8

	// MaxObjects is the most objects one span may hold (the span's
	// allocation bitmaps are sized for it).
	MaxObjects = 1024

	// MinAlign is the alignment of the smallest class; every size from
	// Align16From on is a multiple of 16.
	MinAlign    = 8
	Align16From = 16

	// The O(1) lookup uses two tables: one step per SmallSizeDiv bytes up
	// to SmallSizeMax, one step per LargeSizeDiv bytes above it. Class
	// sizes must fall on these steps.
	SmallSizeDiv = 8
	SmallSizeMax = 1024
	LargeSizeDiv = 128

	// MaxLargeAlign caps the growth of the alignment step.
	MaxLargeAlign = 256
)

// alignFor returns the step between candidate sizes just above size, a
// power of two that grows with size so that consecutive candidates are at
// most ~12.5 % apart: 8 for the first class, 16 up to 128, then size/8 at
// each power of two, capped at MaxLargeAlign from 2048 on.
func alignFor(size int) int {
	switch {
	case size < Align16From:
		return MinAlign
	case size < 128:
		return 16
	default:
		a := 1
		for a*2 <= size {
			a *= 2
		}
		return min(a/8, MaxLargeAlign)
	}
}
