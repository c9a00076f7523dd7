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
	// A trace can ask for more than the machine has: without a limit the
	// kernel's OOM killer, not a report, would end the replay.
	fs.addMemLimit(memLimitAuto)
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
	limit, note := fs.memoryLimit()
	rep, err := replay(pos[0], bufio.NewReaderSize(f, replayBufBytes), limit, note)
	if err != nil {
		return err
	}
	return rep.write(out.stdout, fs.format)
}

// replay performs the trace in r on a fresh heap limited to memLimit bytes
// (0: none), through one Cache, and reports the heap with the trace's live
// objects still allocated; limitNote says what the limit is, for the
// report and errors.
//
// An allocation the limit refuses stops the replay with an error that
// wraps arena.ErrOutOfMemory: from there on the heap is no longer the
// traced program's, and a report of it would mislead. An allocation no
// heap could serve (ErrInvalidSize: larger than the reservation) is
// counted, as the program that made the trace presumably got an error
// too, and its free skipped.
func replay(name string, r io.Reader, memLimit int64, limitNote string) (*Report, error) {
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
	sum := &Summary{Trace: name, MemoryLimit: limitNote}
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
			case errors.Is(err, arena.ErrOutOfMemory) && !errors.Is(err, arena.ErrInvalidSize):
				return nil, fmt.Errorf("%s: line %d: allocating %d bytes: %w; memory limit %s",
					name, op.Line, op.Size, err, limitNote)
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
