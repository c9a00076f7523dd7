package bench

import (
	"fmt"
	"time"
)

// Params holds every workload's tunables. Defaults returns the full-run
// values, Quick the scaled-down ones; cmd/arenabench makes each field a
// flag (ParamSpecs names them) and hands the same values, as name=value
// arguments, to the C driver and to the GOEXPERIMENT=arenas binary, so
// every allocator runs the same shapes with the same sizes.
type Params struct {
	Duration time.Duration // timed phase of each throughput run
	Seed     uint64        // mixed into every worker's RNG

	LarsonLive       int // objects per thread, small live set
	LarsonBigLive    int // objects per thread, ~1 GiB live set at 2 threads
	LarsonBigThreads int // larson-big runs at this thread count only
	LarsonMin        int // smallest object
	LarsonMax        int // largest object
	LarsonRound      int // operations a thread lives for before a new thread inherits its objects

	XmallocSize  int // object size handed from producers to consumers
	XmallocBatch int // objects per hand-over batch
	XmallocQueue int // batches in flight before producers wait

	ScratchSize  int // object size of cache-scratch and cache-thrash
	ScratchIters int // objects each thread allocates and frees
	ScratchReps  int // writes over each object's bytes while it is live

	MstressLive     int // objects per thread
	MstressTransfer int // slots shared by all threads to swap objects through

	AllocTestLive int // objects per thread
	AllocTestMin  int // smallest object
	AllocTestMax  int // largest object

	SimpleBatch int // objects allocated before the batch is freed

	ThreadLive int // objects per thread (glibc's working set)
	ThreadMin  int // smallest object
	ThreadMax  int // largest object
}

// The defaults, with their reasons.
const (
	// DefaultDuration: long enough that thread start and the stop check
	// are noise, short enough that 3 thread counts × 13 shapes × 8
	// allocators stay near five minutes.
	DefaultDuration = time.Second
	// DefaultSeed is arbitrary; fixed so runs are repeatable.
	DefaultSeed = 42

	// DefaultLarsonLive: mimalloc-bench's larson-sized small live set.
	DefaultLarsonLive = 5000
	// DefaultLarsonBigLive: 1,000,000 objects averaging 504 B is ~0.5 GiB
	// a thread, ~1 GiB at DefaultLarsonBigThreads: the live set a
	// service keeps in a cache, where the Go GC's marking cost shows.
	DefaultLarsonBigLive    = 1_000_000
	DefaultLarsonBigThreads = 2
	// Larson's 8–1000 B is the small-object range servers allocate most.
	DefaultLarsonMin = 8
	DefaultLarsonMax = 1000
	// DefaultLarsonRound: a thread hands its objects to a new thread every
	// 50,000 operations, so frees of another thread's objects and the
	// cost of a fresh thread cache (a new Cache) are part of the shape.
	DefaultLarsonRound = 50_000

	// xmalloc-test's 64-byte objects.
	DefaultXmallocSize = 64
	// 256 objects a batch amortise the queue's lock as xmalloc's
	// block lists do; 64 batches (16,384 objects) bound what is in flight.
	DefaultXmallocBatch = 256
	DefaultXmallocQueue = 64

	// cache-scratch/thrash use 8-byte objects: eight per cache line, so
	// an allocator that gives neighbours to different threads shares
	// lines between them.
	DefaultScratchSize = 8
	// 1000 objects × 20,000 passes ≈ 20–50 ms of writes a thread: the
	// writes, not the allocation, dominate, as in the original.
	DefaultScratchIters = 1000
	DefaultScratchReps  = 20_000

	// mstress: a few hundred live objects a thread and a shared transfer
	// array, as mimalloc's stress test keeps.
	DefaultMstressLive     = 500
	DefaultMstressTransfer = 1000

	// alloc-test: a 10,000-object working set of 8 B–1 KiB objects.
	DefaultAllocTestLive = 10_000
	DefaultAllocTestMin  = 8
	DefaultAllocTestMax  = 1024

	// glibc-simple: batches of 1000, the upper end of glibc's 25–1600.
	DefaultSimpleBatch = 1000

	// glibc-thread: glibc's working set of 1024 blocks of 4 B–32 KiB.
	DefaultThreadLive = 1024
	DefaultThreadMin  = 4
	DefaultThreadMax  = 32 << 10
)

// Quick mode divides the work so a whole comparison takes a minute or two.
const (
	QuickDuration      = 100 * time.Millisecond
	QuickLarsonBigLive = 20_000 // ~10 MiB a thread: still bigger than any cache
	QuickScratchReps   = 2000
)

// Defaults returns the full-run parameters.
func Defaults() Params {
	return Params{
		Duration: DefaultDuration, Seed: DefaultSeed,
		LarsonLive: DefaultLarsonLive, LarsonBigLive: DefaultLarsonBigLive,
		LarsonBigThreads: DefaultLarsonBigThreads,
		LarsonMin:        DefaultLarsonMin, LarsonMax: DefaultLarsonMax, LarsonRound: DefaultLarsonRound,
		XmallocSize: DefaultXmallocSize, XmallocBatch: DefaultXmallocBatch, XmallocQueue: DefaultXmallocQueue,
		ScratchSize: DefaultScratchSize, ScratchIters: DefaultScratchIters, ScratchReps: DefaultScratchReps,
		MstressLive: DefaultMstressLive, MstressTransfer: DefaultMstressTransfer,
		AllocTestLive: DefaultAllocTestLive, AllocTestMin: DefaultAllocTestMin, AllocTestMax: DefaultAllocTestMax,
		SimpleBatch: DefaultSimpleBatch,
		ThreadLive:  DefaultThreadLive, ThreadMin: DefaultThreadMin, ThreadMax: DefaultThreadMax,
	}
}

// Quick returns the quick-mode parameters: Defaults with the duration,
// the big live set and the false-sharing writes cut down.
func Quick() Params {
	p := Defaults()
	p.Duration = QuickDuration
	p.LarsonBigLive = QuickLarsonBigLive
	p.ScratchReps = QuickScratchReps
	return p
}

// ParamSpec names one integer parameter for flags and for the C driver.
type ParamSpec struct {
	Name  string // flag name and the C driver's key
	Usage string
	Ptr   *int
}

// Specs lists p's integer parameters (Duration and Seed are separate
// flags: they are not ints).
func (p *Params) Specs() []ParamSpec {
	return []ParamSpec{
		{"larson-live", "larson: objects per thread (small live set)", &p.LarsonLive},
		{"larson-big-live", "larson-big: objects per thread (default ~1 GiB at 2 threads)", &p.LarsonBigLive},
		{"larson-big-threads", "larson-big: the one thread count it runs at", &p.LarsonBigThreads},
		{"larson-min", "larson: smallest object size in bytes", &p.LarsonMin},
		{"larson-max", "larson: largest object size in bytes", &p.LarsonMax},
		{"larson-round", "larson: operations before a new thread inherits a thread's objects", &p.LarsonRound},
		{"xmalloc-size", "xmalloc: object size in bytes", &p.XmallocSize},
		{"xmalloc-batch", "xmalloc: objects per producer→consumer batch", &p.XmallocBatch},
		{"xmalloc-queue", "xmalloc: batches in flight before producers wait", &p.XmallocQueue},
		{"scratch-size", "cache-scratch/thrash: object size in bytes", &p.ScratchSize},
		{"scratch-iters", "cache-scratch/thrash: objects each thread allocates and frees", &p.ScratchIters},
		{"scratch-reps", "cache-scratch/thrash: write passes over each object", &p.ScratchReps},
		{"mstress-live", "mstress: objects per thread", &p.MstressLive},
		{"mstress-transfer", "mstress: shared transfer slots", &p.MstressTransfer},
		{"alloctest-live", "alloc-test: objects per thread", &p.AllocTestLive},
		{"alloctest-min", "alloc-test: smallest object size", &p.AllocTestMin},
		{"alloctest-max", "alloc-test: largest object size", &p.AllocTestMax},
		{"simple-batch", "glibc-simple: objects per batch", &p.SimpleBatch},
		{"thread-live", "glibc-thread: objects per thread", &p.ThreadLive},
		{"thread-min", "glibc-thread: smallest object size", &p.ThreadMin},
		{"thread-max", "glibc-thread: largest object size", &p.ThreadMax},
	}
}

// Args renders p as the name=value arguments the C driver and the
// arenas binary take.
func (p *Params) Args() []string {
	args := []string{
		fmt.Sprintf("duration-ms=%d", p.Duration.Milliseconds()),
		fmt.Sprintf("seed=%d", p.Seed),
	}
	for _, s := range p.Specs() {
		args = append(args, fmt.Sprintf("%s=%d", s.Name, *s.Ptr))
	}
	return args
}

// Validate rejects parameters a workload cannot run with.
func (p *Params) Validate() error {
	if p.Duration <= 0 {
		return fmt.Errorf("duration %v: must be positive", p.Duration)
	}
	for _, s := range p.Specs() {
		if *s.Ptr < 1 {
			return fmt.Errorf("%s=%d: must be at least 1", s.Name, *s.Ptr)
		}
	}
	for _, r := range [][3]any{
		{"larson", p.LarsonMin, p.LarsonMax},
		{"alloctest", p.AllocTestMin, p.AllocTestMax},
		{"thread", p.ThreadMin, p.ThreadMax},
	} {
		if r[1].(int) > r[2].(int) {
			return fmt.Errorf("%s-min %d > %s-max %d", r[0], r[1], r[0], r[2])
		}
	}
	return nil
}
