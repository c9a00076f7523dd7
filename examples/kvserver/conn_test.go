package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawSession sends req over a plain TCP connection, in pieces of chunk
// bytes (0: at once), and returns everything the server wrote back until
// it closed the connection: req must end in QUIT or be malformed, with
// nothing after (sent in one write): data the server has not read when it
// closes makes the close a reset, which can lose the replies before it.
func rawSession(t *testing.T, addr, req string, chunk int) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	if chunk <= 0 {
		chunk = len(req)
	}
	for i := 0; i < len(req); i += chunk {
		if _, err := nc.Write([]byte(req[i:min(i+chunk, len(req))])); err != nil {
			t.Fatal(err)
		}
	}
	out, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("reading the replies: %v (got %q)", err, out)
	}
	return string(out)
}

// The hand-written RESP reader: commands split across reads at every
// byte, pipelines, inline commands, a command bigger than the buffer,
// and malformed input answered with a protocol error and a close.
func TestConnProtocol(t *testing.T) {
	store := newGoStore(testShards, 0)
	srv, c := startServer(t, store)
	defer c.Close()
	addr := srv.Addr().String()
	const quit = "*1\r\n$4\r\nQUIT\r\n"
	pipe := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n" + quit
	want := "+OK\r\n$5\r\nhello\r\n+PONG\r\n+OK\r\n"
	for _, chunk := range []int{0, 1, 2, 7} {
		if got := rawSession(t, addr, pipe, chunk); got != want {
			t.Fatalf("chunks of %d: %q, want %q", chunk, got, want)
		}
	}
	// Inline commands (redis-cli and telnet), blank lines ignored.
	if got := rawSession(t, addr, "PING\r\n\r\nset  a   b\nGET a\r\nQUIT\r\n", 3); got != "+PONG\r\n+OK\r\n$1\r\nb\r\n+OK\r\n" {
		t.Fatalf("inline: %q", got)
	}
	// A value much bigger than the input buffer, sent in pieces.
	big := strings.Repeat("z", 5*connBufSize+3)
	req := "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" + quit
	if got := rawSession(t, addr, req, 1000); got != "+OK\r\n$"+strconv.Itoa(len(big))+"\r\n"+big+"\r\n+OK\r\n" {
		t.Fatalf("big value: reply of %d bytes", len(got))
	}
	// Malformed: an error reply, then the connection closes (nothing
	// after it runs).
	for _, bad := range []string{
		"*1\r\n:3\r\n*1\r\n$4\r\nPING\r\n",
		"*x\r\n",
		"*1\r\n$-5\r\n",
		"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
		"*1\r\n$99999999999999\r\n",
	} {
		got := rawSession(t, addr, bad, 0)
		if !strings.HasPrefix(got, "-ERR Protocol error") || strings.Contains(got, "PONG") {
			t.Fatalf("%q: %q, want a protocol error and nothing more", bad, got)
		}
	}
	do(t, c, "+PONG", "PING") // the server is still fine
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// memConn is a net.Conn over memory: reads come from a prepared request
// stream, writes are counted and dropped. It lets the allocation test see
// only the server side of a connection.
type memConn struct {
	r       *bytes.Reader
	written int
}

func (m *memConn) Read(b []byte) (int, error)       { return m.r.Read(b) }
func (m *memConn) Write(b []byte) (int, error)      { m.written += len(b); return len(b), nil }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// Serving pipelined SETs and GETs allocates nothing on the Go heap per
// command once the store's maps are warm: only the connection's own
// buffers, once. redcon's loop allocated ~600 bytes in 3-4 objects per
// command, which made the offheap server run a GC cycle every few
// thousand requests.
func TestConnAllocs(t *testing.T) {
	store, err := newOffStore(testShards, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := &Server{store: store}
	value := strings.Repeat("v", 256)
	const n = 2000
	var req bytes.Buffer
	for i := range n {
		k := "key:" + strconv.Itoa(i%500)
		fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(value), value)
		fmt.Fprintf(&req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(k), k)
	}
	stream := req.Bytes()
	var mc *memConn
	run := func() {
		mc = &memConn{r: bytes.NewReader(stream)}
		newConn(mc).serve(s.handle)
	}
	run() // the maps get their entries and tables
	per := testing.AllocsPerRun(10, run) / (2 * n)
	t.Logf("%.4f allocations per command; %d bytes of replies per run", per, mc.written)
	if want := n * (len("+OK\r\n") + len("$256\r\n\r\n") + len(value)); mc.written != want {
		t.Fatalf("replies: %d bytes, want %d", mc.written, want)
	}
	// A run allocates the connection and its buffers (a handful of
	// objects) and nothing per command.
	if per > 0.01 {
		t.Fatalf("%.3f allocations per command, want none", per)
	}
}
