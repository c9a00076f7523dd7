package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxLineBytes bounds one line of a trace; a longer line is malformed (the
// longest valid operation is about 40 bytes, comments may be longer).
const maxLineBytes = 64 << 10

// maxQuoted is how much of an offending field an error message quotes.
const maxQuoted = 32

// Parser reads a trace one operation at a time and checks it: the header,
// the syntax of each line, and that ids are used consistently.
type Parser struct {
	sc   *bufio.Scanner
	line int
	live map[uint64]struct{}
	err  error // sticky: the first error, io.EOF at the end
}

// NewParser reads and checks the header of the trace in r.
func NewParser(r io.Reader) (*Parser, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	p := &Parser{sc: sc, live: make(map[uint64]struct{})}
	line, ok, err := p.scan()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.errorAt(1, "empty trace: want header %q", Header)
	}
	if line != Header {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == headerMagic {
			return nil, p.errorf("unsupported trace version %s (this reader knows v1)", quote(f[1]))
		}
		return nil, p.errorf("bad header %s: want %q", quote(line), Header)
	}
	return p, nil
}

// scan reads the next line, counting it.
func (p *Parser) scan() (string, bool, error) {
	if !p.sc.Scan() {
		if err := p.sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return "", false, p.errorAt(p.line+1, "line longer than %d bytes", maxLineBytes)
			}
			return "", false, fmt.Errorf("after line %d: %w", p.line, err)
		}
		return "", false, nil
	}
	p.line++
	return strings.TrimSuffix(p.sc.Text(), "\r"), true, nil
}

// Next returns the next operation, or io.EOF after the last one. Any other
// error is a *SyntaxError naming the line (or an error of the reader); once
// Next returns an error it returns the same error forever.
func (p *Parser) Next() (Op, error) {
	if p.err != nil {
		return Op{}, p.err
	}
	op, err := p.next()
	if err != nil {
		p.err = err
	}
	return op, err
}

func (p *Parser) next() (Op, error) {
	for {
		line, ok, err := p.scan()
		if err != nil {
			return Op{}, err
		}
		if !ok {
			return Op{}, io.EOF
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		return p.parseOp(f)
	}
}

func (p *Parser) parseOp(f []string) (Op, error) {
	op := Op{Line: p.line}
	switch f[0] {
	case "a":
		if len(f) != 3 {
			return op, p.errorf("alloc wants 2 fields (a <id> <size>), got %d", len(f)-1)
		}
		op.Kind = Alloc
		id, err := p.number("id", f[1], 1<<64-1)
		if err != nil {
			return op, err
		}
		size, err := p.number("size", f[2], MaxSize)
		if err != nil {
			return op, err
		}
		if _, dup := p.live[id]; dup {
			return op, p.errorf("duplicate id %d: already live", id)
		}
		p.live[id] = struct{}{}
		op.ID, op.Size = id, int(size)
	case "f":
		if len(f) != 2 {
			return op, p.errorf("free wants 1 field (f <id>), got %d", len(f)-1)
		}
		op.Kind = Free
		id, err := p.number("id", f[1], 1<<64-1)
		if err != nil {
			return op, err
		}
		if _, ok := p.live[id]; !ok {
			return op, p.errorf("free of unknown id %d", id)
		}
		delete(p.live, id)
		op.ID = id
	default:
		return op, p.errorf("unknown op %s (want a or f)", quote(f[0]))
	}
	return op, nil
}

// number parses a decimal field no larger than max.
func (p *Parser) number(what, s string, max uint64) (uint64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' { // no signs: ParseUint takes none, but say so clearly
		return 0, p.errorf("bad %s %s: want a decimal number", what, quote(s))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, p.errorf("bad %s %s: want a decimal number up to %d", what, quote(s), max)
	}
	return n, nil
}

// Live returns how many objects are live after the operations read so far.
func (p *Parser) Live() int { return len(p.live) }

// Line returns the number of the last line read.
func (p *Parser) Line() int { return p.line }

func (p *Parser) errorf(format string, args ...any) error {
	return p.errorAt(p.line, format, args...)
}

func (p *Parser) errorAt(line int, format string, args ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads a whole trace.
func Parse(r io.Reader) ([]Op, error) {
	p, err := NewParser(r)
	if err != nil {
		return nil, err
	}
	var ops []Op
	for {
		op, err := p.Next()
		if err == io.EOF {
			return ops, nil
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
}

// quote quotes s for an error message, shortened to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return strconv.Quote(s)
}
