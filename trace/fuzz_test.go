package trace

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that the parser never panics, that every error names a
// line within the input, and that a trace it accepts survives a round trip
// through Op.String.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Header + "\na 0 24\nf 0\n"))
	f.Add([]byte("offheap-trace v2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := Parse(strings.NewReader(string(data)))
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && (se.Line < 1 || se.Line > lines) {
				t.Fatalf("error %v names a line outside 1..%d", err, lines)
			}
			return
		}
		var b strings.Builder
		b.WriteString(Header + "\n")
		for _, op := range ops {
			if op.Line < 2 || op.Line > lines {
				t.Fatalf("op %v on line %d of %d", op, op.Line, lines)
			}
			b.WriteString(op.String() + "\n")
		}
		again, err := Parse(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(again) != len(ops) {
			t.Fatalf("re-parse: %d ops, want %d", len(again), len(ops))
		}
		for i := range ops {
			a, o := again[i], ops[i]
			a.Line, o.Line = 0, 0
			if a != o {
				t.Fatalf("re-parse op %d: %v, want %v", i, a, o)
			}
		}
	})
}
