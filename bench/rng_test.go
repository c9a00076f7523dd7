package bench

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestCDriverRNGMatchesGo builds the C driver and checks that its RNG
// draws the same numbers, uniform sizes and log-uniform sizes as the Go
// side for the same seed: the fairness of the comparison rests on every
// allocator getting the same sequence. Skipped without a C compiler.
func TestCDriverRNGMatchesGo(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	bin := filepath.Join(t.TempDir(), "shapes")
	if out, err := exec.Command(cc, "-O2", "-pthread", "-o", bin, "c/shapes.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	const seed = 12345
	out, err := exec.Command(bin, "workloads=rng-check", "seed="+strconv.Itoa(seed)).Output()
	if err != nil {
		t.Fatalf("shapes rng-check: %v", err)
	}
	var got struct {
		Next       []uint64 `json:"next"`
		Uniform    []int    `json:"uniform"`
		LogUniform []int    `json:"log_uniform"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r := newRNG(seed, 0)
	var next []uint64
	var uni, logu []int
	for range 4 {
		next = append(next, r.next())
	}
	for range 4 {
		uni = append(uni, r.uniform(8, 1000))
	}
	for range 4 {
		logu = append(logu, r.logUniform(4, 32768))
	}
	if !slices.Equal(got.Next, next) || !slices.Equal(got.Uniform, uni) || !slices.Equal(got.LogUniform, logu) {
		t.Errorf("C draws %+v\nGo draws next %v uniform %v logUniform %v", got, next, uni, logu)
	}
}

// TestLogUniformBounds checks logUniform stays in range and favours small
// sizes, as its doc says.
func TestLogUniformBounds(t *testing.T) {
	r := newRNG(1, 0)
	small := 0
	const n, lo, hi = 100_000, 4, 32768
	for range n {
		v := r.logUniform(lo, hi)
		if v < lo || v > hi {
			t.Fatalf("logUniform(%d, %d) = %d", lo, hi, v)
		}
		if v < 1024 {
			small++
		}
	}
	// Under 1 KiB is 3% of the range but, at one power of two in 16 per
	// draw, more than half of the draws.
	if small < n/2 {
		t.Errorf("%d of %d draws under 1 KiB; want more than half", small, n)
	}
}
