package main

import (
	"errors"
	"io"
	"slices"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "268435456": 268435456, "256MiB": 256 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10,
		"64B": 64, "1.5GiB": 3 << 29, "512M": 512 << 20, "2G": 2 << 30, "2GB": 2e9, "10KB": 10000, "1TiB": 1 << 40,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+5", "MiB", "12XB", "1e400", "99999999999TiB", "NaN", "0x10"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseFlagsFirst(t *testing.T) {
	out := &output{stdout: io.Discard, stderr: io.Discard}
	fs := newFlagSet("t")
	watch := fs.Duration("watch", 0, "")
	count := fs.Int("count", 0, "")
	pos, err := fs.parse([]string{"-watch", "1s", "-count=3", "http://x/", "more"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []string{"http://x/", "more"}) || watch.Seconds() != 1 || *count != 3 {
		t.Fatalf("pos %q watch %v count %d", pos, *watch, *count)
	}
	// "--" ends the flags: what follows is an argument even if it looks
	// like a flag.
	if pos, err := newFlagSet("t").parse([]string{"--", "-notaflag"}, out); err != nil || !slices.Equal(pos, []string{"-notaflag"}) {
		t.Fatalf("after --: %q, %v", pos, err)
	}
	// Every other failure is a usage error: unknown flags, flags after
	// the arguments (once taken, now refused rather than read as an
	// argument), a bad -format.
	fs = newFlagSet("t")
	fs.Duration("watch", 0, "")
	fs.addFormat()
	for _, args := range [][]string{{"-nope"}, {"http://x/", "-watch", "1s"}, {"-format", "xml"}, {"-watch", "soon"}} {
		_, err := fs.parse(args, out)
		if !errors.As(err, new(usageError)) {
			t.Errorf("parse(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestHandlerURL(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:6060":                        "http://localhost:6060/",
		"http://h:1/debug/offheap":              "http://h:1/debug/offheap/",
		"http://h:1/debug/offheap/?format=prom": "http://h:1/debug/offheap/",
		"http://h:1/debug/offheap/metrics":      "http://h:1/debug/offheap/",
		"https://h/debug/offheap/pagemap#x":     "https://h/debug/offheap/",
		"127.0.0.1:1":                           "http://127.0.0.1:1/",
	} {
		u, err := handlerURL(in)
		if err != nil || u.String() != want {
			t.Errorf("handlerURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"ftp://h/", "http://", "http://h:1/%zz"} {
		if u, err := handlerURL(in); err == nil {
			t.Errorf("handlerURL(%q) = %v, want an error", in, u)
		}
	}
}

func TestCheckFormat(t *testing.T) {
	for _, f := range formats {
		if checkFormat(f) != nil {
			t.Error(f)
		}
	}
	if checkFormat("xml") == nil {
		t.Error("xml accepted")
	}
}
