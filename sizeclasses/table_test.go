package sizeclasses

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offheap/offheap/sizeclasses/internal/classgen"
)

// TestTableUpToDate fails when table.go is not what the generator makes
// from the current rules. Fix it with go generate.
func TestTableUpToDate(t *testing.T) {
	want, err := classgen.Generate()
	if err != nil {
		t.Fatalf("generator: %v", err)
	}
	got, err := os.ReadFile("table.go")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("table.go is stale; run go generate ./sizeclasses (-generated +checked in):\n%s", diff)
	}
}

// TestGeneratorConstants checks that the generator's rules and the
// package's exported constants agree.
func TestGeneratorConstants(t *testing.T) {
	if classgen.PageShift != PageShift || classgen.PageSize != PageSize || classgen.MaxSmallSize != MaxSmallSize {
		t.Errorf("classgen page/size constants (%d, %d, %d) differ from the package's (%d, %d, %d)",
			classgen.PageShift, classgen.PageSize, classgen.MaxSmallSize, PageShift, PageSize, MaxSmallSize)
	}
	if classgen.SmallSizeDiv != smallSizeDiv || classgen.SmallSizeMax != smallSizeMax || classgen.LargeSizeDiv != largeSizeDiv {
		t.Errorf("classgen lookup steps differ from the table's")
	}
	if maxObjectsPerSpan > classgen.MaxObjects {
		t.Errorf("maxObjectsPerSpan = %d, above the rule's %d", maxObjectsPerSpan, classgen.MaxObjects)
	}
	classes, err := classgen.Classes()
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) != NumClasses {
		t.Fatalf("generator has %d classes, table %d", len(classes), NumClasses)
	}
	for c := 1; c < NumClasses; c++ {
		g := classes[c]
		if Size(uint8(c)) != uintptr(g.Size) || Pages(uint8(c)) != uintptr(g.Pages) ||
			Objects(uint8(c)) != uintptr(g.Objects()) || Align(uint8(c)) != uintptr(g.Align()) {
			t.Errorf("class %d: table (%d, %d, %d, %d), generator (%d, %d, %d, %d)", c,
				Size(uint8(c)), Pages(uint8(c)), Objects(uint8(c)), Align(uint8(c)),
				g.Size, g.Pages, g.Objects(), g.Align())
		}
	}
}
