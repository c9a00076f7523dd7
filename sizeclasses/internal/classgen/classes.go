package classgen

import (
	"fmt"
	"math/bits"
)

// Class is one row of the table. Class 0 is the "large object" placeholder
// and has all fields zero.
type Class struct {
	Size  int    // bytes per object
	Pages int    // heap pages per span
	Magic uint32 // ObjIndex multiplier: ^uint32(0)/Size + 1
}

// SpanBytes is the span size in bytes.
func (c Class) SpanBytes() int { return c.Pages * PageSize }

// Objects is the number of objects per span.
func (c Class) Objects() int { return c.SpanBytes() / c.Size }

// TailWaste is the unusable space at the end of a span.
func (c Class) TailWaste() int { return c.SpanBytes() % c.Size }

// Align is the alignment every object of the class has when its span is
// page-aligned: the largest power of two dividing Size, at most PageSize.
func (c Class) Align() int {
	return 1 << min(bits.TrailingZeros(uint(c.Size)), PageShift)
}

// pagesFor is the smallest span, in pages, whose tail waste for objects of
// the given size stays within the bound.
func pagesFor(size int) int {
	n := 1
	for (n*PageSize)%size > n*PageSize/MaxTailWasteDiv {
		n++
	}
	return n
}

// Classes computes the table, class 0 included. It returns an error if a
// rule cannot be met; the rules above are chosen so that it never does.
func Classes() ([]Class, error) {
	classes := []Class{{}} // class 0: large objects

	for size := MinAlign; size <= MaxSmallSize; size += alignFor(size) {
		pages := pagesFor(size)
		last := &classes[len(classes)-1]
		// A candidate that needs the same span and fits the same number of
		// objects as the previous class adds nothing: the previous class
		// grows to this size instead.
		if len(classes) > 1 && last.Pages == pages &&
			last.SpanBytes()/last.Size == pages*PageSize/size {
			last.Size = size
			continue
		}
		classes = append(classes, Class{Size: size, Pages: pages})
	}

	// With the object count of a class fixed, its objects can grow into the
	// span's tail, as long as sizes stay on the lookup table's steps. This
	// does not raise the class's own worst-case waste (the span still holds
	// the same objects) and lowers the next class's.
	for i := 1; i < len(classes); i++ {
		c := &classes[i]
		if c.Size <= SmallSizeMax {
			continue // small classes are already dense
		}
		grown := c.SpanBytes() / c.Objects() &^ (LargeSizeDiv - 1)
		if grown > c.Size {
			c.Size = grown
		}
	}

	for i := 1; i < len(classes); i++ {
		c := &classes[i]
		c.Magic = ^uint32(0)/uint32(c.Size) + 1
		if err := check(classes, i); err != nil {
			return nil, err
		}
	}
	return classes, nil
}

// check verifies the rules for class i.
func check(classes []Class, i int) error {
	c := classes[i]
	prev := classes[i-1].Size
	switch {
	case c.Size <= prev:
		return fmt.Errorf("class %d: size %d not above previous %d", i, c.Size, prev)
	case c.Size > MaxSmallSize:
		return fmt.Errorf("class %d: size %d above MaxSmallSize", i, c.Size)
	case c.Size%MinAlign != 0, c.Size >= Align16From && c.Size%16 != 0:
		return fmt.Errorf("class %d: size %d misaligned", i, c.Size)
	case c.Size <= SmallSizeMax && c.Size%SmallSizeDiv != 0,
		c.Size > SmallSizeMax && c.Size%LargeSizeDiv != 0:
		return fmt.Errorf("class %d: size %d off the lookup steps", i, c.Size)
	case c.Objects() > MaxObjects:
		return fmt.Errorf("class %d: %d objects per span", i, c.Objects())
	case c.TailWaste()*MaxTailWasteDiv > c.SpanBytes():
		return fmt.Errorf("class %d: tail waste %d of %d", i, c.TailWaste(), c.SpanBytes())
	}
	// The multiply-shift must divide exactly for every offset in the span.
	for off := 0; off < c.SpanBytes(); off++ {
		if got := int(uint64(off) * uint64(c.Magic) >> 32); got != off/c.Size {
			return fmt.Errorf("class %d: magic %d gives %d for offset %d, want %d",
				i, c.Magic, got, off, off/c.Size)
		}
	}
	return nil
}
