package mmap

import (
	"fmt"
	"testing"
)

// BenchmarkCommitDecommit measures one reuse cycle of a range: Commit,
// touch every page (the kernel supplies zeroed pages), Decommit. The
// touch is included because without it DONTNEED has nothing to drop.
func BenchmarkCommitDecommit(b *testing.B) {
	ps := PageSize()
	sizes := []struct {
		name string
		n    uintptr
	}{{"1page", ps}, {"2MiB", 2 << 20}}
	modes := []DecommitMode{DecommitDontNeed, DecommitFree, DecommitStrict}
	for _, s := range sizes {
		for _, mode := range modes {
			b.Run(fmt.Sprintf("%s/%s", s.name, mode), func(b *testing.B) {
				m := reserve(b, s.n, nil)
				b.SetBytes(int64(s.n))
				for b.Loop() {
					if err := m.Commit(m.Base(), s.n); err != nil {
						b.Fatal(err)
					}
					touch(m.Base(), s.n, 1)
					if err := m.Decommit(m.Base(), s.n, mode); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReserveRelease: the cost of a 64 MiB reservation and its munmap.
func BenchmarkReserveRelease(b *testing.B) {
	for b.Loop() {
		m, err := Reserve(64<<20, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Release(); err != nil {
			b.Fatal(err)
		}
	}
}
