package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealMainLeavesPanics: a panic is a bug, and realMain lets it
// through with its stack trace rather than turning it into an error line.
func TestRealMainLeavesPanics(t *testing.T) {
	saved := commands
	defer func() { commands = saved }()
	commands = append(commands, command{name: "boom", run: func([]string, *output) error { panic("kaboom") }})
	var stdout, stderr bytes.Buffer
	defer func() {
		if r := recover(); r != "kaboom" {
			t.Fatalf("recovered %v, want the panic to reach the caller", r)
		}
		if stderr.Len() != 0 {
			t.Fatalf("stderr %q", stderr.String())
		}
	}()
	realMain([]string{"boom"}, &stdout, &stderr)
	t.Fatal("realMain returned")
}

// TestExitCodes: usage errors exit 2, other failures 1.
func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.trace")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"run", "-nope"}, exitUsage},
		{[]string{"run", "-memlimit", "lots"}, exitUsage},
		{[]string{"run", "-format", "xml"}, exitUsage},
		{[]string{"run", "-workload", "nope"}, exitUsage},
		{[]string{"run", "-duration", "-1s"}, exitUsage},
		{[]string{"run", "extra"}, exitUsage},
		{[]string{"replay"}, exitUsage},
		{[]string{"replay", "a", "b"}, exitUsage},
		{[]string{"replay", missing, "-format", "json"}, exitUsage},
		{[]string{"attach"}, exitUsage},
		{[]string{"attach", "ftp://h/"}, exitUsage},
		{[]string{"attach", "-watch", "-1s", "h:1"}, exitUsage},
		{[]string{"map", "a", "b"}, exitUsage},
		{[]string{"replay", missing}, exitBad},
		{[]string{"attach", "127.0.0.1:1"}, exitBad},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(tc.args, &stdout, &stderr); code != tc.code || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and one line", tc.args, code, stderr.String(), tc.code)
		}
	}
}

func TestRealMainDispatch(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "replay") {
		t.Fatalf("help: %d %q", code, stdout.String())
	}
	stdout.Reset()
	// Flags without a command go to run.
	if code := realMain([]string{"-workload", "nope"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "arenastat run: unknown workload") {
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
