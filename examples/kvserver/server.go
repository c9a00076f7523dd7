package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/offheap/offheap/arena"
)

// maxShownName bounds how much of an unknown command's name an error
// repeats back: enough to recognise it, never a megabyte of echo.
const maxShownName = 64

// Server speaks the Redis protocol (RESP2) over one Store.
type Server struct {
	store   Store
	started time.Time
	ln      net.Listener
	// The opTimers are written by every connection's goroutine and read
	// by INFO: all atomic (see opTimer).
	reads  opTimer       // GET, EXISTS: time in the store per key
	writes opTimer       // SET, DEL: time in the store per key
	late   opTimer       // wake-up lateness of a sleeping goroutine (lateness.go)
	stop   chan struct{} // closed by Close: stops the lateness probe

	// mu guards conns, the open client connections, and closing (set by
	// Close: no connection is added after it); conns lets Close close
	// them. wg counts the connection goroutines, which Close waits for
	// before closing the store.
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	wg      sync.WaitGroup

	// closeOnce makes Close idempotent; done is closed when the accept
	// loop has returned; serveErr is its error (written before done).
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	serveErr  error
}

// Listen starts serving store on addr ("127.0.0.1:0" picks a port).
func Listen(addr string, store Store) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, started: time.Now(), ln: ln, done: make(chan struct{}), stop: make(chan struct{}),
		conns: map[net.Conn]struct{}{}}
	go probeLateness(&s.late, s.stop)
	go func() {
		s.serveErr = s.accept()
		close(s.done)
	}()
	return s, nil
}

// accept runs each client connection on its own goroutine (conn.go) until
// the listener is closed; that is Close's doing, not an error.
func (s *Server) accept() error {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			newConn(nc).serve(s.handle)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every client connection and waits for
// their goroutines, then closes the store. It returns the store's Close
// error: for offheap, a leak or a failed Verify.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.ln.Close()
		<-s.done
		s.mu.Lock()
		s.closing = true
		for nc := range s.conns {
			nc.Close() // its goroutine's read fails, and it returns
		}
		s.mu.Unlock()
		s.wg.Wait()
		close(s.stop)
		s.closeErr = errors.Join(err, s.serveErr, s.store.Close())
	})
	return s.closeErr
}

// Done is closed when the server stops accepting connections.
func (s *Server) Done() <-chan struct{} { return s.done }

// handle runs one command; cmd[0] is its name. The arguments are slices of
// the connection's input buffer, valid only during the call.
func (s *Server) handle(conn *conn, cmd [][]byte) {
	var lower [16]byte
	name := cmd[0]
	if len(name) <= len(lower) {
		for i, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		name = lower[:len(name)]
	}
	args := cmd[1:]
	switch string(name) {
	case "get":
		if !arity(conn, "get", args, 1, 1) {
			return
		}
		t0 := time.Now()
		v, ok, err := s.store.Get(conn.buf[:0], args[0])
		s.reads.record(time.Since(t0))
		if err != nil {
			writeErr(conn, err)
			return
		}
		if !ok {
			conn.WriteNull()
		} else {
			conn.WriteBulk(v)
		}
		if cap(v) <= maxKeptBuf {
			conn.buf = v[:0] // reused by the next GET: no allocation per GET
		}
	case "set":
		if !arity(conn, "set", args, 2, -1) {
			return
		}
		if len(args) > 2 {
			conn.WriteError("ERR syntax error (SET options are not supported)")
			return
		}
		t0 := time.Now()
		err := s.store.Set(args[0], args[1])
		s.writes.record(time.Since(t0))
		if err != nil {
			writeErr(conn, err)
			return
		}
		conn.WriteString("OK")
	case "del", "unlink":
		if !arity(conn, string(name), args, 1, -1) {
			return
		}
		s.countKeys(conn, args, s.store.Delete, &s.writes)
	case "exists":
		if !arity(conn, "exists", args, 1, -1) {
			return
		}
		s.countKeys(conn, args, s.store.Has, &s.reads)
	case "dbsize":
		if arity(conn, "dbsize", args, 0, 0) {
			conn.WriteInt(s.store.Len())
		}
	case "flushall", "flushdb":
		// ASYNC/SYNC are accepted and mean the same here.
		if !arity(conn, string(name), args, 0, 1) {
			return
		}
		if err := s.store.Flush(); err != nil {
			writeErr(conn, err)
			return
		}
		conn.WriteString("OK")
	case "ping":
		if !arity(conn, "ping", args, 0, 1) {
			return
		}
		if len(args) == 1 {
			conn.WriteBulk(args[0])
		} else {
			conn.WriteString("PONG")
		}
	case "echo":
		// redis-cli --pipe ends its input with an ECHO to know when every
		// reply has come back.
		if arity(conn, "echo", args, 1, 1) {
			conn.WriteBulk(args[0])
		}
	case "info":
		// Any section argument gets the whole report.
		if arity(conn, "info", args, 0, -1) {
			conn.WriteBulk(s.info())
		}
	case "config":
		// redis-benchmark reads CONFIG GET save and appendonly at start
		// and warns when they are missing: this server persists nothing,
		// which is what "" and "no" say. Other parameters are unknown and
		// left out of the reply, as Redis does.
		if !arity(conn, "config", args, 1, -1) {
			return
		}
		if !strings.EqualFold(string(args[0]), "get") {
			conn.WriteError("ERR CONFIG " + shown(args[0]) + " is not supported")
			return
		}
		if !arity(conn, "config|get", args, 2, -1) {
			return
		}
		var pairs []string
		for _, p := range args[1:] {
			switch strings.ToLower(string(p)) {
			case "save":
				pairs = append(pairs, "save", "")
			case "appendonly":
				pairs = append(pairs, "appendonly", "no")
			}
		}
		conn.WriteArray(len(pairs))
		for _, p := range pairs {
			conn.WriteBulkString(p)
		}
	case "quit":
		conn.WriteString("OK")
		conn.Close()
	default:
		conn.WriteError("ERR unknown command '" + shown(cmd[0]) + "'")
	}
}

// arity checks that a command has between min and max arguments (max -1:
// no upper bound) and writes Redis's error if not.
func arity(conn *conn, name string, args [][]byte, min, max int) bool {
	if len(args) < min || (max >= 0 && len(args) > max) {
		conn.WriteError("ERR wrong number of arguments for '" + name + "' command")
		return false
	}
	return true
}

// writeErr maps store errors to Redis's error replies.
func writeErr(conn *conn, err error) {
	switch {
	case errors.Is(err, arena.ErrOutOfMemory):
		conn.WriteError("OOM command not allowed when used memory > 'maxmemory': " + err.Error())
	case errors.Is(err, ErrClosed):
		conn.WriteError("ERR server is shutting down")
	default:
		conn.WriteError("ERR " + err.Error())
	}
}

// shown is a command argument made safe to echo inside an error line.
func shown(b []byte) string {
	if len(b) > maxShownName {
		b = b[:maxShownName]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, string(b))
}

// info builds the INFO reply. Everything in it is read from counters (no
// walk over keys, no stop-the-world), so INFO is safe to poll under load.
func (s *Server) info() []byte {
	var w infoWriter
	writeProcessInfo(&w, s.started)
	w.section("Keyspace")
	w.int("keys", s.store.Len())
	w.str("data_bytes", fmt.Sprint(s.store.DataBytes()))
	w.u64("used_memory", s.store.UsedBytes())
	w.section("StoreLatency")
	for _, t := range []struct {
		name string
		t    *opTimer
	}{{"store_reads", &s.reads}, {"store_writes", &s.writes}, {"wakeup_lateness", &s.late}} {
		n, p50, p99, p999, maxd := t.t.quantiles()
		w.u64(t.name, n)
		w.dur(t.name+"_p50_seconds", p50)
		w.dur(t.name+"_p99_seconds", p99)
		w.dur(t.name+"_p999_seconds", p999)
		w.dur(t.name+"_max_seconds", maxd)
	}
	s.store.Info(&w)
	return w.b.Bytes()
}

// countKeys runs op (DEL's delete, EXISTS's lookup) on each key, timing
// each call in t, and replies with how many keys op reported true for, or
// with the first error.
func (s *Server) countKeys(conn *conn, keys [][]byte, op func([]byte) (bool, error), t *opTimer) {
	n := 0
	for _, k := range keys {
		t0 := time.Now()
		ok, err := op(k)
		t.record(time.Since(t0))
		if err != nil {
			writeErr(conn, err)
			return
		}
		if ok {
			n++
		}
	}
	conn.WriteInt(n)
}
