/*
 * shapes: the benchmark shapes of package bench (larson, xmalloc,
 * cache-scratch, cache-thrash, mstress, alloc-test, glibc-simple,
 * glibc-thread, pair-N) in C with pthreads, for native allocators put in
 * place with LD_PRELOAD (glibc's own malloc when nothing is preloaded).
 *
 * Same RNG (splitmix64), same seeds, sizes, slot choices, touches and
 * timing as the Go side (the .go files beside this directory): the two
 * must stay in step, and bench/README.md says so. Parameters come as name=value arguments
 * (cmd/arenabench passes its own flags through):
 *
 *   shapes alloc=NAME workloads=larson,pair-64 threads=1,2 duration-ms=1000 \
 *          seed=42 larson-live=5000 ... zero=0
 *
 * and each run prints one JSON line:
 *
 *   {"workload":"larson","alloc":"tcmalloc","threads":2,"ops":123,
 *    "seconds":1.0,"malloc_lib":"libtcmalloc_minimal.so.4"}
 *
 * malloc and free are called through volatile function pointers, the C
 * twin of Go's interface call: the compiler can neither see which
 * allocator runs nor drop an allocation whose memory is only touched.
 * zero=1 uses calloc, to match offheap and make, which hand out zeroed
 * memory; the default is malloc, what C programs call.
 *
 * Build: gcc -O2 -pthread -o shapes shapes.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CHECK_EVERY: operations between looks at the stop flag, as the Go side. */
#define CHECK_EVERY 256
#define MAX_LIST 64

static void *calloc1(size_t n) { return calloc(1, n); }
static void *(*volatile alloc_fn)(size_t) = malloc;
static void (*volatile free_fn)(void *) = free;

/* ---- parameters ---- */

typedef struct {
	long duration_ms, seed;
	long larson_live, larson_big_live, larson_big_threads, larson_min, larson_max, larson_round;
	long xmalloc_size, xmalloc_batch, xmalloc_queue;
	long scratch_size, scratch_iters, scratch_reps;
	long mstress_live, mstress_transfer;
	long alloctest_live, alloctest_min, alloctest_max;
	long simple_batch;
	long thread_live, thread_min, thread_max;
	long zero;
} params;

static params P;

static const struct {
	const char *name;
	long *ptr;
} specs[] = {
	{"duration-ms", &P.duration_ms}, {"seed", &P.seed},
	{"larson-live", &P.larson_live}, {"larson-big-live", &P.larson_big_live},
	{"larson-big-threads", &P.larson_big_threads}, {"larson-min", &P.larson_min},
	{"larson-max", &P.larson_max}, {"larson-round", &P.larson_round},
	{"xmalloc-size", &P.xmalloc_size}, {"xmalloc-batch", &P.xmalloc_batch},
	{"xmalloc-queue", &P.xmalloc_queue}, {"scratch-size", &P.scratch_size},
	{"scratch-iters", &P.scratch_iters}, {"scratch-reps", &P.scratch_reps},
	{"mstress-live", &P.mstress_live}, {"mstress-transfer", &P.mstress_transfer},
	{"alloctest-live", &P.alloctest_live}, {"alloctest-min", &P.alloctest_min},
	{"alloctest-max", &P.alloctest_max}, {"simple-batch", &P.simple_batch},
	{"thread-live", &P.thread_live}, {"thread-min", &P.thread_min},
	{"thread-max", &P.thread_max}, {"zero", &P.zero},
};

static void die(const char *msg, const char *arg) {
	fprintf(stderr, "shapes: %s%s\n", msg, arg ? arg : "");
	exit(2);
}

/* ---- rng: splitmix64, as bench/rng.go ---- */

#define GOLDEN 0x9e3779b97f4a7c15ULL

typedef struct { uint64_t s; } rng;

static rng new_rng(uint64_t seed, int worker) {
	rng r = {seed ^ (GOLDEN * (uint64_t)(worker + 1))};
	return r;
}

static uint64_t next(rng *r) {
	uint64_t z = (r->s += GOLDEN);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static long intn(rng *r, long n) { return (long)(next(r) % (uint64_t)n); }
static long uniform(rng *r, long lo, long hi) { return lo + (long)(next(r) % (uint64_t)(hi - lo + 1)); }

static long log_uniform(rng *r, long lo, long hi) {
	uint64_t span = (uint64_t)(hi - lo + 1);
	uint64_t k = next(r) % (uint64_t)(64 - __builtin_clzll(span) + 1);
	uint64_t w = k >= 64 ? span : (uint64_t)1 << k;
	if (w > span) w = span;
	return lo + (long)(next(r) % w);
}

/* ---- allocation ---- */

static void *xalloc(long n) {
	unsigned char *p = alloc_fn((size_t)n);
	if (!p) die("out of memory", NULL);
	/* touch: first and last byte, as bench/alloc.go's touch */
	p[0] = (unsigned char)n;
	p[n - 1] = (unsigned char)n;
	return p;
}

static void xfree(void *p) { free_fn(p); }

/* ---- the timed phase, as bench/phase.go ---- */

typedef struct {
	volatile int stop;
	uint64_t ops;
	pthread_barrier_t start;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done;
} phase;

static void begin(phase *ph) { pthread_barrier_wait(&ph->start); }

static int stopped(phase *ph) { return __atomic_load_n(&ph->stop, __ATOMIC_RELAXED); }

static void end(phase *ph, uint64_t ops) {
	__atomic_fetch_add(&ph->ops, ops, __ATOMIC_RELAXED);
	pthread_mutex_lock(&ph->mu);
	ph->done++;
	pthread_cond_broadcast(&ph->cond);
	pthread_mutex_unlock(&ph->mu);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
	int w, threads;
	phase *ph;
	void *shared;
} worker;

/* run_phase runs body on nworkers threads and returns the timed seconds;
 * fixed != 0: fixed work, no stop after the duration. */
static double run_phase(int nworkers, int fixed, void *(*body)(void *), void *shared, uint64_t *ops) {
	phase ph;
	memset(&ph, 0, sizeof ph);
	pthread_barrier_init(&ph.start, NULL, (unsigned)nworkers + 1);
	pthread_mutex_init(&ph.mu, NULL);
	pthread_cond_init(&ph.cond, NULL);
	pthread_t *tid = calloc((size_t)nworkers, sizeof *tid);
	worker *ws = calloc((size_t)nworkers, sizeof *ws);
	for (int i = 0; i < nworkers; i++) {
		ws[i] = (worker){i, nworkers, &ph, shared};
		if (pthread_create(&tid[i], NULL, body, &ws[i])) die("pthread_create failed", NULL);
	}
	pthread_barrier_wait(&ph.start);
	double t0 = now();
	if (!fixed) {
		struct timespec d = {P.duration_ms / 1000, (P.duration_ms % 1000) * 1000000};
		while (nanosleep(&d, &d)) {}
		__atomic_store_n(&ph.stop, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&ph.mu);
	while (ph.done < nworkers) pthread_cond_wait(&ph.cond, &ph.mu);
	pthread_mutex_unlock(&ph.mu);
	double el = now() - t0;
	for (int i = 0; i < nworkers; i++) pthread_join(tid[i], NULL);
	free(tid);
	free(ws);
	pthread_barrier_destroy(&ph.start);
	*ops = ph.ops;
	return el;
}

static void **fill(long n, rng *r, long (*size)(rng *, void *), void *arg) {
	void **slots = calloc((size_t)n, sizeof *slots);
	for (long i = 0; i < n; i++) slots[i] = xalloc(size(r, arg));
	return slots;
}

static void free_all(void **slots, long n) {
	for (long i = 0; i < n; i++)
		if (slots[i]) {
			xfree(slots[i]);
			slots[i] = NULL;
		}
}

static void replace(void **slots, long n, rng *r, long (*size)(rng *, void *), void *arg) {
	long i = intn(r, n);
	xfree(slots[i]);
	slots[i] = xalloc(size(r, arg));
}

/* ---- larson ---- */

static long larson_size(rng *r, void *arg) { (void)arg; return uniform(r, P.larson_min, P.larson_max); }

typedef struct {
	void **slots;
	long live;
	rng *r;
	phase *ph;
	uint64_t ops;
} larson_round_arg;

static void *larson_round(void *v) {
	larson_round_arg *a = v;
	uint64_t ops = 0;
	while (ops < (uint64_t)P.larson_round && !stopped(a->ph)) {
		for (int k = 0; k < CHECK_EVERY; k++) replace(a->slots, a->live, a->r, larson_size, NULL);
		ops += CHECK_EVERY;
	}
	a->ops = ops;
	return NULL;
}

static void *larson_lane(void *v) {
	worker *w = v;
	long live = *(long *)w->shared;
	rng r = new_rng((uint64_t)P.seed, w->w);
	void **slots = fill(live, &r, larson_size, NULL);
	begin(w->ph);
	uint64_t ops = 0;
	while (!stopped(w->ph)) {
		/* one round on a fresh thread: the previous one has ended */
		larson_round_arg a = {slots, live, &r, w->ph, 0};
		pthread_t t;
		if (pthread_create(&t, NULL, larson_round, &a)) die("pthread_create failed", NULL);
		pthread_join(t, NULL);
		ops += a.ops;
	}
	end(w->ph, ops);
	free_all(slots, live);
	free(slots);
	return NULL;
}

/* ---- xmalloc ---- */

typedef struct {
	void ***items;
	long cap, head, n;
} ring;

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	ring full, empty;
	int producers_left;
} xqueue;

static void ring_push(ring *q, void **b) { q->items[(q->head + q->n++) % q->cap] = b; }

static void **ring_pop(ring *q) {
	void **b = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return b;
}

static void *xmalloc_worker(void *v) {
	worker *w = v;
	xqueue *q = w->shared;
	int pairs = w->threads / 2;
	long nb = P.xmalloc_batch;
	if (w->w >= pairs) { /* consumer */
		begin(w->ph);
		uint64_t ops = 0;
		for (;;) {
			pthread_mutex_lock(&q->mu);
			while (q->full.n == 0 && q->producers_left > 0) pthread_cond_wait(&q->changed, &q->mu);
			if (q->full.n == 0) {
				pthread_mutex_unlock(&q->mu);
				break;
			}
			void **b = ring_pop(&q->full);
			pthread_cond_broadcast(&q->changed);
			pthread_mutex_unlock(&q->mu);
			free_all(b, nb);
			ops += (uint64_t)nb;
			pthread_mutex_lock(&q->mu);
			ring_push(&q->empty, b);
			pthread_cond_broadcast(&q->changed);
			pthread_mutex_unlock(&q->mu);
		}
		end(w->ph, ops);
		return NULL;
	}
	begin(w->ph);
	while (!stopped(w->ph)) {
		pthread_mutex_lock(&q->mu);
		while (q->empty.n == 0) pthread_cond_wait(&q->changed, &q->mu);
		void **b = ring_pop(&q->empty);
		pthread_mutex_unlock(&q->mu);
		for (long i = 0; i < nb; i++) b[i] = xalloc(P.xmalloc_size);
		pthread_mutex_lock(&q->mu);
		while (q->full.n == q->full.cap) pthread_cond_wait(&q->changed, &q->mu);
		ring_push(&q->full, b);
		pthread_cond_broadcast(&q->changed);
		pthread_mutex_unlock(&q->mu);
	}
	end(w->ph, 0);
	pthread_mutex_lock(&q->mu);
	q->producers_left--;
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static double xmalloc_run(int threads, uint64_t *ops) {
	xqueue q;
	memset(&q, 0, sizeof q);
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.changed, NULL);
	q.full.cap = P.xmalloc_queue;
	q.full.items = calloc((size_t)q.full.cap, sizeof(void **));
	q.empty.cap = P.xmalloc_queue + 2 * threads;
	q.empty.items = calloc((size_t)q.empty.cap, sizeof(void **));
	for (long i = 0; i < q.empty.cap; i++) ring_push(&q.empty, calloc((size_t)P.xmalloc_batch, sizeof(void *)));
	q.producers_left = threads;
	double el = run_phase(2 * threads, 0 /* stopped by duration */, xmalloc_worker, &q, ops);
	while (q.empty.n) free(ring_pop(&q.empty));
	free(q.full.items);
	free(q.empty.items);
	return el;
}

/* ---- cache-scratch, cache-thrash ---- */

static void scribble(void) {
	long n = P.scratch_size;
	for (long i = 0; i < P.scratch_iters; i++) {
		volatile unsigned char *q = xalloc(n);
		for (long r = 0; r < P.scratch_reps; r++)
			for (long k = 0; k < n; k++) q[k]++;
		xfree((void *)q);
	}
}

static void *thrash_worker(void *v) {
	worker *w = v;
	begin(w->ph);
	scribble();
	end(w->ph, (uint64_t)P.scratch_iters);
	return NULL;
}

static void *scratch_worker(void *v) {
	worker *w = v;
	void **first = w->shared;
	begin(w->ph);
	xfree(first[w->w]);
	scribble();
	end(w->ph, (uint64_t)P.scratch_iters);
	return NULL;
}

/* ---- mstress ---- */

static long mstress_size(rng *r, void *arg) {
	(void)arg;
	long c = intn(r, 1000);
	if (c < 1) return uniform(r, (32 << 10) + 1, 256 << 10);
	if (c < 10) return uniform(r, 1 << 10, 32 << 10);
	return uniform(r, 8, 256);
}

/* The step mix in percent, as bench/mstress.go. */
#define MSTRESS_SWAP_PCT 10
#define MSTRESS_FREE_PCT 25

static void *mstress_worker(void *v) {
	worker *w = v;
	void **transfer = w->shared;
	rng r = new_rng((uint64_t)P.seed, w->w);
	long live = P.mstress_live;
	void **slots = fill(live, &r, mstress_size, NULL);
	begin(w->ph);
	uint64_t ops = 0;
	while (!stopped(w->ph)) {
		for (int k = 0; k < CHECK_EVERY; k++) {
			long j = intn(&r, live);
			long c = intn(&r, 100);
			if (c < MSTRESS_SWAP_PCT) {
				long i = intn(&r, P.mstress_transfer);
				slots[j] = __atomic_exchange_n(&transfer[i], slots[j], __ATOMIC_ACQ_REL);
			} else if (c < MSTRESS_FREE_PCT) {
				if (slots[j]) {
					xfree(slots[j]);
					slots[j] = NULL;
				}
			} else {
				if (slots[j]) xfree(slots[j]);
				slots[j] = xalloc(mstress_size(&r, NULL));
			}
		}
		ops += CHECK_EVERY;
	}
	end(w->ph, ops);
	free_all(slots, live);
	free(slots);
	return NULL;
}

/* ---- alloc-test, glibc-thread ---- */

typedef struct { long live, lo, hi; } wsargs;

static long ws_size(rng *r, void *arg) {
	wsargs *a = arg;
	return log_uniform(r, a->lo, a->hi);
}

static void *ws_worker(void *v) {
	worker *w = v;
	wsargs *a = w->shared;
	rng r = new_rng((uint64_t)P.seed, w->w);
	void **slots = fill(a->live, &r, ws_size, a);
	begin(w->ph);
	uint64_t ops = 0;
	while (!stopped(w->ph)) {
		for (int k = 0; k < CHECK_EVERY; k++) replace(slots, a->live, &r, ws_size, a);
		ops += CHECK_EVERY;
	}
	end(w->ph, ops);
	free_all(slots, a->live);
	free(slots);
	return NULL;
}

/* ---- glibc-simple ---- */

static const long simple_sizes[] = {16, 32, 64, 128, 256};

static void *simple_worker(void *v) {
	worker *w = v;
	long nb = P.simple_batch;
	void **batch = calloc((size_t)nb, sizeof *batch);
	begin(w->ph);
	uint64_t ops = 0;
	for (long k = 0; !stopped(w->ph); k++) {
		long n = simple_sizes[k % 5];
		for (long i = 0; i < nb; i++) batch[i] = xalloc(n);
		free_all(batch, nb);
		ops += (uint64_t)nb;
	}
	end(w->ph, ops);
	free(batch);
	return NULL;
}

/* ---- pair ---- */

static void *pair_worker(void *v) {
	worker *w = v;
	long n = *(long *)w->shared;
	begin(w->ph);
	uint64_t ops = 0;
	while (!stopped(w->ph)) {
		for (int k = 0; k < CHECK_EVERY; k++) xfree(xalloc(n));
		ops += CHECK_EVERY;
	}
	end(w->ph, ops);
	return NULL;
}

/* ---- driver ---- */

/* run_one runs workload name at threads; it returns the timed seconds, or
 * a negative number for an unknown workload. */
static double run_one(const char *name, int threads, uint64_t *ops) {
	if (!strcmp(name, "larson")) return run_phase(threads, 0, larson_lane, &P.larson_live, ops);
	if (!strcmp(name, "larson-big")) return run_phase(threads, 0, larson_lane, &P.larson_big_live, ops);
	if (!strcmp(name, "xmalloc")) return xmalloc_run(threads, ops);
	if (!strcmp(name, "cache-thrash")) return run_phase(threads, 1, thrash_worker, NULL, ops);
	if (!strcmp(name, "cache-scratch")) {
		void **first = calloc((size_t)threads, sizeof *first);
		for (int i = 0; i < threads; i++) first[i] = xalloc(P.scratch_size);
		double el = run_phase(threads, 1, scratch_worker, first, ops);
		free(first);
		return el;
	}
	if (!strcmp(name, "mstress")) {
		void **transfer = calloc((size_t)P.mstress_transfer, sizeof *transfer);
		double el = run_phase(threads, 0, mstress_worker, transfer, ops);
		free_all(transfer, P.mstress_transfer);
		free(transfer);
		return el;
	}
	if (!strcmp(name, "alloc-test")) {
		wsargs a = {P.alloctest_live, P.alloctest_min, P.alloctest_max};
		return run_phase(threads, 0, ws_worker, &a, ops);
	}
	if (!strcmp(name, "glibc-thread")) {
		wsargs a = {P.thread_live, P.thread_min, P.thread_max};
		return run_phase(threads, 0, ws_worker, &a, ops);
	}
	if (!strcmp(name, "glibc-simple")) return run_phase(threads, 0, simple_worker, NULL, ops);
	if (!strncmp(name, "pair-", 5)) {
		long n = atol(name + 5);
		if (n < 1) return -1;
		return run_phase(threads, 0, pair_worker, &n, ops);
	}
	return -1;
}

/* malloc_lib names the first mapped tcmalloc, jemalloc or mimalloc
 * library, "libc" if none. */
static void malloc_lib(char *out, size_t n) {
	snprintf(out, n, "libc");
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f) return;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		char *path = strchr(line, '/');
		if (!path) continue;
		char *base = strrchr(path, '/') + 1;
		base[strcspn(base, "\n")] = 0;
		if ((strstr(base, "tcmalloc") || strstr(base, "jemalloc") || strstr(base, "mimalloc")) && strstr(base, ".so")) {
			snprintf(out, n, "%s", base);
			break;
		}
	}
	fclose(f);
}

/* rng_check prints the RNG's first draws, for bench's test that the C and
 * Go sequences agree (TestCDriverRNGMatchesGo). */
static void rng_check(void) {
	rng r = new_rng((uint64_t)P.seed, 0);
	printf("{\"next\":[");
	for (int i = 0; i < 4; i++) printf("%s%llu", i ? "," : "", (unsigned long long)next(&r));
	printf("],\"uniform\":[");
	for (int i = 0; i < 4; i++) printf("%s%ld", i ? "," : "", uniform(&r, 8, 1000));
	printf("],\"log_uniform\":[");
	for (int i = 0; i < 4; i++) printf("%s%ld", i ? "," : "", log_uniform(&r, 4, 32768));
	printf("]}\n");
}

static int split(char *s, char **out) {
	int n = 0;
	for (char *t = strtok(s, ","); t && n < MAX_LIST; t = strtok(NULL, ",")) out[n++] = t;
	return n;
}

int main(int argc, char **argv) {
	const char *alloc = "glibc";
	char *workloads = NULL, *threads = NULL;
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq) die("argument not name=value: ", argv[i]);
		*eq = 0;
		const char *k = argv[i], *v = eq + 1;
		if (!strcmp(k, "alloc")) { alloc = v; continue; }
		if (!strcmp(k, "workloads")) { workloads = strdup(v); continue; }
		if (!strcmp(k, "threads")) { threads = strdup(v); continue; }
		size_t j;
		for (j = 0; j < sizeof specs / sizeof specs[0]; j++)
			if (!strcmp(k, specs[j].name)) break;
		if (j == sizeof specs / sizeof specs[0]) die("unknown parameter: ", k);
		char *endp;
		*specs[j].ptr = strtol(v, &endp, 10);
		if (*endp || (*specs[j].ptr < 1 && strcmp(k, "zero"))) die("bad value for ", k);
	}
	if (workloads && !strcmp(workloads, "rng-check")) {
		rng_check();
		return 0;
	}
	if (!workloads || !threads) die("need workloads= and threads=", NULL);
	for (size_t j = 0; j < sizeof specs / sizeof specs[0]; j++)
		if (*specs[j].ptr < 1 && strcmp(specs[j].name, "zero")) die("missing parameter ", specs[j].name);
	if (P.zero) alloc_fn = calloc1;
	char lib[256];
	malloc_lib(lib, sizeof lib);
	char *wl[MAX_LIST], *tl[MAX_LIST];
	int nw = split(workloads, wl), nt = split(threads, tl);
	for (int i = 0; i < nw; i++) {
		for (int j = 0; j < nt; j++) {
			int t = atoi(tl[j]);
			if (t < 1) die("bad thread count ", tl[j]);
			uint64_t ops = 0;
			double el = run_one(wl[i], t, &ops);
			if (el < 0) die("unknown workload ", wl[i]);
			printf("{\"workload\":\"%s\",\"alloc\":\"%s\",\"threads\":%d,\"ops\":%llu,\"seconds\":%.9f,\"malloc_lib\":\"%s\"}\n",
			       wl[i], alloc, t, (unsigned long long)ops, el, lib);
			fflush(stdout);
		}
	}
	return 0;
}
