/*
 * Common code of the stress harness: failure reporting, the client stream, the control
 * channel, and the accounting of MEMORY and OBJECT buffers handed to the library.
 *
 * MEMORY accounting interposes free(): the library releases MEMORY send buffers with plain
 * free (SPEC 1), and since it is linked statically into this executable its calls bind to the
 * free() defined here. The wrapper removes the pointer from a set of live MEMORY buffers and
 * passes it on to the next free in the lookup order (glibc's, or the sanitizer's or valgrind's
 * replacement), so this works unchanged under ASan, TSan, helgrind and memcheck.
 */
#include "stress.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "socket_server.h"

const char *stress_role = "stress";
pid_t stress_kill_on_fail = 0;

static atomic_int failing;

/* "<role>: <tag><message>" on stderr. */
static void emit(const char *tag, const char *fmt, va_list ap) {
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	fprintf(stderr, "%s: %s%s\n", stress_role, tag, msg);
}

void stress_fail(const char *fmt, ...) {
	if (atomic_exchange(&failing, 1)) {
		/* Another thread is already reporting: let it finish. */
		for (;;) pause();
	}
	va_list ap;
	va_start(ap, fmt);
	emit("FAIL ", fmt, ap);
	va_end(ap);
	fflush(stderr);
	if (stress_kill_on_fail > 0) kill(stress_kill_on_fail, SIGKILL);
	_exit(1);
}

void stress_log(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	emit("", fmt, ap);
	va_end(ap);
}

uint8_t *scratch_get(struct scratch *s, size_t n) {
	if (s->cap < n) {
		free(s->p);
		s->p = malloc(n);
		FAIL_IF(!s->p, "malloc");
		s->cap = n;
	}
	return s->p;
}

void scratch_free(struct scratch *s) {
	free(s->p);
	s->p = NULL;
	s->cap = 0;
}

int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- the client stream */

void stream_fill(uint64_t seed, uint64_t pos, uint8_t *out, size_t n) {
	size_t i = 0;
	while (i < n && ((pos + i) & 7)) {
		uint64_t w = stream_word(seed, (pos + i) >> 3);
		out[i] = (uint8_t)(w >> (((pos + i) & 7) * 8));
		i++;
	}
	for (; i + 8 <= n; i += 8) {
		uint64_t w = stream_word(seed, (pos + i) >> 3);
		memcpy(out + i, &w, 8);
	}
	for (; i < n; i++) {
		uint64_t w = stream_word(seed, (pos + i) >> 3);
		out[i] = (uint8_t)(w >> (((pos + i) & 7) * 8));
	}
}

size_t stream_diff(uint64_t seed, uint64_t pos, const uint8_t *in, size_t n) {
	uint8_t tmp[4096];
	size_t done = 0;
	while (done < n) {
		size_t k = n - done < sizeof tmp ? n - done : sizeof tmp;
		stream_fill(seed, pos + done, tmp, k);
		if (memcmp(tmp, in + done, k) != 0) {
			for (size_t i = 0; i < k; i++)
				if (tmp[i] != in[done + i]) return done + i;
		}
		done += k;
	}
	return n;
}

/* ---------------------------------------------------------------- control channel */

int ctl_send(int fd, const char *fmt, ...) {
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof line - 1) return -1;
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = send(fd, line + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return -1;
		off += (int)w;
	}
	return 0;
}

static char ctl_buf[4096];
static size_t ctl_len;

int ctl_recv(int fd, char *buf, size_t cap, int timeout_ms) {
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(ctl_buf, '\n', ctl_len);
		if (nl) {
			size_t k = (size_t)(nl - ctl_buf);
			size_t c = k < cap - 1 ? k : cap - 1;
			memcpy(buf, ctl_buf, c);
			buf[c] = 0;
			memmove(ctl_buf, nl + 1, ctl_len - k - 1);
			ctl_len -= k + 1;
			return (int)c > 0 ? (int)c : 1;
		}
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) return 0;
			wait = (int)left;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return -1;
		if (r == 0) return 0;
		if (ctl_len == sizeof ctl_buf) return -1;
		ssize_t n = read(fd, ctl_buf + ctl_len, sizeof ctl_buf - ctl_len);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return -1;
		ctl_len += (size_t)n;
	}
}

/* ---------------------------------------------------------------- MEMORY buffers: free() */

#define STRIPES 64
#define STRIPE_BITS 15
#define STRIPE_CAP (1u << STRIPE_BITS)

struct stripe {
	pthread_mutex_t mu;
	uint32_t n;
	uintptr_t *slots;
} __attribute__((aligned(64)));

static struct stripe stripes[STRIPES];
static atomic_uint_fast64_t mem_live, mem_handed, mem_freed;
static void (*_Atomic real_free)(void *);
static __thread volatile int resolving_free; /* volatile: must be set while dlsym runs */

/* free() and its lookup run inside the sanitizers' own start-up (dlsym frees its error
 * state), before their runtime can take instrumented calls: keep them uninstrumented. */
#define NO_SANITIZE __attribute__((no_sanitize_thread, no_sanitize_address))

NO_SANITIZE static void resolve_free(void) {
	resolving_free = 1;
	void *f = dlsym(RTLD_NEXT, "free");
	resolving_free = 0;
	if (!f) {
		static const char m[] = "stress: FAIL dlsym(RTLD_NEXT, \"free\") found nothing\n";
		ssize_t ignored = write(2, m, sizeof m - 1);
		(void)ignored;
		_exit(1);
	}
	atomic_store(&real_free, (void (*)(void *))f);
}

static inline uint64_t ptr_hash(uintptr_t p) { return mix64((uint64_t)p); }

void track_init(void) {
	resolve_free();
	size_t bytes = (size_t)STRIPES * STRIPE_CAP * sizeof(uintptr_t);
	uintptr_t *all = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FAIL_IF(all == MAP_FAILED, "mmap of the MEMORY tracking table failed");
	for (int i = 0; i < STRIPES; i++) {
		pthread_mutex_init(&stripes[i].mu, NULL);
		stripes[i].slots = all + (size_t)i * STRIPE_CAP;
	}
}

static void track_insert(uintptr_t p) {
	uint64_t h = ptr_hash(p);
	struct stripe *s = &stripes[h % STRIPES];
	uint32_t mask = STRIPE_CAP - 1;
	pthread_mutex_lock(&s->mu);
	/* Failures are reported after unlocking: reporting may free(), which takes this lock. */
	uint32_t full = s->n >= STRIPE_CAP / 4 * 3 ? s->n : 0;
	uint32_t i = (uint32_t)(h >> 6) & mask;
	int dup = 0;
	while (!full && s->slots[i]) {
		if (s->slots[i] == p) {
			dup = 1;
			break;
		}
		i = (i + 1) & mask;
	}
	if (full || dup) {
		pthread_mutex_unlock(&s->mu);
		FAIL_IF(full, "MEMORY tracking table full (%u live buffers in one stripe)", full);
		stress_fail("malloc returned %p while it is still a live MEMORY buffer "
			"(released without free()? realloc?)", (void *)p);
	}
	s->slots[i] = p;
	s->n++;
	atomic_fetch_add(&mem_live, 1);
	pthread_mutex_unlock(&s->mu);
}

static int track_remove(uintptr_t p) {
	uint64_t h = ptr_hash(p);
	struct stripe *s = &stripes[h % STRIPES];
	uint32_t mask = STRIPE_CAP - 1;
	pthread_mutex_lock(&s->mu);
	uint32_t i = (uint32_t)(h >> 6) & mask;
	while (s->slots[i] && s->slots[i] != p) i = (i + 1) & mask;
	if (!s->slots[i]) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (;;) {
		s->slots[i] = 0;
		uint32_t j = i;
		for (;;) {
			j = (j + 1) & mask;
			if (!s->slots[j]) goto done;
			uint32_t k = (uint32_t)(ptr_hash(s->slots[j]) >> 6) & mask;
			int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
			if (!stays) break;
		}
		s->slots[i] = s->slots[j];
		i = j;
	}
done:
	s->n--;
	atomic_fetch_sub(&mem_live, 1);
	atomic_fetch_add(&mem_freed, 1);
	pthread_mutex_unlock(&s->mu);
	return 1;
}

NO_SANITIZE void free(void *p) {
	if (!p) return;
	if (atomic_load_explicit(&mem_live, memory_order_relaxed) != 0) track_remove((uintptr_t)p);
	void (*f)(void *) = atomic_load_explicit(&real_free, memory_order_relaxed);
	if (!f) {
		if (resolving_free) return; /* dlsym's own bookkeeping while we look free up: leak it */
		resolve_free();
		f = atomic_load(&real_free);
	}
	f(p);
}

void *track_memory_alloc(size_t sz) {
	void *p = malloc(sz ? sz : 1);
	FAIL_IF(!p, "malloc(%zu) failed", sz);
	track_insert((uintptr_t)p);
	atomic_fetch_add(&mem_handed, 1);
	return p;
}

uint64_t track_memory_live(void) { return atomic_load(&mem_live); }
uint64_t track_memory_handed(void) { return atomic_load(&mem_handed); }
uint64_t track_memory_freed(void) { return atomic_load(&mem_freed); }

/* ---------------------------------------------------------------- OBJECT buffers */

#define OBJ_LIVE 0x4c495645u
#define OBJ_DEAD 0x44454144u

struct stress_object {
	_Atomic uint32_t state;
	uint32_t len;
	struct stress_object *next;
	uint8_t *bytes;
};

static atomic_uint_fast64_t obj_created, obj_freed;
static pthread_mutex_t grave_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stress_object *graveyard;

static const void *obj_buffer(const void *p) {
	struct stress_object *o = (struct stress_object *)p;
	uint32_t st = atomic_load(&o->state);
	FAIL_IF(st != OBJ_LIVE, "soi.buffer() called on object %p in state %#x (%s)", p, st,
		st == OBJ_DEAD ? "already freed" : "not an object");
	return o->bytes;
}

static size_t obj_size(const void *p) {
	struct stress_object *o = (struct stress_object *)p;
	uint32_t st = atomic_load(&o->state);
	FAIL_IF(st != OBJ_LIVE, "soi.size() called on object %p in state %#x (%s)", p, st,
		st == OBJ_DEAD ? "already freed" : "not an object");
	return o->len;
}

static void obj_free(void *p) {
	struct stress_object *o = p;
	uint32_t want = OBJ_LIVE;
	if (!atomic_compare_exchange_strong(&o->state, &want, OBJ_DEAD))
		stress_fail("soi.free() called on object %p in state %#x (%s)", p, want,
			want == OBJ_DEAD ? "second free of the same OBJECT buffer" : "not an object");
	free(o->bytes);
	o->bytes = NULL;
	atomic_fetch_add(&obj_freed, 1);
	pthread_mutex_lock(&grave_mu);
	o->next = graveyard;
	graveyard = o;
	pthread_mutex_unlock(&grave_mu);
}

struct socket_object_interface stress_soi = { obj_buffer, obj_size, obj_free };

struct stress_object *object_new(const void *hdr, size_t hn, const void *body, size_t bn) {
	struct stress_object *o = malloc(sizeof *o);
	uint8_t *b = malloc(hn + bn);
	FAIL_IF(!o || !b, "malloc failed");
	memcpy(b, hdr, hn);
	memcpy(b + hn, body, bn);
	o->bytes = b;
	o->len = (uint32_t)(hn + bn);
	o->next = NULL;
	atomic_store(&o->state, OBJ_LIVE);
	atomic_fetch_add(&obj_created, 1);
	return o;
}

uint64_t object_created(void) { return atomic_load(&obj_created); }
uint64_t object_freed(void) { return atomic_load(&obj_freed); }
uint64_t object_live(void) { return object_created() - object_freed(); }

void object_reap(void) {
	pthread_mutex_lock(&grave_mu);
	struct stress_object *o = graveyard;
	graveyard = NULL;
	pthread_mutex_unlock(&grave_mu);
	while (o) {
		struct stress_object *n = o->next;
		free(o);
		o = n;
	}
}

/* ---------------------------------------------------------------- process statistics */

extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

uint64_t heap_in_use(void) {
	if (__sanitizer_get_current_allocated_bytes) return __sanitizer_get_current_allocated_bytes();
	struct mallinfo2 mi = mallinfo2();
	uint64_t used = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
	if (used == 0) {
		/* valgrind replaces mallinfo (not mallinfo2) with its own accounting */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
		used = (uint64_t)(unsigned)old.uordblks + (uint64_t)(unsigned)old.hblkhd;
	}
	return used;
}

uint64_t rss_bytes(void) {
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f) return 0;
	unsigned long size = 0, rss = 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2) rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

int count_fds(void) {
	DIR *d = opendir("/proc/self/fd");
	if (!d) return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.') n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}
