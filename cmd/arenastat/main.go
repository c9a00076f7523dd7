// Command arenastat runs workloads on an offheap heap, replays allocation
// traces, or attaches to a live process, and reports the heap's figures:
// a table, JSON or Prometheus text, and a picture of the page map.
//
// Usage:
//
//	arenastat [run flags]                    the default workload (mixed, 3s)
//	arenastat run -workload NAME -duration D -goroutines N -memlimit BYTES [-ops N] [-record FILE] [-fill BYTES] [-turnover PERCENT]
//	arenastat replay [-memlimit BYTES|none|auto] FILE
//	arenastat attach [-watch D] [-count N] URL
//	arenastat map [-o map.png] [-duration D] [URL]
//
// Every report takes -format table|json|prom. -memlimit is the heap's
// memory limit: a byte count, none (or 0) for no limit, or auto for 75% of
// the machine's available memory; replay defaults to auto (a trace may ask
// for more memory than the machine has, and the heap's ErrOutOfMemory is
// a clearer end than the kernel's OOM killer) and stops, with an error, at
// the first allocation the limit refuses; run defaults to none. Workloads: mixed (producers
// and consumers passing mixed-size objects over channels), small (steady
// small objects), growshrink (grow to a peak, free most, scavenge: memory
// coming back), massdelete (fill -fill bytes of 64-512 B objects, delete
// 90 % at random, then churn at the live size left for -duration, 30s by
// default, printing in-use memory over live memory every second: does
// the heap shrink back to its live size?). Traces are in the format of package
// github.com/offheap/offheap/trace; URLs are those of an arenahttp handler,
// e.g. http://localhost:6060/debug/offheap/.
//
// Every flag comes before the arguments ("attach -watch 1s URL"), as Go's
// flag package expects; "--" ends the flags. A usage error (an unknown or
// malformed flag, a bad flag value, the wrong number of arguments, an
// unknown command) gets one line on stderr and exit status 2; any other
// failure (a missing file, a refused connection, a bad reply or trace) one
// line and exit status 1. A panic is a bug in arenastat or offheap: it is
// left to crash with its stack trace.
//
// arenastat knows nothing of offheap's internals: it uses package arena's
// exported API only.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	// exitBad is the exit status for a failure other than a usage error:
	// bad input (a file, a reply) or a failed run.
	exitBad = 1
	// exitUsage is the exit status for a usageError, as Go's flag package
	// and most Unix tools use it.
	exitUsage = 2
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name, args, about string
	run               func(args []string, out *output) error
}

var commands = []command{
	{"run", "[-workload NAME] [-duration D] [-goroutines N] [-memlimit BYTES|none|auto] [-ops N] [-record FILE] [-fill BYTES] [-turnover PERCENT] [-format F]",
		"run a workload on a fresh heap and report", runCmd},
	{"replay", "[-memlimit BYTES|none|auto] [-format F] FILE", "replay an allocation trace on a fresh heap and report", replayCmd},
	{"attach", "[-watch D] [-count N] [-format F] URL", "report a live process's heap, read from its arenahttp handler", attachCmd},
	{"map", "[-o FILE.png] [-duration D] [URL]", "draw the page map of a live process, or of a fresh heap after the default workload", mapCmd},
}

// output is where a command writes; terminal says stdout is a terminal.
type output struct {
	stdout, stderr io.Writer
	terminal       bool
}

// realMain runs arenastat and returns its exit status. It does not recover
// panics: one is a bug, and its stack trace is what finds it.
func realMain(args []string, stdout, stderr io.Writer) int {
	out := &output{stdout: stdout, stderr: stderr, terminal: isTerminal(stdout)}
	name, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
	// "help", or -h alone, gives the overview of the commands; -h after a
	// command (or with run's flags) gives that command's flags.
	if name == "help" || (len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")) {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(rest, out)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "arenastat %s: %s\n", name, oneLine(err.Error()))
			if errors.As(err, new(usageError)) {
				return exitUsage
			}
			return exitBad
		}
		return 0
	}
	fmt.Fprintf(stderr, "arenastat: unknown command %q (want %s, or help)\n", name, commandNames())
	return exitUsage
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: arenastat [command] [flags]\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\n      %s\n", c.name, c.args, c.about)
	}
	fmt.Fprintf(w, "\nWith no command, arenastat runs the %s workload. Workloads: %s.\n", defaultWorkload, workloadNames())
	fmt.Fprintf(w, "Run arenastat COMMAND -h for a command's flags.\n")
}

// oneLine flattens a message to one line, with any control character
// left in it escaped (escapeControls): errors can quote what a server, a
// trace file or a file name held, and those reach the terminal here.
func oneLine(s string) string {
	return escapeControls(strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")), " "))
}

// isTerminal reports whether w is a terminal: a character device other
// than the null device (which is one too).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}
