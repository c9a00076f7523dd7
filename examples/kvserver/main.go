// Command kvserver is a small Redis-protocol cache whose keys live either
// in Go maps (-store goheap) or off the Go heap, in container.BytesMaps on
// one arena.Heap (-store offheap). It exists to compare the two under the
// same load: see README.md and bench.sh.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/offheap/offheap/arena/arenahttp"
)

// mutexProfileRate: with -debug, one contention event in this many is
// sampled for /debug/pprof/mutex.
const mutexProfileRate = 100

func main() {
	addr := flag.String("addr", "127.0.0.1:6380", "listen address (loopback by default: the server has no authentication)")
	kind := flag.String("store", "offheap", "where keys live: goheap (Go maps) or offheap (container.BytesMap on an arena.Heap)")
	shards := flag.Int("shards", defaultShards, "number of shards, each one map behind one mutex (rounded up to a power of two)")
	sizeHint := flag.Int("sizehint", 0, "expected number of keys: maps are sized for it up front so they do not grow under load")
	memLimit := flag.String("memlimit", "0", "offheap: hard cap on the arena's committed memory; goheap: the Go soft memory limit (GOMEMLIMIT). 0: none. Suffixes K, M, G, T (powers of 1024)")
	retainFlag := flag.String("retain", "", "offheap: free memory the scavenger keeps committed for reuse besides 10 % of the in-use bytes (suffixes as -memlimit; 0: none; empty: the arena's default, 64M)")
	activeDefrag := flag.Bool("activedefrag", true, "offheap: move surviving entries out of sparse spans in the background after mass deletes, so their memory can go back to the kernel (see defrag.go)")
	debugAddr := flag.String("debug", "", "if set, serve net/http/pprof (/debug/pprof/) and, for offheap, arenahttp (/debug/offheap/) on this address, e.g. 127.0.0.1:6060")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kvserver: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	limit, err := parseBytes(*memLimit)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvserver: -memlimit: %v\n", err)
		os.Exit(2)
	}
	retain := int64(-1)
	if *retainFlag != "" {
		if retain, err = parseBytes(*retainFlag); err != nil {
			fmt.Fprintf(os.Stderr, "kvserver: -retain: %v\n", err)
			os.Exit(2)
		}
	}
	store, err := openStore(*kind, *shards, *sizeHint, limit, retain)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvserver: %v\n", err)
		os.Exit(2)
	}
	if off, ok := store.(*offStore); ok && *activeDefrag {
		off.startDefrag()
	}
	srv, err := Listen(*addr, store)
	if err != nil {
		store.Close()
		log.Fatalf("kvserver: %v", err)
	}
	log.Printf("kvserver: store %s, %d shards, listening on %s", store.Kind(), *shards, srv.Addr())
	if *debugAddr != "" {
		// Sample lock contention too (/debug/pprof/mutex): one event in
		// mutexProfileRate, cheap enough to leave on while debugging.
		runtime.SetMutexProfileFraction(mutexProfileRate)
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		if off, ok := store.(*offStore); ok {
			mux.Handle("/debug/offheap/", arenahttp.New(off.h))
		}
		go func() { log.Printf("kvserver: debug server: %v", http.ListenAndServe(*debugAddr, mux)) }()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Printf("kvserver: %v, shutting down", s)
	case <-srv.Done():
	}
	if err := srv.Close(); err != nil {
		log.Fatalf("kvserver: shutdown: %v", err)
	}
}

// openStore makes the store the flags ask for.
func openStore(kind string, shards, sizeHint int, limit, retain int64) (Store, error) {
	switch kind {
	case "goheap":
		if limit > 0 {
			debug.SetMemoryLimit(limit)
		}
		return newGoStore(shards, sizeHint), nil
	case "offheap":
		s, err := newOffStoreRetain(shards, sizeHint, limit, retain)
		if err != nil {
			return nil, err // not a nil *offStore inside a non-nil Store
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown -store %q (want goheap or offheap)", kind)
}

// parseBytes reads "123", "64M", "4G"... (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	shift := 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v << shift, nil
}
