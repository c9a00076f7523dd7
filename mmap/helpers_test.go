package mmap

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bytesAt views n bytes of off-heap memory at addr. Reinterpreting the
// uintptr's bits (rather than converting it) keeps vet's unsafeptr check
// quiet; the memory is not Go's, so the GC ignores the pointer.
func bytesAt(addr, n uintptr) []byte {
	p := *(**byte)(unsafe.Pointer(&addr))
	return unsafe.Slice(p, n)
}

// touch writes v to the first byte of every page of [addr, addr+n).
func touch(addr, n uintptr, v byte) {
	b := bytesAt(addr, n)
	for off := uintptr(0); off < n; off += PageSize() {
		b[off] = v
	}
}

// resident returns mincore's view of [addr, addr+n): one bool per page.
func resident(t testing.TB, addr, n uintptr) []bool {
	t.Helper()
	vec := make([]byte, (n+PageSize()-1)/PageSize())
	_, _, e := unix.Syscall(unix.SYS_MINCORE, addr, n, uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		t.Fatalf("mincore(%#x, %d): %v", addr, n, e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// countResident is ResidentPages, failing the test on an error; it checks
// ResidentPages against the per-page view as it goes.
func countResident(t testing.TB, addr, n uintptr) int {
	t.Helper()
	c, err := ResidentPages(addr, n)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range resident(t, addr, n) {
		if r {
			want++
		}
	}
	if c != want {
		t.Fatalf("ResidentPages(%#x, %d) = %d, mincore's pages say %d", addr, n, c, want)
	}
	return c
}

// rssBytes is the process's resident set size from /proc/self/statm.
func rssBytes(t testing.TB) uintptr {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return uintptr(pages) * PageSize()
}

// smapsRss returns the Rss, in bytes, of the VMA that starts at start.
func smapsRss(t testing.TB, start uintptr) uintptr {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefix := fmt.Sprintf("%x-", start)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(strings.Fields(line)[0], "-") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = strings.HasPrefix(line, prefix)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return uintptr(kb) << 10
		}
	}
	t.Fatalf("no VMA at %#x in /proc/self/smaps", start)
	return 0
}

// mapsLine returns the /proc/self/maps line of the VMA starting at start.
func mapsLine(t testing.TB, start uintptr) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%x-", start)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no VMA at %#x in /proc/self/maps", start)
	return ""
}

//go:noinline
func load(addr uintptr) byte { return bytesAt(addr, 1)[0] }

// faultOn reads the byte at addr and reports the address of the fault it
// caused, or ok=false if the read succeeded.
func faultOn(t testing.TB, addr uintptr) (fault uintptr, ok bool) {
	t.Helper()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if _, isRT := r.(runtime.Error); !isRT {
			panic(r)
		}
		a, hasAddr := r.(interface{ Addr() uintptr })
		if !hasAddr {
			t.Fatalf("fault panic %v carries no address", r)
		}
		fault, ok = a.Addr(), true
	}()
	load(addr)
	return 0, false
}

// reserve reserves size bytes with k and releases them when the test ends.
func reserve(t testing.TB, size uintptr, k Kernel) *Mapping {
	t.Helper()
	m, err := Reserve(size, k)
	if err != nil {
		t.Fatalf("Reserve(%d): %v", size, err)
	}
	t.Cleanup(func() { _ = m.Release() })
	return m
}
