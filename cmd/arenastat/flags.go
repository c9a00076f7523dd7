package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/offheap/offheap/internal/heapview"
)

// The report formats.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatProm  = "prom"
)

var formats = []string{formatTable, formatJSON, formatProm}

// usageError is a misuse of the command line: an unknown or malformed
// flag, a bad flag value, the wrong number of arguments, an unknown
// command. realMain exits with exitUsage for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flagSet is a command's flags, with the ones several commands share
// (-format, -memlimit) added and checked in one place.
type flagSet struct {
	*flag.FlagSet
	format   string       // -format's value, if addFormat was called
	memLimit memLimitFlag // -memlimit's value, if addMemLimit was called

	hasFormat bool
}

// newFlagSet returns a flag set that returns errors to the caller instead
// of printing them (parse prints the usage for -h).
func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet("arenastat "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs}
}

// addFormat adds -format, which parse checks.
func (fs *flagSet) addFormat() {
	fs.hasFormat = true
	fs.StringVar(&fs.format, "format", formatTable, "report format: "+strings.Join(formats, ", "))
}

// addMemLimit adds -memlimit (arena.Config.MemoryLimit) with the default
// def, memLimitAuto or memLimitNone.
func (fs *flagSet) addMemLimit(def string) {
	if err := fs.memLimit.Set(def); err != nil {
		panic("arenastat: bad -memlimit default " + def) // a bug in the caller
	}
	fs.Var(&fs.memLimit, "memlimit", fmt.Sprintf("the heap's memory limit (arena.Config.MemoryLimit): `BYTES`, or with a unit "+
		"(256MiB, 2GiB); %s (or 0) for no limit; %s for %d%% of the machine's available memory (MemAvailable in %s)",
		memLimitNone, memLimitAuto, autoLimitPercent, meminfoPath))
}

// memoryLimit resolves -memlimit into arena.Config.MemoryLimit and a note
// for the report saying what the limit is and where it came from. auto
// reads /proc/meminfo; where that cannot be read there is no limit, and
// the note says why.
func (fs *flagSet) memoryLimit() (int64, string) {
	m := fs.memLimit
	switch {
	case !m.auto && m.bytes == 0:
		return 0, "none (-memlimit " + memLimitNone + ")"
	case !m.auto:
		return m.bytes, fmt.Sprintf("%s (-memlimit)", heapview.Bytes(uint64(m.bytes)))
	}
	b, err := os.ReadFile(meminfoPath)
	if err != nil {
		return 0, fmt.Sprintf("none (-memlimit %s: %v)", memLimitAuto, err)
	}
	limit, note, err := autoMemLimit(string(b))
	if err != nil {
		return 0, fmt.Sprintf("none (-memlimit %s: %v)", memLimitAuto, err)
	}
	return limit, note
}

// The -memlimit spellings other than a byte count.
const (
	memLimitAuto = "auto"
	memLimitNone = "none"
)

// memLimitFlag is -memlimit's value: a byte count (0 means no limit, as in
// arena.Config.MemoryLimit), "none" (the same), or "auto".
type memLimitFlag struct {
	bytes int64
	auto  bool
}

func (m *memLimitFlag) String() string {
	switch {
	case m.auto:
		return memLimitAuto
	case m.bytes == 0:
		return memLimitNone
	}
	return strconv.FormatInt(m.bytes, 10)
}

func (m *memLimitFlag) Set(s string) error {
	switch s {
	case memLimitAuto:
		*m = memLimitFlag{auto: true}
		return nil
	case memLimitNone:
		*m = memLimitFlag{}
		return nil
	}
	n, err := parseBytes(s)
	if err != nil {
		return fmt.Errorf("%w, %s or %s", err, memLimitNone, memLimitAuto)
	}
	*m = memLimitFlag{bytes: n}
	return nil
}

const (
	// meminfoPath is where Linux tells the machine's memory.
	meminfoPath = "/proc/meminfo"
	// autoLimitPercent is the share of the machine's available memory
	// (MemAvailable: free memory plus what the kernel can reclaim without
	// swapping) that -memlimit auto gives the heap. The rest is left for
	// arenastat's own Go heap (replay keeps an entry per live object), the
	// page tables and the machine's other processes, so that a trace asking
	// for more than the machine has meets the heap's ErrOutOfMemory rather
	// than the kernel's OOM killer.
	autoLimitPercent = 75
)

// autoMemLimit derives -memlimit auto from the text of /proc/meminfo:
// autoLimitPercent of MemAvailable, or of MemTotal on kernels too old to
// report MemAvailable (before 3.14). It returns the limit and a note for
// the report.
func autoMemLimit(meminfo string) (int64, string, error) {
	fields := map[string]uint64{}
	for line := range strings.Lines(meminfo) {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "MemAvailable" && key != "MemTotal") {
			continue
		}
		f := strings.Fields(rest)
		kb, err := uint64(0), error(nil)
		if len(f) == 2 && f[1] == "kB" {
			kb, err = strconv.ParseUint(f[0], 10, 64)
		}
		if len(f) != 2 || f[1] != "kB" || err != nil || kb == 0 || kb > math.MaxInt64>>10/100 {
			return 0, "", fmt.Errorf("%s: odd line %q", meminfoPath, strings.TrimSpace(line))
		}
		fields[key] = kb << 10
	}
	key := "MemAvailable"
	mem, ok := fields[key]
	if !ok {
		key = "MemTotal"
		if mem, ok = fields[key]; !ok {
			return 0, "", fmt.Errorf("%s: no MemAvailable or MemTotal", meminfoPath)
		}
	}
	limit := int64(mem * autoLimitPercent / 100)
	return limit, fmt.Sprintf("%s (-memlimit %s: %d%% of %s %s; set -memlimit to change)",
		heapview.Bytes(uint64(limit)), memLimitAuto, autoLimitPercent, key, heapview.Bytes(mem)), nil
}

// parse parses flags, which come before the arguments as Go's flag package
// expects ("attach -watch 1s URL"; "--" ends them), and returns the
// arguments. A flag after an argument is refused rather than taken for an
// argument. For -h it prints the flags to stderr and returns flag.ErrHelp;
// every other error is a usageError.
func (fs *flagSet) parse(args []string, out *output) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out.stderr)
			fmt.Fprintf(out.stderr, "usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			return nil, err
		}
		return nil, usageError{err}
	}
	pos := fs.Args()
	dashes := len(args) > len(pos) && args[len(args)-len(pos)-1] == "--"
	for _, a := range pos {
		if !dashes && len(a) > 1 && a[0] == '-' {
			return nil, usagef("flag %s after the arguments: flags go first (%s -h for usage)", a, fs.Name())
		}
	}
	if fs.hasFormat {
		if err := checkFormat(fs.format); err != nil {
			return nil, usageError{err}
		}
	}
	return pos, nil
}

// checkFormat validates a -format value.
func checkFormat(f string) error {
	for _, ok := range formats {
		if f == ok {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q (want %s)", f, strings.Join(formats, ", "))
}

// byteUnits are the suffixes parseBytes takes: IEC binary ones as
// GOMEMLIMIT spells them, their one-letter shorthands, and SI decimal ones.
var byteUnits = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// parseBytes parses a byte count: plain ("268435456") or with a unit
// ("256MiB", "1.5GiB", "512M", "2GB").
func parseBytes(s string) (int64, error) {
	num, mult := s, uint64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	bad := fmt.Errorf("bad byte count %q (want e.g. 268435456, 256MiB, 1GiB)", s)
	if num == "" || num[0] == '-' || num[0] == '+' {
		return 0, bad
	}
	if n, err := strconv.ParseUint(num, 10, 63); err == nil {
		if n > math.MaxInt64/mult {
			return 0, bad
		}
		return int64(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}
