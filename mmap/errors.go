package mmap

import "fmt"

// OpError reports a failed operation on a range of a mapping. Addr and Len
// are the range the caller asked for (for OpReserve, Addr is 0 and Len the
// requested size). Err is one of the package's named errors, ErrInjected,
// or the kernel's errno (a unix.Errno), possibly wrapped.
type OpError struct {
	Op   Op
	Addr uintptr
	Len  uintptr
	Err  error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("mmap: %s [%#x, %#x) (%d bytes): %v", e.Op, e.Addr, e.Addr+e.Len, e.Len, e.Err)
}

// Unwrap returns the underlying error so errors.Is and errors.As see it.
func (e *OpError) Unwrap() error { return e.Err }

var opNames = [...]string{
	OpReserve:  "reserve",
	OpCommit:   "commit",
	OpDecommit: "decommit",
	OpRelease:  "release",
	OpHugePage: "hugepage",
	OpName:     "name",
}

// numOps is the number of Op values; FaultInjector keeps one counter each.
const numOps = len(opNames)

// String returns the operation's lower-case name, e.g. "commit".
func (op Op) String() string {
	if op >= 0 && int(op) < numOps {
		return opNames[op]
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// String returns the mode's name, e.g. "dontneed".
func (m DecommitMode) String() string {
	switch m {
	case DecommitDontNeed:
		return "dontneed"
	case DecommitFree:
		return "free"
	case DecommitStrict:
		return "strict"
	}
	return fmt.Sprintf("DecommitMode(%d)", int(m))
}
