package trace

import "fmt"

// Header is the first line of every version 1 trace.
const Header = "offheap-trace v1"

// headerMagic is the header's first field, shared by every version, so a
// later version can be told apart from garbage.
const headerMagic = "offheap-trace"

// MaxSize is the largest allocation size a trace may hold (1 TiB): larger
// sizes are rejected as bad numbers rather than passed to an allocator.
const MaxSize = 1 << 40

// Kind is the kind of an operation.
type Kind byte

// The operation kinds, spelled as in the format.
const (
	Alloc Kind = 'a'
	Free  Kind = 'f'
)

// String returns the kind's letter.
func (k Kind) String() string { return string(rune(k)) }

// Op is one operation of a trace.
type Op struct {
	Kind Kind
	ID   uint64
	Size int // Alloc only
	Line int // line number in the trace it was parsed from, 1-based; 0 if not parsed
}

// String formats the operation as a trace line, without the newline.
func (o Op) String() string {
	if o.Kind == Alloc {
		return fmt.Sprintf("a %d %d", o.ID, o.Size)
	}
	return fmt.Sprintf("f %d", o.ID)
}

// SyntaxError is a malformed line of a trace.
type SyntaxError struct {
	Line int    // 1-based
	Msg  string // what is wrong, without the line number
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }
