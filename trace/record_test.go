package trace

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"unsafe"

	"github.com/offheap/offheap/arena"
)

func TestRecorderRoundTrip(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var buf bytes.Buffer
	rec := NewRecorder(&buf, h)

	// Producers allocate through their own caches, consumers free through
	// theirs: one trace, one id space.
	const producers, perProducer = 4, 500
	ch := make(chan unsafe.Pointer, 64)
	var prod, cons sync.WaitGroup
	for i := 0; i < producers; i++ {
		prod.Add(1)
		go func() {
			defer prod.Done()
			c := h.NewCache()
			defer c.Close()
			a := rec.Wrap(c)
			for j := 0; j < perProducer; j++ {
				p, err := a.Alloc(8 + (i*perProducer+j)%5000)
				if err != nil {
					t.Error(err)
					return
				}
				ch <- p
			}
		}()
		cons.Add(1)
		go func() {
			defer cons.Done()
			c := h.NewCache()
			defer c.Close()
			a := rec.Wrap(c)
			n := 0
			for p := range ch {
				if n++; n%10 == 0 {
					continue // keep some alive
				}
				if err := a.Free(p); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	p, _ := rec.Alloc(100)
	if err := rec.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}

	ops, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var allocs, frees int
	for _, op := range ops {
		if op.Kind == Alloc {
			allocs++
		} else {
			frees++
		}
	}
	if allocs != producers*perProducer+1 || allocs-frees != rec.Live() {
		t.Fatalf("trace has %d allocs, %d frees; recorder says %d live", allocs, frees, rec.Live())
	}
	if st := h.Stats(); st.HeapObjects != uint64(rec.Live()) {
		t.Fatalf("heap has %d objects, recorder %d live", st.HeapObjects, rec.Live())
	}
}

func TestRecorderPassesThroughErrors(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var buf bytes.Buffer
	rec := NewRecorder(&buf, h)
	if _, err := rec.Alloc(-1); !errors.Is(err, arena.ErrInvalidSize) {
		t.Fatalf("Alloc(-1) = %v", err)
	}
	p, _ := rec.Alloc(16)
	if err := rec.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := rec.Free(p); err == nil {
		t.Fatal("double free through the recorder succeeded")
	}
	rec.Flush()
	if got, want := buf.String(), Header+"\na 0 16\nf 0\n"; got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRecorderWriteErrorSticks(t *testing.T) {
	h, err := arena.NewHeap(arena.Config{Reserve: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec := NewRecorder(failWriter{}, h)
	for i := 0; i < 10000; i++ { // more than the buffer holds
		p, err := rec.Alloc(64)
		if err != nil {
			t.Fatal(err) // allocation itself must keep working
		}
		rec.Free(p)
	}
	if err := rec.Flush(); !errors.Is(err, errWrite) {
		t.Fatalf("Flush = %v, want %v", err, errWrite)
	}
}
