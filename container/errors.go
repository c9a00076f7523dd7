package container

import (
	"errors"
	"fmt"

	"github.com/offheap/offheap/arena"
)

// Errors returned by the maps. All are usable with errors.Is. Errors from
// the Heap (arena.ErrOutOfMemory, arena.ErrInvalidSize, arena.ErrClosed)
// come back wrapped, so errors.Is(err, arena.ErrOutOfMemory) tells a full
// heap apart from a bad argument.
var (
	// ErrClosed: the map was closed. It wraps arena.ErrClosed, so code
	// that only checks for a closed heap treats a closed map alike.
	ErrClosed = fmt.Errorf("container: map is closed (%w)", arena.ErrClosed)

	// ErrTooLarge: a key or value longer than MaxLen bytes.
	ErrTooLarge = errors.New("container: key or value too large")

	// ErrInvalidArgument: a nil Heap or a negative size hint.
	ErrInvalidArgument = errors.New("container: invalid argument")
)

// ErrPointerType is arena.ErrPointerType: NewMap refuses key and value
// types that hold Go pointers, which must not live in memory the garbage
// collector does not scan.
var ErrPointerType = arena.ErrPointerType

// MaxLen is the longest key or value a BytesMap stores: lengths are kept
// in 32 bits in each entry's header, which keeps the header at 24 bytes.
const MaxLen = 1<<32 - 1
