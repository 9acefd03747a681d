#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ checks and the runner */

static int cur_failures;

void
check_at(const char *file, int line, int ok, const char *what) {
	if (!ok) {
		cur_failures++;
		fprintf(stderr, "    FAIL %s:%d: %s\n", file, line, what);
	}
}

void
check_fail_at(const char *file, int line, const char *fmt, ...) {
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	check_at(file, line, 0, buf);
}

int
check_int_at(const char *file, int line, const char *what, long long got, long long want) {
	if (got != want) {
		check_fail_at(file, line, "%s == %lld, want %lld", what, got, want);
		return 0;
	}
	return 1;
}

int
check_str_at(const char *file, int line, const char *what, const char *got, const char *want) {
	if (got == NULL || want == NULL ? got != want : strcmp(got, want) != 0) {
		check_fail_at(file, line, "%s == \"%s\", want \"%s\"", what, got ? got : "(null)",
			want ? want : "(null)");
		return 0;
	}
	return 1;
}

int
test_failed(void) {
	return cur_failures != 0;
}

static double scale_cache = 0;

double
timeout_scale(void) {
	if (scale_cache == 0) {
		const char *s = getenv("TEST_TIMEOUT_SCALE");
		double v = s ? atof(s) : 1.0;
		scale_cache = v >= 1.0 ? v : 1.0;
	}
	return scale_cache;
}

const char *
test_runner_wrapper(void) {
	const char *s = getenv("TEST_UNDER");
	return s && *s ? s : NULL;
}

int
tmo(int ms) {
	return (int)(ms * timeout_scale());
}

int
quiet(int ms) {
	double s = timeout_scale() / 4;
	return (int)(ms * (s > 1 ? s : 1));
}

int64_t
now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
describe_status(int status, char *buf, size_t sz) {
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);
		if (code == 1)
			snprintf(buf, sz, "checks failed");
		else
			snprintf(buf, sz, "exit status %d%s", code, code == 99 ? " (valgrind errors)" : "");
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		snprintf(buf, sz, "%s (signal %d: %s)", sig == SIGALRM ? "timed out" : "crashed", sig,
			strsignal(sig));
	} else {
		snprintf(buf, sz, "status 0x%x", status);
	}
}

int
run_tests(const struct test *tests, size_t n) {
	/* skynet ignores SIGPIPE (skynet_main.c); tests that need the default restore it. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *filter = getenv("TEST_FILTER");
	const char *nofork = getenv("TEST_NOFORK");
	int use_fork = !(nofork && nofork[0] && strcmp(nofork, "0") != 0);
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (filter && filter[0] && strstr(tests[i].name, filter) == NULL)
			continue;
		int64_t t0 = now_ms();
		int ok;
		char why[128] = "checks failed";
		if (use_fork) {
			fflush(stdout);
			fflush(stderr);
			pid_t pid = fork();
			if (pid < 0) {
				perror("fork");
				return 2;
			}
			if (pid == 0) {
				alarm((unsigned)(tmo(60000) / 1000 + 1));
				cur_failures = 0;
				tests[i].fn();
				fflush(stdout);
				fflush(stderr);
				exit(cur_failures ? 1 : 0);
			}
			int status = 0;
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
			if (!ok)
				describe_status(status, why, sizeof(why));
		} else {
			cur_failures = 0;
			tests[i].fn();
			ok = cur_failures == 0;
		}
		if (ok) {
			passed++;
			printf("ok   %s (%lld ms)\n", tests[i].name, (long long)(now_ms() - t0));
		} else {
			failed++;
			printf("FAIL %s: %s (%lld ms)\n", tests[i].name, why, (long long)(now_ms() - t0));
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* ================================================================ skynet_error capture */

struct skynet_context;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static char **log_lines;
static size_t log_n, log_cap;

/* Overrides the library's weak fallback: records the line and echoes it to stderr. */
void
skynet_error(struct skynet_context *ctx, const char *fmt, ...) {
	(void)ctx;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_mu);
	if (log_n == log_cap) {
		log_cap = log_cap ? log_cap * 2 : 64;
		log_lines = realloc(log_lines, log_cap * sizeof(*log_lines));
	}
	log_lines[log_n++] = strdup(buf);
	pthread_cond_broadcast(&log_cv);
	pthread_mutex_unlock(&log_mu);
	fprintf(stderr, "    [skynet_error] %s\n", buf);
}

static int
log_count_locked(const char *needle) {
	int c = 0;
	for (size_t i = 0; i < log_n; i++)
		if (strstr(log_lines[i], needle))
			c++;
	return c;
}

int
log_count(const char *needle) {
	pthread_mutex_lock(&log_mu);
	int c = log_count_locked(needle);
	pthread_mutex_unlock(&log_mu);
	return c;
}

static void
deadline_ts(struct timespec *ts, int timeout_ms) {
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void
cond_init_monotonic(pthread_cond_t *cv) {
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

int
log_wait(const char *needle, int timeout_ms) {
	int64_t end = now_ms() + timeout_ms;
	pthread_mutex_lock(&log_mu);
	int found;
	while (!(found = log_count_locked(needle) > 0)) {
		int64_t left = end - now_ms();
		if (left <= 0)
			break;
		/* log_cv uses the realtime clock (static initializer): wait in short slices. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&log_cv, &log_mu, &ts);
	}
	pthread_mutex_unlock(&log_mu);
	return found;
}

void
log_clear(void) {
	pthread_mutex_lock(&log_mu);
	for (size_t i = 0; i < log_n; i++)
		free(log_lines[i]);
	log_n = 0;
	pthread_mutex_unlock(&log_mu);
}

/* ================================================================ OBJECT buffers */

static const void *
tobj_buffer(const void *p) {
	return ((const struct tobj *)p)->bytes;
}

static size_t
tobj_size(const void *p) {
	return ((const struct tobj *)p)->sz;
}

static void
tobj_free(void *p) {
	atomic_fetch_add(&((struct tobj *)p)->frees, 1);
}

struct socket_object_interface test_soi = { tobj_buffer, tobj_size, tobj_free };

void
tobj_init(struct tobj *o, const char *bytes, size_t sz) {
	o->bytes = bytes;
	o->sz = sz;
	atomic_init(&o->frees, 0);
}

int
tobj_wait_frees(struct tobj *o, int want, int timeout_ms) {
	int64_t end = now_ms() + timeout_ms;
	while (atomic_load(&o->frees) < want && now_ms() < end) {
		struct timespec ts = { 0, 2 * 1000000 };
		nanosleep(&ts, NULL);
	}
	return atomic_load(&o->frees);
}

int
wait_until(int (*pred)(void *), void *arg, int timeout_ms) {
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		if (pred(arg))
			return 1;
		if (now_ms() >= end)
			return 0;
		struct timespec ts = { 0, 2 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* ================================================================ the fixture */

const char *
type_name(int type) {
	static const char *names[] = { "DATA", "CLOSE", "OPEN", "ACCEPT", "ERR", "EXIT", "UDP",
		"WARNING" };
	if (type >= 0 && type < 8)
		return names[type];
	return "UNKNOWN-TYPE";
}

static void
ev_free(struct ev *e) {
	free(e->data);
	free(e);
}

static void *
poll_main(void *arg) {
	struct fixture *f = arg;
	for (;;) {
		struct socket_message m;
		memset(&m, 0, sizeof(m));
		int more = 1;
		int type = socket_server_poll(f->ss, &m, &more);
		struct ev *e = calloc(1, sizeof(*e));
		e->type = type;
		e->id = m.id;
		e->opaque = m.opaque;
		e->ud = m.ud;
		e->more = more;
		switch (type) {
		case SOCKET_DATA:
		case SOCKET_UDP:
			e->data = m.data; /* ours now: freed with free() */
			break;
		case SOCKET_OPEN:
		case SOCKET_ERR:
		case SOCKET_ACCEPT:
			/* only valid until the next poll */
			e->data = m.data ? strdup(m.data) : NULL;
			break;
		default:
			/* CLOSE, EXIT, WARNING carry no data; keep a marker if one came anyway */
			e->data = m.data ? strdup("<unexpected non-NULL data>") : NULL;
			break;
		}
		pthread_mutex_lock(&f->mu);
		if (f->tail)
			f->tail->next = e;
		else
			f->head = e;
		f->tail = e;
		f->results++;
		if (type == SOCKET_EXIT)
			f->exited = 1;
		pthread_cond_broadcast(&f->cv);
		if (f->hold && type == SOCKET_OPEN && e->id == f->hold && e->data &&
			strcmp(e->data, "transfer") == 0) {
			f->held = 1;
			pthread_cond_broadcast(&f->cv);
			while (f->hold)
				pthread_cond_wait(&f->cv, &f->mu);
			f->held = 0;
		}
		pthread_mutex_unlock(&f->mu);
		if (type == SOCKET_EXIT)
			break;
	}
	return NULL;
}

void
fixture_init_nopoll(struct fixture *f) {
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	cond_init_monotonic(&f->cv);
	f->ss = socket_server_create(1);
	if (f->ss == NULL) {
		fprintf(stderr, "socket_server_create failed\n");
		abort();
	}
	socket_server_userobject(f->ss, &test_soi);
}

void
fixture_start_poll(struct fixture *f) {
	if (pthread_create(&f->thread, NULL, poll_main, f) != 0) {
		perror("pthread_create");
		abort();
	}
	f->polling = 1;
}

void
fixture_init(struct fixture *f) {
	fixture_init_nopoll(f);
	fixture_start_poll(f);
}

void
fixture_sync(struct fixture *f) {
	int id = socket_server_listen(f->ss, 0x5e7c, "127.0.0.1", 0, 1);
	if (!CHECK(id > 0))
		return;
	EXPECT(f, SOCKET_OPEN, id, 0x5e7c, ANY_UD, "127.0.0.1");
	socket_server_close(f->ss, 0x5e7c, id);
	EXPECT(f, SOCKET_CLOSE, id, 0x5e7c, 0, NULL);
}

int
fixture_hold(struct fixture *f, uintptr_t owner, int id) {
	pthread_mutex_lock(&f->mu);
	f->hold = id;
	pthread_mutex_unlock(&f->mu);
	socket_server_start(f->ss, owner, id);
	struct timespec ts;
	deadline_ts(&ts, T_EVENT);
	pthread_mutex_lock(&f->mu);
	while (!f->held) {
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT)
			break;
	}
	int held = f->held;
	pthread_mutex_unlock(&f->mu);
	if (held) {
		struct ev *e = take_event_type(f, id, SOCKET_OPEN, 0);
		CHECK(e != NULL && e->data && strcmp(e->data, "transfer") == 0);
	}
	return held;
}

void
fixture_release_hold(struct fixture *f) {
	pthread_mutex_lock(&f->mu);
	f->hold = 0;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void
free_list(struct ev *e) {
	while (e) {
		struct ev *n = e->next;
		ev_free(e);
		e = n;
	}
}

void
fixture_finish(struct fixture *f) {
	if (f->ss == NULL)
		return;
	fixture_release_hold(f);
	if (f->polling) {
		pthread_mutex_lock(&f->mu);
		int exited = f->exited;
		pthread_mutex_unlock(&f->mu);
		if (!exited)
			socket_server_exit(f->ss);
		pthread_join(f->thread, NULL);
		f->polling = 0;
	}
	free_list(f->head);
	free_list(f->used);
	f->head = f->tail = f->used = NULL;
	socket_server_release(f->ss);
	f->ss = NULL;
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
}

/* Unlinks the first queued result matching id/type (type < 0: any). Caller holds mu. */
static struct ev *
unlink_match(struct fixture *f, int id, int type, int stop_at_other_type) {
	struct ev *prev = NULL;
	for (struct ev *e = f->head; e; prev = e, e = e->next) {
		if (id != ANY_ID && e->id != id)
			continue;
		if (type >= 0 && e->type != type) {
			if (stop_at_other_type)
				return NULL;
			continue;
		}
		if (prev)
			prev->next = e->next;
		else
			f->head = e->next;
		if (f->tail == e)
			f->tail = prev;
		e->next = NULL;
		return e;
	}
	return NULL;
}

static struct ev *
take_impl(struct fixture *f, int id, int type, int timeout_ms, int stop_at_other, int *stopped) {
	struct timespec ts;
	deadline_ts(&ts, timeout_ms);
	pthread_mutex_lock(&f->mu);
	struct ev *e;
	for (;;) {
		e = unlink_match(f, id, type, stop_at_other);
		if (e)
			break;
		if (stop_at_other) {
			/* is there a result of this id of another type? then stop */
			int other = 0;
			for (struct ev *x = f->head; x; x = x->next)
				if (x->id == id)
					other = 1;
			if (other) {
				*stopped = 1;
				break;
			}
		}
		if (f->exited && !f->held) {
			/* nothing more will come */
			break;
		}
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT) {
			e = unlink_match(f, id, type, stop_at_other);
			break;
		}
	}
	if (e) {
		e->next = f->used;
		f->used = e;
	}
	pthread_mutex_unlock(&f->mu);
	return e;
}

struct ev *
take_event(struct fixture *f, int id, int timeout_ms) {
	return take_impl(f, id, -1, timeout_ms, 0, NULL);
}

struct ev *
take_event_type(struct fixture *f, int id, int type, int timeout_ms) {
	return take_impl(f, id, type, timeout_ms, 0, NULL);
}

void
ev_release(struct fixture *f, struct ev *e) {
	if (e == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	struct ev **pp = &f->used;
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	pthread_mutex_unlock(&f->mu);
	ev_free(e);
}

struct socket_message
ev_msg(const struct ev *e) {
	struct socket_message m;
	m.id = e->id;
	m.opaque = e->opaque;
	m.ud = e->ud;
	m.data = e->data;
	return m;
}

static void
describe_ev(const struct ev *e, char *buf, size_t sz) {
	if (e == NULL) {
		snprintf(buf, sz, "nothing");
		return;
	}
	if (e->type == SOCKET_DATA || e->type == SOCKET_UDP) {
		int show = e->ud > 40 ? 40 : (e->ud < 0 ? 0 : e->ud);
		char tmp[64];
		for (int i = 0; i < show; i++) {
			unsigned char c = (unsigned char)e->data[i];
			tmp[i] = (c >= 32 && c < 127) ? (char)c : '.';
		}
		tmp[show] = 0;
		snprintf(buf, sz, "%s id %d opaque %#lx ud %d data \"%s\"%s", type_name(e->type), e->id,
			(unsigned long)e->opaque, e->ud, tmp, e->ud > 40 ? "..." : "");
	} else {
		snprintf(buf, sz, "%s(%d) id %d opaque %#lx ud %d data %s%s%s", type_name(e->type),
			e->type, e->id, (unsigned long)e->opaque, e->ud, e->data ? "\"" : "",
			e->data ? e->data : "NULL", e->data ? "\"" : "");
	}
}

struct ev *
check_event_at(const char *file, int line, struct ev *e, int type, int id, uintptr_t opaque,
	int ud, const char *data) {
	char got[256];
	describe_ev(e, got, sizeof(got));
	char want_data[96];
	if (data == ANY_DATA)
		snprintf(want_data, sizeof(want_data), "*");
	else if (data == NULL)
		snprintf(want_data, sizeof(want_data), "NULL");
	else
		snprintf(want_data, sizeof(want_data), "\"%.80s\"", data);
	int ok = e != NULL && e->type == type;
	if (ok && opaque != ANY_OPAQUE && e->opaque != opaque)
		ok = 0;
	if (ok && ud != ANY_UD && e->ud != ud)
		ok = 0;
	if (ok && data != ANY_DATA) {
		if (type == SOCKET_DATA || type == SOCKET_UDP) {
			size_t n = strlen(data);
			if (e->ud < 0 || (size_t)e->ud != n || memcmp(e->data, data, n) != 0)
				ok = 0;
		} else if (data == NULL) {
			if (e->data != NULL)
				ok = 0;
		} else if (e->data == NULL || strcmp(e->data, data) != 0) {
			ok = 0;
		}
	}
	/* CLOSE, EXIT and WARNING never carry data */
	if (ok && (type == SOCKET_CLOSE || type == SOCKET_EXIT || type == SOCKET_WARNING) && e->data)
		ok = 0;
	if (!ok) {
		char want_ud[16], want_op[24];
		if (ud == ANY_UD)
			snprintf(want_ud, sizeof(want_ud), "*");
		else
			snprintf(want_ud, sizeof(want_ud), "%d", ud);
		if (opaque == ANY_OPAQUE)
			snprintf(want_op, sizeof(want_op), "*");
		else
			snprintf(want_op, sizeof(want_op), "%#lx", (unsigned long)opaque);
		check_fail_at(file, line, "expected %s id %d opaque %s ud %s data %s; got %s",
			type_name(type), id, want_op, want_ud, want_data, got);
	}
	return e;
}

struct ev *
expect_event_at(const char *file, int line, struct fixture *f, int type, int id, uintptr_t opaque,
	int ud, const char *data, int timeout_ms) {
	return check_event_at(file, line, take_event(f, id, timeout_ms), type, id, opaque, ud, data);
}

struct ev *
take_event_skipping(struct fixture *f, int id, int skip_type, int timeout_ms) {
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int64_t left = end - now_ms();
		struct ev *e = take_event(f, id, left > 0 ? (int)left : 0);
		if (e == NULL || e->type != skip_type)
			return e;
		ev_release(f, e);
	}
}

int
expect_no_event_at(const char *file, int line, struct fixture *f, int id, int ms) {
	struct ev *e = take_event(f, id, ms);
	if (e) {
		char got[256];
		describe_ev(e, got, sizeof(got));
		check_fail_at(file, line, "expected no result for id %d, got %s", id, got);
		return 0;
	}
	return 1;
}

void
drain_events(struct fixture *f, int id, int ms, int counts[8]) {
	for (int i = 0; i < 8; i++)
		counts[i] = 0;
	int64_t end = now_ms() + ms;
	for (;;) {
		int64_t left = end - now_ms();
		if (left < 0)
			left = 0;
		struct ev *e = take_event(f, id, (int)left);
		if (e == NULL)
			break;
		if (e->type >= 0 && e->type < 8)
			counts[e->type]++;
		char d[256];
		describe_ev(e, d, sizeof(d));
		fprintf(stderr, "    (drained %s)\n", d);
		ev_release(f, e);
		if (left == 0)
			break;
	}
}

/* ================================================================ byte buffers */

void
bytes_append(struct bytes *b, const void *p, size_t n) {
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 4096;
		while (c < b->n + n)
			c *= 2;
		b->p = realloc(b->p, c);
		b->cap = c;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

void
bytes_free(struct bytes *b) {
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

void
fill_pattern(unsigned char *p, size_t n, unsigned seed, size_t off0) {
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(seed, off0 + i);
}

size_t
check_pattern(const unsigned char *p, size_t n, unsigned seed, size_t off0) {
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern_byte(seed, off0 + i))
			return i;
	return (size_t)-1;
}

size_t
collect_data(struct fixture *f, int id, struct bytes *out, size_t want, int timeout_ms,
	struct bytes *sizes) {
	int64_t end = now_ms() + timeout_ms;
	while (out->n < want) {
		int64_t left = end - now_ms();
		if (left <= 0)
			break;
		int stopped = 0;
		struct ev *e = take_impl(f, id, SOCKET_DATA, (int)left, 1, &stopped);
		if (e == NULL)
			break;
		if (e->ud > 0)
			bytes_append(out, e->data, (size_t)e->ud);
		if (sizes)
			bytes_append(sizes, &e->ud, sizeof(int));
		ev_release(f, e);
	}
	return out->n;
}

/* ================================================================ plain peer sockets */

static int
make_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof(*a);
		return AF_INET6;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
		return -1;
	*len = sizeof(*a);
	return AF_INET;
}

int
sock_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int
peer_listen(const char *ip, int *port, int rcvbuf) {
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(ip, 0, &ss, &len);
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
		close(fd);
		return -1;
	}
	*port = sock_port(fd);
	return fd;
}

int
peer_connect(const char *ip, int port, int rcvbuf) {
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(ip, port, &ss, &len);
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
peer_accept(int lfd, int timeout_ms) {
	struct pollfd p = { lfd, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

int
peer_read(int fd, struct bytes *out, size_t want, int timeout_ms, int *err) {
	static __thread unsigned char buf[65536];
	int64_t end = now_ms() + timeout_ms;
	if (err)
		*err = 0;
	while (out->n < want) {
		int64_t left = end - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, POLLIN, 0 };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		size_t room = want - out->n;
		ssize_t n = read(fd, buf, room < sizeof(buf) ? room : sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (err)
				*err = errno;
			return 1;
		}
		if (n == 0)
			return 1;
		bytes_append(out, buf, (size_t)n);
	}
	return 0;
}

int
peer_read_to_eof(int fd, struct bytes *out, int timeout_ms, int *err) {
	return peer_read(fd, out, (size_t)-1, timeout_ms, err);
}

int
peer_silent(int fd, int ms) {
	struct pollfd p = { fd, POLLIN, 0 };
	return poll(&p, 1, ms) == 0;
}

void
peer_write_all(int fd, const void *p, size_t n) {
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = { fd, POLLOUT, 0 };
				poll(&pf, 1, 100);
				continue;
			}
			CHECK(!"peer write failed");
			return;
		}
		c += w;
		n -= (size_t)w;
	}
}

void
peer_rst_close(int fd) {
	struct linger l = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int
udp_peer(const char *ip, int *port) {
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(ip, 0, &ss, &len);
	int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	*port = sock_port(fd);
	return fd;
}

int
udp_peer_recv(int fd, void *buf, size_t cap, int timeout_ms, int *from_port) {
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&ss, &len);
	if (n >= 0 && from_port) {
		if (ss.ss_family == AF_INET6)
			*from_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			*from_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return (int)n;
}

int
udp_peer_sendto(int fd, const char *ip, int port, const void *p, size_t n) {
	struct sockaddr_storage ss;
	socklen_t len;
	make_addr(ip, port, &ss, &len);
	return (int)sendto(fd, p, n, 0, (struct sockaddr *)&ss, len);
}

int
refused_port(const char *ip, int *holder) {
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = make_addr(ip, 0, &ss, &len);
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0)
		return -1;
	*holder = fd;
	return sock_port(fd);
}

/* ================================================================ library-side helpers */

static int
send_buf(struct socket_server *ss, int id, int type, const void *p, size_t n, int low) {
	struct socket_sendbuffer b;
	b.id = id;
	b.type = type;
	b.buffer = p;
	b.sz = n;
	return low ? socket_server_send_lowpriority(ss, &b) : socket_server_send(ss, &b);
}

static void *
dup_mem(const void *p, size_t n) {
	void *m = malloc(n ? n : 1);
	memcpy(m, p, n);
	return m;
}

int
send_mem(struct socket_server *ss, int id, const void *p, size_t n) {
	return send_buf(ss, id, SOCKET_BUFFER_MEMORY, dup_mem(p, n), n, 0);
}

int
send_mem_low(struct socket_server *ss, int id, const void *p, size_t n) {
	return send_buf(ss, id, SOCKET_BUFFER_MEMORY, dup_mem(p, n), n, 1);
}

int
send_raw(struct socket_server *ss, int id, const void *p, size_t n) {
	return send_buf(ss, id, SOCKET_BUFFER_RAWPOINTER, p, n, 0);
}

int
send_raw_low(struct socket_server *ss, int id, const void *p, size_t n) {
	return send_buf(ss, id, SOCKET_BUFFER_RAWPOINTER, p, n, 1);
}

int
send_obj(struct socket_server *ss, int id, struct tobj *o) {
	return send_buf(ss, id, SOCKET_BUFFER_OBJECT, o, 0, 0);
}

int
send_obj_low(struct socket_server *ss, int id, struct tobj *o) {
	return send_buf(ss, id, SOCKET_BUFFER_OBJECT, o, 0, 1);
}

int
send_str(struct socket_server *ss, int id, const char *s) {
	return send_mem(ss, id, s, strlen(s));
}

int
send_pattern(struct socket_server *ss, int id, size_t total, size_t chunk, unsigned seed,
	size_t *off) {
	int bad = 0;
	size_t sent = 0;
	while (sent < total) {
		size_t n = total - sent < chunk ? total - sent : chunk;
		unsigned char *m = malloc(n);
		fill_pattern(m, n, seed, *off);
		struct socket_sendbuffer b = { id, SOCKET_BUFFER_MEMORY, m, n };
		if (socket_server_send(ss, &b) != 0)
			bad++;
		*off += n;
		sent += n;
	}
	return bad;
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
			memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

int
library_fd_of(int peer) {
	struct sockaddr_storage pl, pr;
	socklen_t len = sizeof(pl);
	if (getsockname(peer, (struct sockaddr *)&pl, &len) != 0)
		return -1;
	len = sizeof(pr);
	if (getpeername(peer, (struct sockaddr *)&pr, &len) != 0)
		return -1;
	for (int fd = 0; fd < 4096; fd++) {
		if (fd == peer)
			continue;
		struct sockaddr_storage l, r;
		socklen_t ll = sizeof(l), rl = sizeof(r);
		if (getsockname(fd, (struct sockaddr *)&l, &ll) != 0)
			continue;
		if (getpeername(fd, (struct sockaddr *)&r, &rl) != 0)
			continue;
		if (same_addr(&l, &pr) && same_addr(&r, &pl))
			return fd;
	}
	return -1;
}

int
connected_pair(struct fixture *f, uintptr_t owner, const char *ip, int rcvbuf, int *peer) {
	int port;
	*peer = -1;
	int lfd = peer_listen(ip, &port, rcvbuf);
	if (!CHECK(lfd >= 0))
		return -1;
	int id = socket_server_connect(f->ss, owner, ip, port);
	CHECK(id > 0);
	struct ev *e = EXPECT(f, SOCKET_OPEN, id, owner, 0, ip);
	*peer = peer_accept(lfd, T_EVENT);
	CHECK(*peer >= 0);
	close(lfd);
	if (rcvbuf > 0 && *peer >= 0) {
		/* a small, fixed send buffer on the library's side too (no autotuning), so that a
		   few MiB cannot vanish into the kernel */
		int lfd2 = library_fd_of(*peer);
		CHECK(lfd2 >= 0);
		if (lfd2 >= 0)
			setsockopt(lfd2, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (e == NULL || e->type != SOCKET_OPEN)
		return -1;
	return id;
}

int
accepted_pair(struct fixture *f, uintptr_t lowner, uintptr_t owner, int *lid, int *peer) {
	*peer = -1;
	*lid = socket_server_listen(f->ss, lowner, "127.0.0.1", 0, 32);
	if (!CHECK(*lid > 0))
		return -1;
	struct ev *e = EXPECT(f, SOCKET_OPEN, *lid, lowner, ANY_UD, "127.0.0.1");
	if (e == NULL)
		return -1;
	int port = e->ud;
	socket_server_start(f->ss, lowner, *lid);
	EXPECT(f, SOCKET_OPEN, *lid, lowner, 0, "start");
	*peer = peer_connect("127.0.0.1", port, 0);
	if (!CHECK(*peer >= 0))
		return -1;
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(*peer));
	e = EXPECT(f, SOCKET_ACCEPT, *lid, lowner, ANY_UD, name);
	if (e == NULL || e->type != SOCKET_ACCEPT)
		return -1;
	int id = e->ud;
	socket_server_start(f->ss, owner, id);
	EXPECT(f, SOCKET_OPEN, id, owner, 0, "start");
	return id;
}

int
info_find(struct socket_server *ss, int id, struct socket_info *out) {
	struct socket_info *list = socket_server_info(ss);
	int found = 0;
	for (struct socket_info *i = list; i; i = i->next) {
		if (i->id == id) {
			if (out) {
				*out = *i;
				out->next = NULL;
			}
			found++;
		}
	}
	socket_info_release(list);
	if (found > 1)
		CHECK(!"socket_info lists an id twice");
	return found > 0;
}

int
info_wait(struct socket_server *ss, int id, int listed, int timeout_ms) {
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		if (info_find(ss, id, NULL) == listed)
			return 1;
		if (now_ms() >= end)
			return 0;
		struct timespec ts = { 0, 2 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* ================================================================ slot exhaustion */

int
count_open_fds(void) {
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

int
max_sockets(void) {
	const char *s = getenv("TEST_MAX_SOCKETS");
	return s && atoi(s) > 0 ? atoi(s) : 65536;
}

void
slots_exhaust(struct fixture *f, struct exhausted *x) {
	memset(x, 0, sizeof(*x));
	x->pipe[0] = x->pipe[1] = -1;
	/* the server first: its own descriptors keep low numbers */
	fixture_init_nopoll(f);
	CHECK(pipe(x->pipe) == 0);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t want = (rlim_t)MAX_SOCKETS + 1024;
	const char *nofd = getenv("TEST_SLOTS_NOFD");
	if (nofd && nofd[0] == '1') {
		x->with_fds = 0;
	} else if (rl.rlim_cur >= want) {
		x->with_fds = 1;
	} else {
		struct rlimit nl = { want, rl.rlim_max > want ? rl.rlim_max : want };
		x->with_fds = setrlimit(RLIMIT_NOFILE, &nl) == 0;
	}
	if (x->with_fds) {
		x->fds = malloc(sizeof(int) * (size_t)MAX_SOCKETS);
		for (int i = 0; i < MAX_SOCKETS; i++) {
			x->fds[i] = dup(x->pipe[0]);
			if (x->fds[i] < 0) {
				/* cannot get the descriptors after all: fall back */
				for (int k = 0; k < i; k++)
					close(x->fds[k]);
				free(x->fds);
				x->fds = NULL;
				x->with_fds = 0;
				break;
			}
		}
	}
	fprintf(stderr, "    (slot exhaustion: %d binds of %s)\n", MAX_SOCKETS,
		x->with_fds ? "distinct descriptors, poll thread running"
			    : "one descriptor, poll thread not started");
	if (x->with_fds)
		fixture_start_poll(f);
	x->consecutive = 1;
	for (int i = 0; i < MAX_SOCKETS; i++) {
		int id = socket_server_bind(f->ss, 0x51075, x->with_fds ? x->fds[i] : x->pipe[0]);
		if (id < 0)
			break;
		if (x->count == 0)
			x->first_id = id;
		else if (id != x->last_id + 1)
			x->consecutive = 0;
		x->last_id = id;
		x->count++;
	}
}

int
slots_drain(struct fixture *f, struct exhausted *x) {
	if (!f->polling)
		fixture_start_poll(f);
	int good = 0;
	for (int i = 0; i < x->count; i++) {
		struct ev *e = take_event(f, ANY_ID, tmo(10000));
		if (e == NULL)
			break;
		int binding = e->type == SOCKET_OPEN && e->data && strcmp(e->data, "binding") == 0;
		/* one descriptor bound 65536 times: epoll takes it once, refuses the others */
		if (binding || (!x->with_fds && e->type == SOCKET_ERR))
			good++;
		ev_release(f, e);
	}
	return good;
}

void
slots_cleanup(struct exhausted *x) {
	if (x->fds) {
		for (int i = 0; i < MAX_SOCKETS; i++)
			close(x->fds[i]);
		free(x->fds);
		x->fds = NULL;
	}
	if (x->pipe[0] >= 0) {
		close(x->pipe[0]);
		close(x->pipe[1]);
	}
}
