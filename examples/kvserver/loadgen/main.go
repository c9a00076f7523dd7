// Command loadgen drives kvserver for bench.sh: it preloads keys with
// values of mixed sizes and deletes a fraction of them, over several
// pipelined connections. Keys are "key:%012d", the names redis-benchmark
// -r uses, so its SET/GET phase hits the preloaded keys.
//
//	loadgen load -addr 127.0.0.1:6380 -n 1000000 -min 64 -max 512
//	loadgen del  -addr 127.0.0.1:6380 -n 1000000 -keep 10
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offheap/offheap/examples/kvserver/internal/resp"
)

// delBatch is how many keys one DEL command names: large enough to cut the
// per-command cost, small enough that one DEL holds no shard lock for long
// (the server takes a shard's lock once per key anyway).
const delBatch = 64

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:6380", "server address")
	n := fs.Int("n", 100000, "keys 0..n-1")
	minSize := fs.Int("min", 64, "load: smallest value, bytes")
	maxSize := fs.Int("max", 512, "load: largest value, bytes")
	keep := fs.Int("keep", 10, "del: keep every keep-th key (key i is kept when i%keep == 0), delete the rest")
	conns := fs.Int("conns", 8, "connections")
	pipeline := fs.Int("pipeline", 256, "commands in flight per connection")
	fs.Parse(os.Args[2:])
	if *n < 0 || *minSize < 0 || *maxSize < *minSize || *keep < 1 || *conns < 1 || *pipeline < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: bad flags")
		os.Exit(2)
	}

	var gen func(i int, args [][]byte) [][]byte
	var want func(r resp.Reply) bool
	var ids []int // the key ids each connection walks, in order
	keys := 0     // keys the commands name
	var bytesSent atomic.Int64
	switch mode {
	case "load":
		gen = func(i int, args [][]byte) [][]byte {
			v := Value(i, *minSize, *maxSize)
			bytesSent.Add(int64(len(Key(i)) + len(v)))
			return append(args[:0], []byte("SET"), Key(i), v)
		}
		want = func(r resp.Reply) bool { return r.Kind == '+' }
		for i := 0; i < *n; i++ {
			ids = append(ids, i)
		}
		keys = *n
	case "del":
		// One DEL per delBatch doomed keys; ids holds each batch's first
		// doomed key and gen collects the batch.
		doomed := make([]int, 0, *n)
		for i := 0; i < *n; i++ {
			if i%*keep != 0 {
				doomed = append(doomed, i)
			}
		}
		keys = len(doomed)
		batches := make([][]int, 0, len(doomed)/delBatch+1)
		for len(doomed) > 0 {
			k := min(delBatch, len(doomed))
			batches = append(batches, doomed[:k])
			doomed = doomed[k:]
		}
		gen = func(b int, args [][]byte) [][]byte {
			args = append(args[:0], []byte("DEL"))
			for _, i := range batches[b] {
				args = append(args, Key(i))
			}
			return args
		}
		want = func(r resp.Reply) bool { return r.Kind == ':' }
		for b := range batches {
			ids = append(ids, b)
		}
	default:
		usage()
	}

	start := time.Now()
	var wg sync.WaitGroup
	var done atomic.Int64
	errs := make(chan error, *conns)
	per := (len(ids) + *conns - 1) / *conns
	for c := 0; c < *conns; c++ {
		lo, hi := min(c*per, len(ids)), min((c+1)*per, len(ids))
		wg.Add(1)
		go func(part []int) {
			defer wg.Done()
			if err := drive(*addr, part, *pipeline, gen, want, &done); err != nil {
				errs <- err
			}
		}(ids[lo:hi])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	el := time.Since(start)
	// bench.sh reads the keys/s figure: the fields are fixed.
	fmt.Printf("%s: %d commands, %d keys in %.2f s (%.0f keys/s)", mode, done.Load(), keys, el.Seconds(), float64(keys)/el.Seconds())
	if mode == "load" {
		fmt.Printf(", %d key+value bytes", bytesSent.Load())
	}
	fmt.Println()
}

// drive sends the commands for ids on one connection, keeping up to
// pipeline of them in flight, and checks every reply.
func drive(addr string, ids []int, pipeline int, gen func(int, [][]byte) [][]byte, want func(resp.Reply) bool, done *atomic.Int64) error {
	c, err := resp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var args [][]byte
	for len(ids) > 0 {
		k := min(pipeline, len(ids))
		for _, i := range ids[:k] {
			args = gen(i, args)
			c.Send(args...)
		}
		if err := c.Flush(); err != nil {
			return err
		}
		for j := 0; j < k; j++ {
			r, err := c.Receive()
			if err != nil {
				return err
			}
			if !want(r) {
				return fmt.Errorf("unexpected reply %c%q%d", r.Kind, r.Str, r.Int)
			}
		}
		done.Add(int64(k))
		ids = ids[k:]
	}
	return nil
}

// Key is key i's name, as redis-benchmark -r writes it.
func Key(i int) []byte {
	b := make([]byte, 0, 16)
	b = append(b, "key:"...)
	s := strconv.Itoa(i)
	for j := len(s); j < 12; j++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Value is key i's value: a size spread evenly over [min, max] by a hash of
// i, filled with bytes derived from i (so a reader could check them).
func Value(i, minSize, maxSize int) []byte {
	h := mix(uint64(i))
	n := minSize + int(h%uint64(maxSize-minSize+1))
	v := make([]byte, n)
	for j := range v {
		if j%8 == 0 {
			h = mix(h)
		}
		v[j] = 'a' + byte(h>>(8*(j%8)))%26
	}
	return v
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen load|del [-addr A] [-n N] [-min B -max B] [-keep K] [-conns C] [-pipeline P]")
	os.Exit(2)
}
