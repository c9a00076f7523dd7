package trace

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

// recordBufBytes is the Recorder's write buffer: operations reach the
// writer in batches of about this size (and at Flush).
const recordBufBytes = 64 << 10

// AllocFreer is what a Recorder wraps: *arena.Heap and *arena.Cache
// satisfy it.
type AllocFreer interface {
	arena.Allocator
	arena.Freer
}

// Recorder writes every allocation and free made through it to a trace.
// It assigns object ids in allocation order (0, 1, 2, ...) and maps each
// live pointer to its id.
//
// A Recorder is safe for concurrent use. It records operations on its own
// allocator (Alloc, Free) and on any others wrapped with Wrap, all into
// one trace with one id space, so objects may be allocated through one
// wrapped allocator and freed through another, as arena allows for the
// Caches of one Heap. Wrapping does not make an allocator safe for
// concurrent use: a wrapped *arena.Cache still belongs to one goroutine.
//
// Failed allocations are not recorded (a replay would not know what to do
// with them), nor are frees of pointers the Recorder never handed out:
// those go to the allocator untouched, which reports the error.
type Recorder struct {
	a AllocFreer

	mu   sync.Mutex
	w    *bufio.Writer
	ids  map[unsafe.Pointer]uint64
	next uint64
	buf  []byte
	err  error // first write error; sticky
}

// NewRecorder writes the header to w and returns a Recorder of the
// operations on a. Call Flush when done.
func NewRecorder(w io.Writer, a AllocFreer) *Recorder {
	r := &Recorder{a: a, w: bufio.NewWriterSize(w, recordBufBytes), ids: make(map[unsafe.Pointer]uint64)}
	_, r.err = r.w.WriteString(Header + "\n")
	return r
}

// Alloc allocates through the recorded allocator and records it.
func (r *Recorder) Alloc(size int) (unsafe.Pointer, error) { return r.alloc(r.a, size) }

// Free records a free and performs it through the recorded allocator.
func (r *Recorder) Free(p unsafe.Pointer) error { return r.free(r.a, p) }

// Wrap returns an AllocFreer that performs operations on a and records
// them into r's trace.
func (r *Recorder) Wrap(a AllocFreer) AllocFreer { return wrapped{r, a} }

type wrapped struct {
	r *Recorder
	a AllocFreer
}

func (w wrapped) Alloc(size int) (unsafe.Pointer, error) { return w.r.alloc(w.a, size) }
func (w wrapped) Free(p unsafe.Pointer) error            { return w.r.free(w.a, p) }

// alloc allocates first and records after: nobody else can hold the new
// pointer, so nobody can free it, before it is recorded.
func (r *Recorder) alloc(a AllocFreer, size int) (unsafe.Pointer, error) {
	p, err := a.Alloc(size)
	if err != nil {
		return p, err
	}
	r.mu.Lock()
	id := r.next
	r.next++
	r.ids[p] = id
	r.buf = append(r.buf[:0], "a "...)
	r.buf = strconv.AppendUint(r.buf, id, 10)
	r.buf = append(r.buf, ' ')
	r.buf = strconv.AppendInt(r.buf, int64(size), 10)
	r.write()
	r.mu.Unlock()
	return p, nil
}

// free records first and frees after: once freed, the address may be
// handed out again and recorded under a new id at once.
func (r *Recorder) free(a AllocFreer, p unsafe.Pointer) error {
	r.mu.Lock()
	id, ok := r.ids[p]
	if ok {
		delete(r.ids, p)
		r.buf = append(r.buf[:0], "f "...)
		r.buf = strconv.AppendUint(r.buf, id, 10)
		r.write()
	}
	r.mu.Unlock()
	return a.Free(p)
}

// write writes r.buf as a line; r.mu is held.
func (r *Recorder) write() {
	if r.err != nil {
		return
	}
	r.buf = append(r.buf, '\n')
	_, r.err = r.w.Write(r.buf)
}

// Flush writes buffered operations to the writer and returns the first
// write error the Recorder met, if any.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.w.Flush()
	}
	return r.err
}

// Live returns how many objects allocated through the Recorder are live.
func (r *Recorder) Live() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}
