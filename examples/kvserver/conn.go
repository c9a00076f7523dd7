package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/tidwall/redcon"
)

// The connection loop: reading RESP commands and buffering replies.
//
// It replaces redcon's server loop, which allocated for every command (a
// copy of the command's bytes, its argument slice, the batch's slice of
// commands, and a doubled read buffer whenever a pipelined batch straddled
// its 4 KiB one): about 600 bytes of Go garbage per request, which for the
// offheap store, whose Go heap is ~1 MiB live, meant a GC cycle every few
// thousand requests. Here each connection owns one input buffer, one
// argument slice and one output buffer, all reused: a command's arguments
// are slices of the input buffer, valid until the next command is read
// (the store copies what it keeps), and replies are appended to the output
// buffer with redcon's Append functions and written when the input has no
// complete command left, so a pipelined batch gets one write.

const (
	// connBufSize: the initial input and output buffers. A few pipelined
	// commands of a few hundred bytes fit; bigger commands grow them.
	connBufSize = 16 << 10

	// maxKeptBuf: a connection keeps a buffer that grew past this (a big
	// value, a long pipeline) only while it is needed, so one huge value
	// does not pin memory per client.
	maxKeptBuf = 64 << 10

	// flushAt: replies are written out once this many bytes are buffered,
	// even mid-batch, so a long pipeline of big GETs does not buffer them
	// all.
	flushAt = 64 << 10

	// maxArgs and maxBulk bound one command (Redis's own limits are 1M
	// arguments and 512 MiB per argument): a client cannot make the
	// server buffer more than this for one command.
	maxArgs = 1 << 20
	maxBulk = 512 << 20

	// maxInline bounds an inline (telnet-style) command line.
	maxInline = 64 << 10
)

// errProtocol is a malformed request: the client gets "-ERR Protocol
// error: ..." and the connection is closed, as Redis does.
var errProtocol = errors.New("Protocol error")

// conn is one client connection. Its methods are called only by the
// connection's own goroutine (serveConn), so it needs no lock.
type conn struct {
	nc   net.Conn
	in   []byte   // input; unparsed bytes are in[r:w]
	r, w int      //
	args [][]byte // the current command's arguments (slices of in)
	out  []byte   // replies not yet written
	buf  []byte   // GET copies values here (reused)
	quit bool     // QUIT: write what is buffered, then close
	werr error    // the first write error: stop serving
}

func newConn(nc net.Conn) *conn {
	return &conn{nc: nc, in: make([]byte, connBufSize), out: make([]byte, 0, connBufSize)}
}

// serve reads and runs commands until the client goes away, QUITs, sends
// something malformed, or the connection is closed under it.
func (c *conn) serve(handle func(*conn, [][]byte)) {
	defer c.nc.Close()
	for {
		ok, err := c.parse()
		if err != nil {
			c.WriteError("ERR " + err.Error())
			c.flush()
			return
		}
		if ok {
			if len(c.args) > 0 {
				handle(c, c.args)
			}
			if c.quit || c.werr != nil {
				c.flush()
				return
			}
			if len(c.out) >= flushAt && !c.flush() {
				return
			}
			continue
		}
		// No complete command left: answer the batch, then read more.
		if !c.flush() || !c.fill() {
			return
		}
	}
}

// flush writes the buffered replies; false on a write error.
func (c *conn) flush() bool {
	if c.werr != nil {
		return false
	}
	if len(c.out) > 0 {
		if _, err := c.nc.Write(c.out); err != nil {
			c.werr = err
			return false
		}
	}
	if cap(c.out) > maxKeptBuf {
		c.out = make([]byte, 0, connBufSize)
	} else {
		c.out = c.out[:0]
	}
	return true
}

// fill reads more input, first moving the unparsed bytes to the front of
// the buffer (or to a bigger one if they fill it); false when the read
// fails (the client went away, or Server.Close closed the connection).
func (c *conn) fill() bool {
	n := c.w - c.r
	switch {
	case n == 0 && len(c.in) > maxKeptBuf:
		c.in = make([]byte, connBufSize)
	case n == len(c.in):
		// A command bigger than the buffer: parse has bounded it.
		bigger := make([]byte, 2*len(c.in))
		copy(bigger, c.in[c.r:c.w])
		c.in = bigger
	default:
		copy(c.in, c.in[c.r:c.w])
	}
	c.r, c.w = 0, n
	m, err := c.nc.Read(c.in[c.w:])
	c.w += m
	return err == nil || m > 0
}

// parse takes one command from in[r:w] into args; false (and nothing
// consumed) when the bytes there are not a whole command yet.
func (c *conn) parse() (bool, error) {
	b := c.in[c.r:c.w]
	if len(b) == 0 {
		return false, nil
	}
	if b[0] != '*' {
		return c.parseInline(b)
	}
	count, i, ok, err := parseLen(b, 1, maxArgs)
	if !ok || err != nil {
		return false, err
	}
	c.args = c.args[:0]
	for range count {
		if i >= len(b) {
			return false, nil
		}
		if b[i] != '$' {
			return false, fmt.Errorf("%w: expected '$', got %q", errProtocol, b[i])
		}
		size, j, ok, err := parseLen(b, i+1, maxBulk)
		if !ok || err != nil {
			return false, err
		}
		if j+size+2 > len(b) {
			return false, nil
		}
		if b[j+size] != '\r' || b[j+size+1] != '\n' {
			return false, fmt.Errorf("%w: bulk of %d bytes not followed by CRLF", errProtocol, size)
		}
		c.args = append(c.args, b[j:j+size:j+size])
		i = j + size + 2
	}
	c.r += i
	return true, nil
}

// parseLen reads the decimal number from b[i] to a CRLF, which must be in
// 0..max (a multibulk count of 0 or less is read as no command, as Redis
// does, and so is refused here only if negative or absurd). It returns the
// number and the index after the CRLF; ok false if the CRLF has not come.
func parseLen(b []byte, i, max int) (n, next int, ok bool, err error) {
	start := i
	for ; i < len(b) && b[i] != '\r'; i++ {
		if i-start > 10 {
			return 0, 0, false, fmt.Errorf("%w: length too long", errProtocol)
		}
	}
	if i+1 >= len(b) {
		return 0, 0, false, nil
	}
	if b[i+1] != '\n' {
		return 0, 0, false, fmt.Errorf("%w: no LF after CR", errProtocol)
	}
	digits := b[start:i]
	v := 0
	for _, d := range digits {
		if d < '0' || d > '9' {
			v = -1
			break
		}
		v = v*10 + int(d-'0')
	}
	if len(digits) == 0 || v < 0 || v > max {
		return 0, 0, false, fmt.Errorf("%w: invalid length %q", errProtocol, digits)
	}
	return v, i + 2, true, nil
}

// parseInline takes a line of space-separated words (what redis-cli and
// telnet send when not speaking RESP); an empty line is no command.
func (c *conn) parseInline(b []byte) (bool, error) {
	end := -1
	for i, ch := range b {
		if ch == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		if len(b) > maxInline {
			return false, fmt.Errorf("%w: too big inline request", errProtocol)
		}
		return false, nil
	}
	line := b[:end]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	c.args = c.args[:0]
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if j > i {
			c.args = append(c.args, line[i:j:j])
		}
		i = j
	}
	c.r += end + 1
	return true, nil
}

// Reply writers: RESP2, appended to the output buffer.

func (c *conn) WriteBulk(b []byte)       { c.out = redcon.AppendBulk(c.out, b) }
func (c *conn) WriteBulkString(s string) { c.out = redcon.AppendBulkString(c.out, s) }
func (c *conn) WriteNull()               { c.out = redcon.AppendNull(c.out) }
func (c *conn) WriteString(s string)     { c.out = redcon.AppendString(c.out, s) }
func (c *conn) WriteError(s string)      { c.out = redcon.AppendError(c.out, s) }
func (c *conn) WriteInt(n int)           { c.out = redcon.AppendInt(c.out, int64(n)) }
func (c *conn) WriteArray(n int)         { c.out = redcon.AppendArray(c.out, n) }
func (c *conn) Close()                   { c.quit = true }
