package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"github.com/offheap/offheap/arena"
	"github.com/offheap/offheap/trace"
)

// replayBufBytes is the read buffer for trace files.
const replayBufBytes = 256 << 10

func replayCmd(args []string, out *output) error {
	fs := newFlagSet("replay")
	fs.addMemLimit()
	fs.addFormat()
	pos, err := fs.parse(args, out)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one trace file, got %d arguments", len(pos))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := replay(pos[0], bufio.NewReaderSize(f, replayBufBytes), int64(fs.memLimit))
	if err != nil {
		return err
	}
	return rep.write(out.stdout, fs.format)
}

// replay performs the trace in r on a fresh heap, through one Cache, and
// reports the heap with the trace's live objects still allocated.
func replay(name string, r io.Reader, memLimit int64) (*Report, error) {
	h, err := arena.NewHeap(arena.Config{MemoryLimit: memLimit})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	c := h.NewCache()
	defer c.Close()

	p, err := trace.NewParser(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sum := &Summary{Trace: name}
	objs := make(map[uint64]unsafe.Pointer) // nil: the allocation failed
	start := time.Now()
	for {
		op, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch op.Kind {
		case trace.Alloc:
			ptr, err := c.Alloc(op.Size)
			switch {
			case err == nil:
				touch(ptr, op.Size)
				sum.Allocs++
				sum.AllocBytes += uint64(op.Size)
			case errors.Is(err, arena.ErrOutOfMemory):
				sum.OOM++
			default:
				sum.Failed++
			}
			objs[op.ID] = ptr
		case trace.Free:
			ptr := objs[op.ID]
			delete(objs, op.ID)
			if ptr == nil {
				continue
			}
			if err := c.Free(ptr); err != nil {
				return nil, fmt.Errorf("%s: line %d: %w", name, op.Line, err)
			}
			sum.Frees++
		}
	}
	sum.Duration = time.Since(start)
	phase := Phase{Label: "end of trace"}
	phase.Snapshot = snapshotOf(h)
	for _, ptr := range objs {
		if ptr != nil {
			c.Free(ptr)
		}
	}
	return &Report{
		Title:   fmt.Sprintf("offheap: replay of %s (%d live objects at the end)", name, p.Live()),
		Summary: sum,
		Phases:  []Phase{phase},
	}, nil
}

// touch writes into each kernel page of the object, as the program that
// made the trace presumably did.
func touch(p unsafe.Pointer, size int) {
	b := unsafe.Slice((*byte)(p), size)
	for i := 0; i < size; i += touchStride {
		b[i] = 1
	}
}
