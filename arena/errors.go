package arena

import "errors"

// Errors returned by the arena API. All are usable with errors.Is; most
// reach the caller wrapped with the address or size involved.
var (
	// ErrOutOfMemory: the reservation is full, or MemoryLimit would be
	// passed even after returning free memory to the kernel. The heap stays
	// usable; allocation succeeds again after frees.
	ErrOutOfMemory = errors.New("offheap: out of memory")

	// ErrInvalidPointer: the pointer was not returned by this heap's Alloc,
	// or points inside an object rather than at its start, or (Free[T],
	// FreeSlice) holds an object of another size class than the type's.
	ErrInvalidPointer = errors.New("offheap: invalid pointer")

	// ErrDoubleFree: the object at the pointer is already free.
	ErrDoubleFree = errors.New("offheap: double free")

	// ErrClosed: the Heap, Cache or Region was closed.
	ErrClosed = errors.New("offheap: use after close")

	// ErrInvalidSize: a negative size, or one too large to ever be served.
	ErrInvalidSize = errors.New("offheap: invalid size")

	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("offheap: invalid config")
)
