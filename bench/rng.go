package bench

import "math/bits"

// rng is splitmix64: tiny, fast, and easy to write identically in C
// (c/shapes.c has the same function), so every allocator, Go or native,
// is given the same sequence of sizes and slot choices.
type rng struct{ s uint64 }

// golden is splitmix64's increment, 2^64 / φ.
const golden = 0x9e3779b97f4a7c15

// newRNG seeds worker w of a run: the seed mixes the run's seed with the
// worker's index so workers differ but every allocator sees the same
// streams.
func newRNG(seed uint64, worker int) rng {
	return rng{s: seed ^ golden*uint64(worker+1)}
}

func (r *rng) next() uint64 {
	r.s += golden
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// uniform returns a size in [lo, hi], every size equally likely.
func (r *rng) uniform(lo, hi int) int { return lo + int(r.next()%uint64(hi-lo+1)) }

// logUniform returns a size in [lo, hi] whose power of two is drawn
// uniformly: small sizes are far more likely than large ones, about a 1/x
// density, the shape of glibc's bench-malloc-thread and of alloc-test's
// Pareto-like mix. Integer-only so C computes the same sizes.
func (r *rng) logUniform(lo, hi int) int {
	span := uint64(hi - lo + 1)
	k := r.next() % uint64(bits.Len64(span)+1)
	w := uint64(1) << k // 0 when k is 64
	if w == 0 || w > span {
		w = span
	}
	return lo + int(r.next()%w)
}
