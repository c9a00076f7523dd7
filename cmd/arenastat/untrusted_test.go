package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// hostileBody is what a hostile or broken server might answer: an OSC
// sequence that sets the terminal's title, one that clears the screen, a
// bell, a right-to-left override, and far more text than an error needs.
var hostileBody = "\x1b]0;pwned\x07\x1b[H\x1b[2J\u202eevil\r\nmore\u009b31m" + strings.Repeat("A", 10000)

func TestUntrustedEscapesAndCaps(t *testing.T) {
	got := untrusted(hostileBody)
	for _, bad := range []string{"\x1b", "\x07", "\r", "\n", "\u202e", "\u009b"} {
		if strings.Contains(got, bad) {
			t.Errorf("untrusted kept %q: %q", bad, got)
		}
	}
	for _, want := range []string{`\x1b]0;pwned\a\x1b[H`, `\u202eevil\r\nmore`, `\u009b31m`} {
		if !strings.Contains(got, want) {
			t.Errorf("untrusted(...) = %q, want it to show %q", got, want)
		}
	}
	// The cut is made on the input, at maxUntrusted bytes, and says how
	// much was left off.
	if want := "... (" + strconv.Itoa(len(hostileBody)-maxUntrusted) + " more bytes)"; !strings.HasSuffix(got, want) {
		t.Errorf("untrusted(...) ends %q, want %q", got[max(0, len(got)-40):], want)
	}
	if got := untrusted("plain text, ünïcode"); got != "plain text, ünïcode" {
		t.Errorf("printable text changed: %q", got)
	}
	// A cut never splits a UTF-8 sequence into an escaped fragment.
	s := strings.Repeat("a", maxUntrusted-1) + "é" + "tail"
	if got := untrusted(s); strings.Contains(got, `\x`) {
		t.Errorf("cut inside a rune: %q", got[len(got)-30:])
	}
	// Invalid UTF-8 is shown as bytes.
	if got := untrusted("a\xffb"); got != `a\xffb` {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

// TestAttachErrorBodyEscaped: a server's error reply reaches the terminal
// escaped and cut short, whatever it holds.
func TestAttachErrorBodyEscaped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(hostileBody))
	}))
	defer srv.Close()
	for _, args := range [][]string{{"attach", srv.URL}, {"map", srv.URL}} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != exitBad {
			t.Fatalf("%q: exit %d", args, code)
		}
		got := stderr.String()
		for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "\u009b"} {
			if strings.Contains(got, bad) {
				t.Errorf("%q: stderr carries %q: %q", args, bad, got)
			}
		}
		if !strings.Contains(got, `\x1b]0;pwned`) || !strings.Contains(got, "more bytes)") {
			t.Errorf("%q: stderr %q", args, got)
		}
		if len(got) > 2*maxUntrusted+200 {
			t.Errorf("%q: %d bytes on stderr", args, len(got))
		}
		if strings.Count(got, "\n") != 1 {
			t.Errorf("%q: stderr not one line: %q", args, got)
		}
	}
}
