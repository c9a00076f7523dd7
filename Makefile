# offheap build and test entry points. `make test` is what CI runs.
GO        ?= go
FUZZTIME  ?= 1m
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
# staticcheck is pinned so lint results do not drift with new releases.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test fmtcheck vet unit-race unit unit-nolinkname timing bench fuzz generate lint

# test: format check, vet, then every package's tests twice: with the race
# detector (unit-race) and without it (unit), because the two builds take
# different code paths (per-P caches are pinned with procPin only without
# the race detector; counters are plain words there). `go test` also runs
# each fuzz target over its seed corpus (testdata/fuzz/). timing then runs,
# uninstrumented and alone, the two tests whose promises are about time
# (the unit run skips them: other packages' tests run in parallel there;
# the race build runs them with the bounds relaxed or left out, see
# arena/latency_race_test.go).
TIMING_TESTS = ^(TestGCIndependentOfHeap|TestScavengerRSSLatency)$$

test: fmtcheck vet unit-race unit unit-nolinkname timing

fmtcheck:
	@out=$$(gofmt -l . | grep -v '^testdata/' || true); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags invariants ./...
	$(GO) vet -tags offheap_nolinkname ./arena/...

# unit-race also compiles in the invariants build tag: assertions that the
# heap lock is held in ...Locked functions and that check panics are raised
# with no lock held (arena/invariants_on.go).
unit-race:
	$(GO) test -race -tags invariants -count=1 -timeout=15m ./...

unit:
	$(GO) test -count=1 -timeout=15m -skip '$(TIMING_TESTS)' ./...

# unit-nolinkname: arena built without go:linkname (per-P caches behind
# mutexes, picked at random), the fallback if runtime.procPin goes away.
unit-nolinkname:
	$(GO) test -tags offheap_nolinkname -count=1 -timeout=15m -skip '$(TIMING_TESTS)' ./arena/...

timing:
	$(GO) test -count=1 -run '$(TIMING_TESTS)' ./arena

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./...

# bench-compare: every allocator shape of bench/ (mimalloc-bench's larson,
# xmalloc, cache-scratch/thrash, mstress, alloc-test, glibc-simple/thread,
# alloc+free pairs) side by side on offheap, the Go heap, Go arenas, cgo and
# glibc/tcmalloc/jemalloc/mimalloc, as one table (bench/README.md). It
# apt-get installs missing native allocators. BENCH_QUICK=1: under 2
# minutes; the full run takes about 5-10 minutes on 2 cores.
.PHONY: bench-compare
bench-compare:
	BENCH_QUICK=$(BENCH_QUICK) GO=$(GO) ./bench/compare.sh $(BENCH_FLAGS)

# fuzz: run every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

generate:
	$(GO) generate ./...

lint:
	$(GO) run $(STATICCHECK) ./...
