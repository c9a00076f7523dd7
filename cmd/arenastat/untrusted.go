package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxUntrusted is how many bytes of a server's text arenastat prints. An
// honest handler's error is one short line (arenahttp's are under 100
// bytes); 512 leaves room for a proxy's or a framework's message and stops
// a hostile or broken server from flooding the terminal.
const maxUntrusted = 512

// untrusted makes text that came from outside arenastat (a server's error
// body or status line) safe to print on a terminal: cut to maxUntrusted
// bytes with a note of how many were left off, and escaped as by
// escapeControls.
func untrusted(s string) string {
	if len(s) <= maxUntrusted {
		return escapeControls(s)
	}
	cut := maxUntrusted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a UTF-8 sequence
	}
	return fmt.Sprintf("%s... (%d more bytes)", escapeControls(s[:cut]), len(s)-cut)
}

// escapeControls shows every character that is not printable (C0 and C1
// controls, DEL, format characters such as the bidirectional overrides)
// the way strconv.Quote does (\x1b, \n, \u202e), and invalid UTF-8 as
// \xff: an ESC could otherwise start an escape or OSC sequence that clears
// the screen, moves the cursor or sets the window title, and an override
// could make the text read other than it is. Printable text, including
// non-ASCII letters, is kept as is.
func escapeControls(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\x1b': drop the quotes
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
