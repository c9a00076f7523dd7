package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestRealMainRecoversPanics(t *testing.T) {
	saved := commands
	defer func() { commands = saved }()
	commands = append(commands, command{name: "boom", run: func([]string, *output) error { panic("kaboom\nsecond line") }})
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"boom"}, &stdout, &stderr); code != exitBad {
		t.Fatalf("exit %d", code)
	}
	if got := stderr.String(); got != "arenastat: internal error: kaboom; second line\n" {
		t.Fatalf("stderr %q", got)
	}
}

func TestRealMainDispatch(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "replay") {
		t.Fatalf("help: %d %q", code, stdout.String())
	}
	stdout.Reset()
	// Flags without a command go to run.
	if code := realMain([]string{"-workload", "nope"}, &stdout, &stderr); code != exitBad || !strings.Contains(stderr.String(), "arenastat run: unknown workload") {
		t.Fatalf("flags only: %d %q", code, stderr.String())
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("the null device is a terminal")
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb  c\n"); got != "a; b c" {
		t.Fatalf("%q", got)
	}
}
