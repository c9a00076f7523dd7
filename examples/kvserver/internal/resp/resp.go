// Package resp is a minimal Redis protocol (RESP2) client for kvserver's
// tests and load generator: commands go out as arrays of bulk strings,
// replies come back parsed. It pipelines: Send queues, Flush writes,
// Receive reads replies in order. A Client is not safe for concurrent use.
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// maxBulk bounds a bulk reply the client accepts, so a corrupt length
// cannot make it allocate without limit.
const maxBulk = 512 << 20

// maxArray bounds an array reply's element count for the same reason.
const maxArray = 1 << 20

// Reply is one parsed reply. Kind is the RESP type byte: '+' status,
// '-' error, ':' integer, '$' bulk (Null if nil), '*' array (Null if nil).
type Reply struct {
	Kind  byte
	Str   string // status, error or bulk text
	Int   int64
	Null  bool
	Array []Reply
}

// Err is the reply as an error if it is an error reply, else nil.
func (r Reply) Err() error {
	if r.Kind == '-' {
		return ServerError(r.Str)
	}
	return nil
}

// ServerError is an error reply from the server.
type ServerError string

func (e ServerError) Error() string { return string(e) }

// Client is one connection.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	num  []byte
}

// Dial connects to addr.
func Dial(addr string) (*Client, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Send queues one command (written by Flush, or earlier when the buffer
// fills).
func (c *Client) Send(args ...[]byte) error {
	c.header('*', len(args))
	for _, a := range args {
		c.header('$', len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
	return nil
}

// SendRaw queues bytes as they are: for tests of malformed input.
func (c *Client) SendRaw(b []byte) { c.w.Write(b) }

func (c *Client) header(kind byte, n int) {
	c.num = append(c.num[:0], kind)
	c.num = strconv.AppendInt(c.num, int64(n), 10)
	c.num = append(c.num, '\r', '\n')
	c.w.Write(c.num)
}

// Flush writes queued commands.
func (c *Client) Flush() error { return c.w.Flush() }

// Do sends one command and reads its reply. Error replies come back as a
// Reply with Kind '-', not as err: err is for the connection.
func (c *Client) Do(args ...string) (Reply, error) {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	c.Send(b...)
	if err := c.Flush(); err != nil {
		return Reply{}, err
	}
	return c.Receive()
}

// SetDeadline sets the connection's read and write deadline.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Receive reads one reply.
func (c *Client) Receive() (Reply, error) {
	line, err := c.line()
	if err != nil {
		return Reply{}, err
	}
	if len(line) == 0 {
		return Reply{}, errors.New("resp: empty reply line")
	}
	r := Reply{Kind: line[0]}
	body := string(line[1:])
	switch r.Kind {
	case '+', '-':
		r.Str = body
	case ':':
		r.Int, err = strconv.ParseInt(body, 10, 64)
	case '$':
		var n int64
		if n, r.Null, err = count(body, maxBulk, "bulk of %d bytes"); err != nil || r.Null {
			break
		}
		buf := make([]byte, n+2)
		if _, err = io.ReadFull(c.r, buf); err != nil {
			break
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return r, errors.New("resp: bulk not terminated by CRLF")
		}
		r.Str = string(buf[:n])
	case '*':
		var n int64
		if n, r.Null, err = count(body, maxArray, "array of %d elements"); err != nil || r.Null {
			break
		}
		r.Array = make([]Reply, n)
		for i := range r.Array {
			if r.Array[i], err = c.Receive(); err != nil {
				break
			}
		}
	default:
		return r, fmt.Errorf("resp: unknown reply type %q", r.Kind)
	}
	if err != nil {
		return r, fmt.Errorf("resp: bad %q reply %q: %w", r.Kind, body, err)
	}
	return r, nil
}

// count parses the length of a bulk string or array reply: null for a
// negative one, and an error (what names it) past max.
func count(body string, max int64, what string) (n int64, null bool, err error) {
	if n, err = strconv.ParseInt(body, 10, 64); err != nil {
		return 0, false, err
	}
	if n < 0 {
		return 0, true, nil
	}
	if n > max {
		return 0, false, fmt.Errorf(what, n)
	}
	return n, false, nil
}

// line reads one CRLF-terminated line without its CRLF.
func (c *Client) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("resp: line %q not terminated by CRLF", line)
	}
	return line[:len(line)-2], nil
}
