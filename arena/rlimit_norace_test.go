//go:build !race

package arena

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/offheap/offheap/pages"
	"github.com/offheap/offheap/spans"
)

// The race detector's runtime maps terabytes of shadow memory at start, so
// a race-enabled binary cannot run under an address-space limit at all:
// this test exists only in plain builds.

// Environment of the child process TestNewHeapAddressSpaceLimit starts:
// asLimitEnv is the RLIMIT_AS it runs under (in bytes, set by the shell's
// ulimit -v before exec, so the Go runtime starts under it as it would in
// production); asHeadroomEnv instead asks the child to lower its own limit
// to its current VmSize plus that many bytes, for a limit too tight for
// any heap that the runtime itself still lives with.
const (
	asLimitEnv    = "OFFHEAP_TEST_AS_LIMIT"
	asHeadroomEnv = "OFFHEAP_TEST_AS_HEADROOM"
)

// asChild is the child's side: make a default heap, use it, and print one
// result line for the parent.
func asChild(t *testing.T, limit string) {
	n, err := strconv.ParseUint(limit, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if hr := os.Getenv(asHeadroomEnv); hr != "" {
		headroom, err := strconv.ParseUint(hr, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil {
			t.Fatal(err)
		}
		n = procKB(t, "/proc/self/status", "VmSize") + headroom
		rl.Cur = n
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &rl); err != nil {
			t.Fatal(err)
		}
	}
	room := n - procKB(t, "/proc/self/status", "VmSize")
	h, err := NewHeap(Config{ScavengeDelay: -1})
	if err != nil {
		fmt.Printf("ASRESULT fail room=%d oom=%v err=%v\n", room, errors.Is(err, ErrOutOfMemory), err)
		return
	}
	st := h.Stats()
	res := "ok"
	for _, size := range []int{8, 64, 4096, 1 << 20} {
		p, err := h.Alloc(size)
		if err == nil {
			fillBytes(p, size, 1)
			err = h.Free(p)
		}
		if err != nil {
			res = fmt.Sprintf("alloc(%d): %v", size, err)
			break
		}
	}
	if err := h.Verify(); err != nil && res == "ok" {
		res = "verify: " + err.Error()
	}
	if err := h.Close(); err != nil && res == "ok" {
		res = "close: " + err.Error()
	}
	fmt.Printf("ASRESULT heap room=%d reserved=%d metadata=%d use=%s\n", room, st.Reserved, st.MetadataReserved, res)
}

// addressSpaceNeed is about what NewHeap maps for a heap of size bytes: the
// heap with its alignment slack, the span table, and a MiB for the page
// allocator's metadata.
func addressSpaceNeed(size uint64) uint64 {
	return size + pages.ChunkBytes + uint64(spans.ReserveBytes(uintptr(size/PageSize))) + 1<<20
}

// TestNewHeapAddressSpaceLimit runs NewHeap with the default Config under
// address-space limits (RLIMIT_AS, as ulimit -v sets). The heap's metadata
// needs about a third of the heap's address space again, so halving only
// the heap reservation was not enough: under 1000M, 1500M, 1800M or
// 2300M–2500M NewHeap failed in the span table with an error wrapping no
// arena error. Now the heap and its metadata are halved together, and when
// even the smallest heap does not fit the error wraps ErrOutOfMemory.
func TestNewHeapAddressSpaceLimit(t *testing.T) {
	if limit := os.Getenv(asLimitEnv); limit != "" {
		asChild(t, limit)
		return
	}
	if testing.Short() {
		t.Skip("starts a process per limit")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run ulimit -v")
	}
	// run starts the child under ulimit -v limit, or with headroom.
	run := func(limit, headroom uint64) string {
		args := []string{"-c", `ulimit -v "$1" && shift && exec "$@"`, "sh", "unlimited", exe,
			"-test.run=^TestNewHeapAddressSpaceLimit$", "-test.count=1"}
		env := append(os.Environ(), fmt.Sprintf("%s=%d", asLimitEnv, limit))
		if headroom != 0 {
			env = append(env, fmt.Sprintf("%s=%d", asHeadroomEnv, headroom))
		} else {
			args[3] = strconv.FormatUint(limit>>10, 10) // ulimit -v counts KiB
		}
		cmd := exec.Command(sh, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "ASRESULT "); ok {
				return rest
			}
		}
		t.Fatalf("limit %d MiB, headroom %d MiB: child printed no result (%v):\n%s", limit>>20, headroom>>20, err, out)
		return ""
	}
	// Far too little: the runtime keeps running but even the smallest
	// heap (64 MiB and its metadata) does not fit.
	if res := run(1, 48<<20); !strings.HasPrefix(res, "fail ") || !strings.Contains(res, " oom=true ") {
		t.Errorf("48 MiB of address space left: NewHeap = %s; want a failure wrapping ErrOutOfMemory", res)
	} else {
		t.Logf("48 MiB of address space left: %s", res)
	}
	// What the Go runtime maps itself may change between the child's
	// reading of VmSize and NewHeap; allow this much either way.
	const slack = 32 << 20
	var heaps, fails int
	for _, mib := range []uint64{1000, 1500, 1800, 2400} {
		res := run(mib<<20, 0)
		t.Logf("RLIMIT_AS %d MiB: %s", mib, res)
		kv := map[string]string{}
		for _, f := range strings.Fields(res)[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		room, _ := strconv.ParseUint(kv["room"], 10, 64)
		switch {
		case strings.HasPrefix(res, "heap "):
			heaps++
			reserved, _ := strconv.ParseUint(kv["reserved"], 10, 64)
			if kv["use"] != "ok" {
				t.Errorf("RLIMIT_AS %d MiB: the heap is not usable: %s", mib, res)
			}
			// Halving stops at the first size that fits.
			if reserved < DefaultReserve && addressSpaceNeed(2*reserved)+slack < room {
				t.Errorf("RLIMIT_AS %d MiB: reserved %d bytes, but %d (with metadata %d) would fit in %d",
					mib, reserved, 2*reserved, addressSpaceNeed(2*reserved), room)
			}
		case strings.HasPrefix(res, "fail "):
			fails++
			if kv["oom"] != "true" {
				t.Errorf("RLIMIT_AS %d MiB: NewHeap error does not wrap ErrOutOfMemory: %s", mib, res)
			}
			if need := addressSpaceNeed(minReserve); need+slack < room {
				t.Errorf("RLIMIT_AS %d MiB: NewHeap failed with %d bytes of room; the smallest heap needs %d", mib, room, need)
			}
		default:
			t.Errorf("RLIMIT_AS %d MiB: %s", mib, res)
		}
	}
	if heaps == 0 {
		t.Error("no limit left room for a heap")
	}
	t.Logf("%d limits gave a heap; under %d NewHeap failed (too little room)", heaps, fails)
}
