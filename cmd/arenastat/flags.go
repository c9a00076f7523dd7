package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
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
	format   string    // -format's value, if addFormat was called
	memLimit bytesFlag // -memlimit's value, if addMemLimit was called

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

// addMemLimit adds -memlimit, arena.Config.MemoryLimit.
func (fs *flagSet) addMemLimit() {
	fs.Var(&fs.memLimit, "memlimit", "arena.Config.MemoryLimit: bytes, or with a unit (256MiB); 0 for none")
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

// bytesFlag is a flag.Value holding a byte count.
type bytesFlag int64

func (b *bytesFlag) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *bytesFlag) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = bytesFlag(n)
	return nil
}
