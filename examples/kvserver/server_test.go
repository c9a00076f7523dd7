package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offheap/offheap/examples/kvserver/internal/resp"
)

// testShards: few shards, so that the test's keys share shards and maps
// grow and shrink while it runs.
const testShards = 4

func stores(t *testing.T) map[string]func() Store {
	return map[string]func() Store{
		"goheap": func() Store { return newGoStore(testShards, 0) },
		"offheap": func() Store {
			s, err := newOffStore(testShards, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// startServer serves store on a loopback port and returns a client.
func startServer(t *testing.T, store Store) (*Server, *resp.Client) {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", store)
	if err != nil {
		t.Fatal(err)
	}
	c, err := resp.Dial(srv.Addr().String())
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	return srv, c
}

// do runs one command and checks the reply's rendering: "+OK", ":3",
// "$value", "$<nil>", "-ERR ...".
func do(t *testing.T, c *resp.Client, want string, args ...string) resp.Reply {
	t.Helper()
	r, err := c.Do(args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if got := render(r); got != want {
		t.Fatalf("%q: got %q, want %q", args, got, want)
	}
	return r
}

func render(r resp.Reply) string {
	switch r.Kind {
	case ':':
		return ":" + strconv.FormatInt(r.Int, 10)
	case '$':
		if r.Null {
			return "$<nil>"
		}
		return "$" + r.Str
	case '*':
		return fmt.Sprintf("*%d", len(r.Array))
	}
	return string(r.Kind) + r.Str
}

func TestServer(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			store := mk()
			srv, c := startServer(t, store)
			defer c.Close()

			do(t, c, "+PONG", "PING")
			do(t, c, "$hi", "ping", "hi")
			do(t, c, "$<nil>", "GET", "a")
			do(t, c, "+OK", "SET", "a", "1")
			do(t, c, "$1", "get", "a")
			// Overwrite with longer, then shorter values.
			long := strings.Repeat("x", 5000)
			do(t, c, "+OK", "SET", "a", long)
			do(t, c, "$"+long, "GET", "a")
			do(t, c, "+OK", "SET", "a", "")
			do(t, c, "$", "GET", "a")
			do(t, c, "+OK", "SET", "b", "2")
			do(t, c, "+OK", "SET", "", "empty key")
			do(t, c, "$empty key", "GET", "")
			do(t, c, ":3", "DBSIZE")
			do(t, c, ":2", "EXISTS", "a", "b", "nope")
			do(t, c, ":3", "EXISTS", "a", "a", "a")
			do(t, c, ":2", "DEL", "a", "b", "a", "nope")
			do(t, c, ":0", "EXISTS", "a", "b")
			do(t, c, ":1", "DBSIZE")
			// A deleted key can be reused.
			do(t, c, "+OK", "SET", "a", "again")
			do(t, c, "$again", "GET", "a")
			// Binary-safe keys and values.
			do(t, c, "+OK", "SET", "k\r\n\x00", "v\x00\r\n")
			do(t, c, "$v\x00\r\n", "GET", "k\r\n\x00")

			// Many keys through growth, overwrite, deletes and reuse,
			// pipelined, checked against a model.
			const n = testKeys
			model := map[string]string{"a": "again", "": "empty key", "k\r\n\x00": "v\x00\r\n"}
			pipeline(t, c, n, func(i int) []string {
				k, v := fmt.Sprintf("key:%d", i), strings.Repeat(string(rune('a'+i%26)), 1+i%700)
				model[k] = v
				return []string{"SET", k, v}
			}, func(int) string { return "+OK" })
			pipeline(t, c, n, func(i int) []string {
				k := fmt.Sprintf("key:%d", i)
				if i%3 == 0 {
					delete(model, k)
					return []string{"DEL", k}
				}
				v := fmt.Sprint(i)
				model[k] = v
				return []string{"SET", k, v}
			}, func(int) string { return "" })
			do(t, c, ":"+strconv.Itoa(len(model)), "DBSIZE")
			var data int64
			var cmds [][]string
			var wants []string
			for k, v := range model {
				data += int64(len(k) + len(v))
				cmds, wants = append(cmds, []string{"GET", k}), append(wants, "$"+v)
			}
			for i := 0; i < n; i += 3 {
				cmds, wants = append(cmds, []string{"GET", fmt.Sprintf("key:%d", i)}), append(wants, "$<nil>")
			}
			pipeline(t, c, len(cmds), func(i int) []string { return cmds[i] }, func(i int) string { return wants[i] })
			if got := store.DataBytes(); got != data {
				t.Errorf("DataBytes %d, want %d", got, data)
			}

			// Errors are replies, and the connection keeps working.
			do(t, c, "-ERR unknown command 'NOSUCH'", "NOSUCH", "x")
			do(t, c, "-ERR unknown command 'a??b'", "a\r\nb")
			do(t, c, "-ERR wrong number of arguments for 'get' command", "GET")
			do(t, c, "-ERR wrong number of arguments for 'get' command", "GET", "a", "b")
			do(t, c, "-ERR wrong number of arguments for 'set' command", "SET", "a")
			do(t, c, "-ERR syntax error (SET options are not supported)", "SET", "a", "b", "EX", "10")
			do(t, c, "-ERR wrong number of arguments for 'del' command", "DEL")
			do(t, c, "-ERR wrong number of arguments for 'exists' command", "EXISTS")
			do(t, c, "-ERR wrong number of arguments for 'dbsize' command", "DBSIZE", "x")
			if r := do(t, c, "*4", "CONFIG", "GET", "save", "nosuch", "APPENDONLY"); r.Array[0].Str != "save" || r.Array[3].Str != "no" {
				t.Errorf("CONFIG GET: %+v", r.Array)
			}
			do(t, c, "*0", "CONFIG", "GET", "nosuch")
			do(t, c, "-ERR wrong number of arguments for 'config|get' command", "CONFIG", "GET")
			do(t, c, "-ERR CONFIG SET is not supported", "CONFIG", "SET", "a", "b")
			do(t, c, "$again", "GET", "a")

			// INFO parses: every line a section header or field:value,
			// with the fields the benchmark reads.
			r, err := c.Do("INFO")
			if err != nil || r.Kind != '$' {
				t.Fatalf("INFO: %+v, %v", r, err)
			}
			info := parseInfo(t, r.Str)
			for _, f := range []string{"used_memory_rss", "used_memory_peak_rss", "used_memory",
				"keys", "data_bytes", "go_cpu_classes_gc_total_cpu_seconds", "go_gc_cycles_total_gc_cycles",
				"go_sched_pauses_total_gc_seconds_p99", "go_gc_heap_live_bytes",
				"store_reads_p99_seconds", "store_writes_max_seconds", "wakeup_lateness_max_seconds"} {
				if _, ok := info[f]; !ok {
					t.Errorf("INFO has no %s", f)
				}
			}
			if info["store"] != name {
				t.Errorf("INFO store %q, want %q", info["store"], name)
			}
			if info["keys"] != strconv.Itoa(len(model)) || info["data_bytes"] != strconv.FormatInt(data, 10) {
				t.Errorf("INFO keys %s data_bytes %s, want %d %d", info["keys"], info["data_bytes"], len(model), data)
			}
			if w, _ := strconv.Atoi(info["store_writes"]); w < 2*n {
				t.Errorf("INFO store_writes %q, want at least %d", info["store_writes"], 2*n)
			}
			if rss, _ := strconv.ParseUint(info["used_memory_rss"], 10, 64); rss == 0 {
				t.Errorf("INFO used_memory_rss %q", info["used_memory_rss"])
			}
			if name == "offheap" {
				for _, f := range []string{"offheap_heap_inuse", "offheap_heap_alloc", "offheap_committed", "offheap_heap_released"} {
					if v, ok := info[f]; !ok || (f != "offheap_heap_released" && v == "0") {
						t.Errorf("INFO %s = %q", f, v)
					}
				}
			}

			do(t, c, "+OK", "FLUSHALL")
			do(t, c, ":0", "DBSIZE")
			do(t, c, "$<nil>", "GET", "a")
			if got := store.DataBytes(); got != 0 {
				t.Errorf("DataBytes %d after FLUSHALL", got)
			}
			do(t, c, "+OK", "SET", "a", "after flush")
			do(t, c, "$after flush", "GET", "a")

			// A malformed request gets a protocol error reply.
			c2, err := resp.Dial(srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c2.SetDeadline(time.Now().Add(time.Minute))
			c2.SendRaw([]byte("*1\r\n$x\r\n"))
			c2.Flush()
			if r, err := c2.Receive(); err != nil || r.Kind != '-' {
				t.Errorf("malformed request: reply %+v, %v", r, err)
			}
			c2.Close()

			do(t, c, "+OK", "QUIT")
			if _, err := c.Do("PING"); err == nil {
				t.Error("connection still answers after QUIT")
			}

			// Leave data in the store: Close must free it all.
			c3, err := resp.Dial(srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c3.SetDeadline(time.Now().Add(time.Minute))
			do(t, c3, "+OK", "SET", "left", "behind")
			if err := srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := c3.Do("PING"); err == nil {
				t.Error("connection still answers after Close")
			}
			c3.Close()
			if s, ok := store.(*offStore); ok {
				if s.final.HeapObjects != 0 || s.final.Mallocs != s.final.Frees || s.final.HeapAlloc != 0 {
					t.Errorf("offheap after closing every map: %d objects, %d bytes, %d mallocs, %d frees",
						s.final.HeapObjects, s.final.HeapAlloc, s.final.Mallocs, s.final.Frees)
				}
				if s.final.Mallocs == 0 {
					t.Error("offheap store allocated nothing")
				}
			}
			if _, _, err := store.Get(nil, []byte("left")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Close: %v, want ErrClosed", err)
			}
			if err := srv.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func parseInfo(t *testing.T, s string) map[string]string {
	t.Helper()
	m := map[string]string{}
	if !strings.HasSuffix(s, "\r\n") {
		t.Errorf("INFO does not end in CRLF")
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		if line == "" || strings.HasPrefix(line, "# ") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || v == "" {
			t.Errorf("INFO line %q is not field:value", line)
			continue
		}
		if _, dup := m[k]; dup {
			t.Errorf("INFO field %s twice", k)
		}
		m[k] = v
	}
	return m
}

// pipeline sends n commands made by cmd without waiting, then checks
// reply i is want(i) ("" accepts any non-error reply).
func pipeline(t *testing.T, c *resp.Client, n int, cmd func(i int) []string, want func(i int) string) {
	t.Helper()
	const batch = 500
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		for i := lo; i < hi; i++ {
			args := cmd(i)
			b := make([][]byte, len(args))
			for j, a := range args {
				b[j] = []byte(a)
			}
			c.Send(b...)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := lo; i < hi; i++ {
			r, err := c.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if w := want(i); r.Kind == '-' || (w != "" && render(r) != w) {
				t.Fatalf("command %d %q: reply %q, want %q", i, cmd(i), render(r), w)
			}
		}
	}
}

// TestConcurrentClients runs clients on overlapping keys at once (for the
// race detector: shard locks, counters, INFO), then checks the counts.
func TestConcurrentClients(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			store := mk()
			srv, c := startServer(t, store)
			defer c.Close()
			const clients, keys = 4, 2000
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					cl, err := resp.Dial(srv.Addr().String())
					if err != nil {
						errs <- err
						return
					}
					defer cl.Close()
					cl.SetDeadline(time.Now().Add(time.Minute))
					for i := 0; i < keys; i++ {
						k := strconv.Itoa(i)
						var args []string
						switch (i + w) % 4 {
						case 0, 1:
							args = []string{"SET", k, strings.Repeat("v", i%300)}
						case 2:
							args = []string{"GET", k}
						default:
							if i%50 == 0 {
								args = []string{"INFO"}
							} else {
								args = []string{"DEL", k}
							}
						}
						r, err := cl.Do(args...)
						if err == nil {
							err = r.Err()
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// DBSIZE and the data bytes must agree with the keys present.
			n, data := 0, int64(0)
			for i := 0; i < keys; i++ {
				k := strconv.Itoa(i)
				r, err := c.Do("GET", k)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Null {
					n++
					data += int64(len(k) + len(r.Str))
				}
			}
			do(t, c, ":"+strconv.Itoa(n), "DBSIZE")
			if got := store.DataBytes(); got != data {
				t.Errorf("DataBytes %d, want %d", got, data)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpTimer(t *testing.T) {
	var ot opTimer
	if n, _, _, _, _ := ot.quantiles(); n != 0 {
		t.Fatalf("empty timer counts %d", n)
	}
	// 980 ops of 1.5 µs, 15 of 3 ms, 5 of 70 ms.
	for i := 0; i < 980; i++ {
		ot.record(1500 * time.Nanosecond)
	}
	for i := 0; i < 15; i++ {
		ot.record(3 * time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		ot.record(70 * time.Millisecond)
	}
	ot.record(71 * time.Millisecond)
	n, p50, p99, p999, maxd := ot.quantiles()
	if n != 1000 {
		t.Errorf("count %d, want 1000", n)
	}
	// Quantiles are upper bucket edges: the next power of two in ns.
	if p50 != 2048 {
		t.Errorf("p50 %v, want 2.048µs", p50)
	}
	if p99 != 1<<22 { // 3 ms is in [2^21, 2^22) ns
		t.Errorf("p99 %v, want %v", p99, time.Duration(1<<22))
	}
	if p999 != 1<<27 { // 70 ms is in [2^26, 2^27) ns
		t.Errorf("p99.9 %v, want %v", p999, time.Duration(1<<27))
	}
	if maxd != 71*time.Millisecond {
		t.Errorf("max %v, want 71ms", maxd)
	}
	ot.record(0)
	ot.record(time.Hour) // past the last bucket: counted there
	if n, _, _, _, maxd := ot.quantiles(); n != 1002 || maxd != time.Hour {
		t.Errorf("after 0 and 1h: count %d max %v", n, maxd)
	}
}

// TestOffheapMemoryLimit fills an offheap store past its -memlimit: SETs
// get OOM error replies (not a crash, not a dropped connection), and
// space freed by DEL is usable again.
func TestOffheapMemoryLimit(t *testing.T) {
	const limit = 8 << 20
	store, err := newOffStore(testShards, 0, limit)
	if err != nil {
		t.Fatal(err)
	}
	srv, c := startServer(t, store)
	defer c.Close()
	val := strings.Repeat("v", 100<<10)
	n := 0
	for ; n < 2*limit/len(val); n++ {
		r, err := c.Do("SET", strconv.Itoa(n), val)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == '-' {
			if !strings.HasPrefix(r.Str, "OOM ") {
				t.Fatalf("SET %d: %q, want an OOM error", n, r.Str)
			}
			break
		}
	}
	if n == 0 || n == 2*limit/len(val) {
		t.Fatalf("%d SETs of %d bytes before the first OOM, limit %d", n, len(val), limit)
	}
	do(t, c, ":"+strconv.Itoa(n), "DBSIZE")
	do(t, c, "$"+val, "GET", "0")
	do(t, c, ":1", "DEL", "0")
	do(t, c, "+OK", "SET", "again", val)
	do(t, c, "$"+val, "GET", "again")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestActiveDefrag: after deleting 90 % of the keys the defragger moves
// the survivors out of the sparse spans on its own, within seconds, until
// HeapInuse is under defragStartRatio × HeapAlloc (or within
// defragMinWaste of it), and every survivor
// still reads back its value.
func TestActiveDefrag(t *testing.T) {
	store, err := newOffStore(testShards, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	store.startDefrag()
	srv, c := startServer(t, store)
	defer c.Close()
	const n = 8 * testKeys // 20-40 MiB of entries (-race: 4x fewer)
	value := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), 100+i%150) }
	pipeline(t, c, n, func(i int) []string { return []string{"SET", "k" + strconv.Itoa(i), value(i)} },
		func(int) string { return "+OK" })
	// Delete all but every tenth key (those are only checked).
	pipeline(t, c, n, func(i int) []string {
		if i%10 == 0 {
			return []string{"EXISTS", "k" + strconv.Itoa(i)}
		}
		return []string{"DEL", "k" + strconv.Itoa(i)}
	}, func(int) string { return ":1" })
	info := func() map[string]string {
		r, err := c.Do("INFO")
		if err != nil {
			t.Fatal(err)
		}
		return parseInfo(t, r.Str)
	}
	num := func(m map[string]string, k string) float64 {
		v, err := strconv.ParseFloat(m[k], 64)
		if err != nil {
			t.Fatalf("INFO %s = %q: %v", k, m[k], err)
		}
		return v
	}
	start := time.Now()
	var m map[string]string
	for {
		m = info()
		// Done: it has moved entries and stopped because the heap is no
		// longer fragmented (the ratio, or too little to win: at the
		// race build's scale the partly filled spans each size class
		// allocates from weigh more than defragStartRatio).
		inuse, alloc := num(m, "offheap_heap_inuse"), num(m, "offheap_heap_alloc")
		if num(m, "defrag_moved") > 0 && num(m, "defrag_running") == 0 &&
			(inuse <= defragStartRatio*alloc || inuse-alloc < defragMinWaste) {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no defragmentation 20 s after the deletes: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after %v: %s runs, %s steps, %s moved, busy %s s, max step %s s; HeapInuse %s, HeapAlloc %s",
		time.Since(start).Round(time.Millisecond), m["defrag_runs"], m["defrag_steps"], m["defrag_moved"],
		m["defrag_busy_seconds"], m["defrag_max_step_seconds"], m["offheap_heap_inuse"], m["offheap_heap_alloc"])
	if share := num(m, "defrag_cpu_share"); share < defragShareMin || share > defragShareMax {
		t.Errorf("INFO defrag_cpu_share %v, outside [%v, %v]", share, defragShareMin, defragShareMax)
	}
	if maxStep := num(m, "defrag_max_step_seconds"); maxStep > maxDefragStep.Seconds() {
		t.Errorf("a defrag step held a shard lock for %.1f ms", maxStep*1000)
	}
	pipeline(t, c, n/10, func(i int) []string { return []string{"GET", "k" + strconv.Itoa(10*i)} },
		func(i int) string { return "$" + value(10*i) })
	do(t, c, ":"+strconv.Itoa(n/10), "DBSIZE")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDefragShare: the defragger's CPU share grows linearly with the
// fragmentation a pass starts from, between its two bounds.
func TestDefragShare(t *testing.T) {
	mid := (defragStartRatio + defragFullRatio) / 2
	for _, c := range []struct{ ratio, want float64 }{
		{1.0, defragShareMin}, {defragStartRatio, defragShareMin},
		{mid, (defragShareMin + defragShareMax) / 2},
		{defragFullRatio, defragShareMax}, {9, defragShareMax},
	} {
		if got := defragShare(c.ratio); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("defragShare(%v) = %v, want %v", c.ratio, got, c.want)
		}
	}
}
