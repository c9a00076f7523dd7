package trace

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	in := "offheap-trace v1\r\n# comment\n\na 0 24\n  a\t1   100000\nf 0\na 0 8\nf 1\n"
	ops, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{
		{Alloc, 0, 24, 4}, {Alloc, 1, 100000, 5}, {Free, 0, 0, 6}, {Alloc, 0, 8, 7}, {Free, 1, 0, 8},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %d ops %v, want %d", len(ops), ops, len(want))
	}
	for i := range ops {
		if ops[i] != want[i] {
			t.Errorf("op %d = %+v, want %+v", i, ops[i], want[i])
		}
	}
}

func TestParseHeaderOnly(t *testing.T) {
	ops, err := Parse(strings.NewReader(Header))
	if err != nil || len(ops) != 0 {
		t.Fatalf("Parse(header) = %v, %v", ops, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		line int
		msg  string
	}{
		{"", 1, "empty trace"},
		{"offheap-trace v2\n", 1, `unsupported trace version "v2"`},
		{"hello\n", 1, `bad header "hello"`},
		{Header + "\nx 1\n", 2, `unknown op "x"`},
		{Header + "\n\n# c\nalloc 1 2\n", 4, `unknown op "alloc"`},
		{Header + "\na 1\n", 2, "alloc wants 2 fields"},
		{Header + "\na 1 2 3\n", 2, "alloc wants 2 fields"},
		{Header + "\nf\n", 2, "free wants 1 field"},
		{Header + "\na x 2\n", 2, `bad id "x"`},
		{Header + "\na -1 2\n", 2, `bad id "-1"`},
		{Header + "\na 1 +2\n", 2, `bad size "+2"`},
		{Header + "\na 1 0x10\n", 2, `bad size "0x10"`},
		{Header + "\na 18446744073709551616 1\n", 2, "bad id"},
		{Header + "\na 1 1099511627777\n", 2, "bad size"},
		{Header + "\na 1 8\na 2 8\na 1 8\n", 4, "duplicate id 1"},
		{Header + "\na 1 8\nf 2\n", 3, "free of unknown id 2"},
		{Header + "\na 1 8\nf 1\nf 1\n", 4, "free of unknown id 1"},
		{Header + "\n" + strings.Repeat("#", maxLineBytes+1) + "\n", 2, "line longer than"},
	} {
		_, err := Parse(strings.NewReader(tc.in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%.40q) = %v, want a *SyntaxError", tc.in, err)
			continue
		}
		if se.Line != tc.line || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%.40q) = line %d %q, want line %d containing %q", tc.in, se.Line, se.Msg, tc.line, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "line ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q should be one line starting with the line number", err)
		}
	}
}

func TestParserStickyError(t *testing.T) {
	p, err := NewParser(strings.NewReader(Header + "\nz\na 1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := p.Next()
	_, err2 := p.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v, want the same error twice", err1, err2)
	}
	p, _ = NewParser(strings.NewReader(Header + "\na 1 1\n"))
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	if p.Live() != 1 || p.Line() != 2 {
		t.Fatalf("Live %d Line %d, want 1 2", p.Live(), p.Line())
	}
}

func TestOpString(t *testing.T) {
	if s := (Op{Kind: Alloc, ID: 3, Size: 40}).String(); s != "a 3 40" {
		t.Error(s)
	}
	if s := (Op{Kind: Free, ID: 3}).String(); s != "f 3" {
		t.Error(s)
	}
}
