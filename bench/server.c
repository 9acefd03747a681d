/*
 * The server under test: any implementation of the socket_server ABI, driven as skynet drives
 * it. One thread polls and hands every result to the mailbox of the worker that owns the socket
 * (the socket's opaque, as skynet routes to a service); the workers reply (so sends come from
 * threads other than the poll thread: direct writes when a socket's queue is empty, queued
 * writes otherwise) and free every received buffer; a timer thread calls
 * socket_server_updatetime every 10 ms.
 *
 *   server WORKLOAD [condvar]
 *
 * With "condvar", the mailboxes are guarded by a pthread mutex and an idle worker sleeps on a
 * condition variable that the pusher signals when the worker is asleep: a common way to write
 * an embedding, which makes the poll thread and the workers meet on locks and wake each other
 * far more often than skynet's spinlocked queues do.
 *
 * Prints "ready tcp=PORT udp=PORT" on stdout, then answers one line per command read on stdin
 * (the bench driver relays them from the load generator):
 *   mark        -> ok cpu_ns=N rss_kb=N hwm_kb=N
 *   settle      -> ok live=0 once every connection the workers saw has closed (or timeout)
 *   wait-flood  -> ok send_ns=N once the flood's sends have all been issued (or timeout)
 *   info        -> ok info_ns=N info_min_ns=N entries=N rss_kb=N hwm_kb=N
 *   rss         -> ok rss_kb=N hwm_kb=N create_kb=N
 *   quit        -> bye ... (counters), then the process exits
 *
 * Exit status 0 unless a worker saw bytes that do not match the workload's pattern.
 */
#define _GNU_SOURCE
#include "socket_server.h"

#include "common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define GATE 0 /* the worker that owns the listener: skynet's gate service */
#define TABLE_SIZE 65536
#define SETTLE_SECONDS 20
#define FLOOD_WAIT_SECONDS 120

/* ---- logging: the library's skynet_error, strong here so it replaces any weak fallback ---- */

struct skynet_context;
void skynet_error(struct skynet_context *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static atomic_long log_lines;

void
skynet_error(struct skynet_context *ctx, const char *fmt, ...) {
	(void)ctx;
	/* Counted always, printed only at first, so a chatty implementation cannot flood the log. */
	if (atomic_fetch_add(&log_lines, 1) >= 20)
		return;
	va_list ap;
	va_start(ap, fmt);
	flockfile(stderr);
	fputs("[socket] ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

/* ---- mailboxes: one per worker, a growable ring like skynet_mq ---- */

struct msg {
	int type;
	int id;
	int ud;
	int start; /* OPEN whose data was "start" */
	char *data; /* DATA/UDP: the library's malloc'ed buffer; otherwise NULL */
};

/*
 * As skynet's message queues: the ring is guarded by a spinlock (skynet_mq.c uses one), and a
 * worker with nothing to do sleeps until a push wakes it. The sleep is a futex on a wake
 * counter rather than a condition variable under a mutex: one FUTEX_WAKE per sleep and no lock
 * for the poll thread to meet the worker on, so the harness's own handoff costs as little as it
 * can and the library's share of the time shows.
 */
struct mailbox {
	pthread_mutex_t mu; /* condvar mode: guards the ring and `waiting` */
	pthread_cond_t cv;
	int waiting;
	atomic_flag spin;
	atomic_uint wakes; /* the futex word: bumped by every wake */
	atomic_int sleeping;
	struct msg *ring;
	unsigned cap, head, count;
};

struct conn {
	int id;
	uintptr_t owner;
	unsigned char rec[8];
	int rec_len;
	int have_quota;
	uint64_t quota, sent, acked; /* push */
	uint64_t recvd, next_ack; /* recv */
};

static struct {
	struct socket_server *ss;
	int workload;
	int nworkers;
	struct mailbox box[MAX_WORKERS];
	pthread_t workers[MAX_WORKERS];
	pthread_t poller, timer;
	int condvar; /* mailboxes: mutex + condition variable instead of spinlock + futex */
	atomic_int stop_workers;
	atomic_int stop_timer;
	uint64_t start_ns;
	unsigned char *pattern;

	struct conn *conns[TABLE_SIZE]; /* by id; each entry touched by its owning worker only */

	pthread_mutex_t lock; /* guards the fields below it and `cond` */
	pthread_cond_t cond;
	int tcp_port;
	int flood_done;
	uint64_t flood_send_ns;

	atomic_int live;
	atomic_int listen_id;
	atomic_long accepted, errors, warnings, warn_max_kb, verify_fail, collisions, results;
} S;

static void
spin_lock(atomic_flag *f) {
	unsigned spins = 0;
	while (atomic_flag_test_and_set_explicit(f, memory_order_acquire)) {
		if (++spins % 64 == 0)
			sched_yield();
	}
}

static void
spin_unlock(atomic_flag *f) {
	atomic_flag_clear_explicit(f, memory_order_release);
}

static void
mailbox_init(struct mailbox *b) {
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->waiting = 0;
	atomic_flag_clear(&b->spin);
	atomic_init(&b->wakes, 0);
	atomic_init(&b->sleeping, 0);
	b->cap = 1024;
	b->ring = malloc(sizeof(struct msg) * b->cap);
	b->head = b->count = 0;
	if (b->ring == NULL)
		abort();
}

static void
mailbox_wake(struct mailbox *b, int all) {
	if (S.condvar) {
		pthread_mutex_lock(&b->mu);
		if (all)
			pthread_cond_broadcast(&b->cv);
		else
			pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		return;
	}
	atomic_fetch_add(&b->wakes, 1);
	syscall(SYS_futex, &b->wakes, FUTEX_WAKE_PRIVATE, all ? INT_MAX : 1, NULL, NULL, 0);
}

static void
ring_lock(struct mailbox *b) {
	if (S.condvar)
		pthread_mutex_lock(&b->mu);
	else
		spin_lock(&b->spin);
}

static void
ring_unlock(struct mailbox *b) {
	if (S.condvar)
		pthread_mutex_unlock(&b->mu);
	else
		spin_unlock(&b->spin);
}

static void
mailbox_push(struct mailbox *b, const struct msg *m) {
	ring_lock(b);
	if (b->count == b->cap) {
		struct msg *ring = malloc(sizeof(struct msg) * b->cap * 2);
		if (ring == NULL)
			abort();
		for (unsigned i = 0; i < b->count; i++)
			ring[i] = b->ring[(b->head + i) & (b->cap - 1)];
		free(b->ring);
		b->ring = ring;
		b->head = 0;
		b->cap *= 2;
	}
	b->ring[(b->head + b->count) & (b->cap - 1)] = *m;
	b->count++;
	if (S.condvar) {
		if (b->waiting)
			pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		return;
	}
	spin_unlock(&b->spin);
	/* Pairs with the sleeper's store then check: one of the two sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&b->sleeping) && atomic_exchange(&b->sleeping, 0))
		mailbox_wake(b, 0);
}

/* Moves up to `max` messages out; the ring's lock is held. */
static unsigned
ring_take(struct mailbox *b, struct msg *out, unsigned max) {
	unsigned n = 0;
	while (n < max && b->count > 0) {
		out[n++] = b->ring[b->head];
		b->head = (b->head + 1) & (b->cap - 1);
		b->count--;
	}
	return n;
}

static unsigned
mailbox_take(struct mailbox *b, struct msg *out, unsigned max) {
	ring_lock(b);
	unsigned n = ring_take(b, out, max);
	ring_unlock(b);
	return n;
}

/* condvar mode: sleep on the condition variable while the ring is empty. */
static unsigned
mailbox_pop_condvar(struct mailbox *b, struct msg *out, unsigned max) {
	pthread_mutex_lock(&b->mu);
	unsigned n;
	while ((n = ring_take(b, out, max)) == 0 && !atomic_load(&S.stop_workers)) {
		b->waiting = 1;
		pthread_cond_wait(&b->cv, &b->mu);
		b->waiting = 0;
	}
	pthread_mutex_unlock(&b->mu);
	return n;
}

/* Up to `max` messages, or 0 once the workers are told to stop. */
static unsigned
mailbox_pop(struct mailbox *b, struct msg *out, unsigned max) {
	if (S.condvar)
		return mailbox_pop_condvar(b, out, max);
	for (;;) {
		if (atomic_load(&S.stop_workers))
			return 0;
		unsigned n = mailbox_take(b, out, max);
		if (n > 0)
			return n;
		unsigned seen = atomic_load(&b->wakes);
		atomic_store(&b->sleeping, 1);
		/* Pairs with the pusher's fence: either it sees `sleeping` or this sees its message. */
		atomic_thread_fence(memory_order_seq_cst);
		n = mailbox_take(b, out, max);
		if (n > 0) {
			atomic_store(&b->sleeping, 0);
			return n;
		}
		if (!atomic_load(&S.stop_workers))
			syscall(SYS_futex, &b->wakes, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
		atomic_store(&b->sleeping, 0);
	}
}

/* ---- sends ---- */

static void
send_raw(int id, const void *p, size_t sz) {
	struct socket_sendbuffer b = { id, SOCKET_BUFFER_RAWPOINTER, p, sz };
	socket_server_send(S.ss, &b);
}

static void
send_memory(int id, void *p, size_t sz) {
	struct socket_sendbuffer b = { id, SOCKET_BUFFER_MEMORY, p, sz };
	socket_server_send(S.ss, &b);
}

static uintptr_t
owner_of(int id) {
	return (uintptr_t)((unsigned)id * 2654435761u % (unsigned)S.nworkers);
}

/* ---- per-workload behaviour ---- */

static void
push_pump(struct conn *c) {
	while (c->sent < c->quota && c->sent - c->acked < PUSH_WINDOW) {
		size_t n = c->quota - c->sent < PUSH_CHUNK ? (size_t)(c->quota - c->sent) : PUSH_CHUNK;
		unsigned char *buf = malloc(n);
		if (buf == NULL)
			abort();
		memcpy(buf, S.pattern + c->sent % PATTERN_PERIOD, n);
		c->sent += n;
		send_memory(c->id, buf, n);
	}
}

static void
flood(struct conn *c, uint64_t count) {
	unsigned char m[FLOOD_MSG];
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < count; i++) {
		flood_msg_fill(m, i);
		send_raw(c->id, m, sizeof(m));
	}
	pthread_mutex_lock(&S.lock);
	S.flood_done = 1;
	S.flood_send_ns = now_ns() - t0;
	pthread_cond_broadcast(&S.cond);
	pthread_mutex_unlock(&S.lock);
}

/* One 8-byte request or ack from the load generator. */
static void
on_record(struct conn *c, uint64_t v) {
	if (S.workload == W_PUSH) {
		if (!c->have_quota) {
			c->have_quota = 1;
			c->quota = v;
		} else if (v > c->acked) {
			c->acked = v;
		}
		push_pump(c);
	} else if (S.workload == W_FLOOD && !c->have_quota) {
		c->have_quota = 1;
		flood(c, v);
	}
}

static void
on_data(struct conn *c, unsigned char *data, int n) {
	switch (S.workload) {
	case W_PINGPONG:
	case W_ECHO:
		send_raw(c->id, data, (size_t)n);
		break;
	case W_RECV: {
		/* Sparse check: the first and last byte and one every 4 KiB. */
		uint64_t o = c->recvd;
		for (int i = 0; i < n; i += 4096)
			if (data[i] != (unsigned char)((o + (uint64_t)i) % PATTERN_PERIOD))
				atomic_fetch_add(&S.verify_fail, 1);
		if (data[n - 1] != (unsigned char)((o + (uint64_t)n - 1) % PATTERN_PERIOD))
			atomic_fetch_add(&S.verify_fail, 1);
		c->recvd += (uint64_t)n;
		while (c->recvd >= c->next_ack + ACK_STEP) {
			unsigned char ack[8];
			c->next_ack += ACK_STEP;
			put_u64(ack, c->next_ack);
			send_raw(c->id, ack, sizeof(ack));
		}
		break;
	}
	case W_PUSH:
	case W_FLOOD:
		for (int i = 0; i < n; i++) {
			c->rec[c->rec_len++] = data[i];
			if (c->rec_len == 8) {
				c->rec_len = 0;
				on_record(c, get_u64(c->rec));
			}
		}
		break;
	default:
		atomic_fetch_add(&S.verify_fail, 1); /* nothing else sends data */
		break;
	}
}

static struct conn *
conn_find(int id) {
	struct conn *c = S.conns[(unsigned)id % TABLE_SIZE];
	return c && c->id == id ? c : NULL;
}

static void
conn_drop(struct conn *c) {
	S.conns[(unsigned)c->id % TABLE_SIZE] = NULL;
	free(c);
	atomic_fetch_sub(&S.live, 1);
}

static void
handle(uintptr_t self, struct msg *m) {
	struct conn *c;
	switch (m->type) {
	case SOCKET_ACCEPT:
		atomic_fetch_add(&S.accepted, 1);
		socket_server_start(S.ss, owner_of(m->ud), m->ud);
		break;
	case SOCKET_OPEN:
		if (!m->start) {
			if (m->ud > 0) { /* the listener is bound: ud is its port */
				pthread_mutex_lock(&S.lock);
				S.tcp_port = m->ud;
				pthread_cond_broadcast(&S.cond);
				pthread_mutex_unlock(&S.lock);
			}
			break;
		}
		if (m->id == atomic_load(&S.listen_id))
			break; /* the listener's own "start" */
		if (S.conns[(unsigned)m->id % TABLE_SIZE] != NULL) {
			if (S.conns[(unsigned)m->id % TABLE_SIZE]->id != m->id)
				atomic_fetch_add(&S.collisions, 1);
			break;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			abort();
		c->id = m->id;
		c->owner = self;
		S.conns[(unsigned)m->id % TABLE_SIZE] = c;
		atomic_fetch_add(&S.live, 1);
		socket_server_nodelay(S.ss, m->id);
		{
			char g = GREETING;
			send_raw(m->id, &g, 1);
		}
		break;
	case SOCKET_DATA:
		c = conn_find(m->id);
		if (c != NULL && m->ud > 0)
			on_data(c, (unsigned char *)m->data, m->ud);
		free(m->data);
		break;
	case SOCKET_UDP: {
		struct socket_message sm = { m->id, self, m->ud, m->data };
		int sz = 0;
		const struct socket_udp_address *addr = socket_server_udp_address(S.ss, &sm, &sz);
		if (addr != NULL) {
			struct socket_sendbuffer b = { m->id, SOCKET_BUFFER_RAWPOINTER, m->data, (size_t)m->ud };
			socket_server_udp_send(S.ss, addr, &b);
		} else {
			atomic_fetch_add(&S.verify_fail, 1);
		}
		free(m->data);
		break;
	}
	case SOCKET_CLOSE:
		c = conn_find(m->id);
		if (c != NULL) {
			socket_server_close(S.ss, self, m->id);
			conn_drop(c);
		}
		break;
	case SOCKET_ERR:
		atomic_fetch_add(&S.errors, 1);
		c = conn_find(m->id);
		if (c != NULL) {
			socket_server_shutdown(S.ss, self, m->id);
			conn_drop(c);
		}
		break;
	case SOCKET_WARNING:
		atomic_fetch_add(&S.warnings, 1);
		if (m->ud > atomic_load(&S.warn_max_kb))
			atomic_store(&S.warn_max_kb, m->ud);
		break;
	default:
		break;
	}
}

static void *
worker_main(void *arg) {
	uintptr_t self = (uintptr_t)arg;
	struct msg batch[64];
	unsigned n;
	while ((n = mailbox_pop(&S.box[self], batch, 64)) > 0)
		for (unsigned i = 0; i < n; i++)
			handle(self, &batch[i]);
	return NULL;
}

/* ---- the poll thread and the timer thread ---- */

static void *
poll_main(void *arg) {
	(void)arg;
	for (;;) {
		struct socket_message r;
		int more = 1;
		int type = socket_server_poll(S.ss, &r, &more);
		if (type == SOCKET_EXIT)
			return NULL;
		if (type < 0)
			continue;
		atomic_fetch_add(&S.results, 1);
		struct msg m = { type, r.id, r.ud, 0, NULL };
		if (type == SOCKET_DATA || type == SOCKET_UDP)
			m.data = r.data;
		else if (type == SOCKET_OPEN)
			m.start = r.data != NULL && strcmp(r.data, "start") == 0;
		mailbox_push(&S.box[r.opaque % (uintptr_t)S.nworkers], &m);
	}
}

static uint64_t
centiseconds(void) {
	return (now_ns() - S.start_ns) / 10000000u;
}

static void *
timer_main(void *arg) {
	(void)arg;
	while (!atomic_load(&S.stop_timer)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		socket_server_updatetime(S.ss, centiseconds());
	}
	return NULL;
}

/* ---- setup and control ---- */

static int
wait_tcp_port(void) {
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&S.lock);
	while (S.tcp_port == 0)
		if (pthread_cond_timedwait(&S.cond, &S.lock, &dl) != 0)
			break;
	int port = S.tcp_port;
	pthread_mutex_unlock(&S.lock);
	return port;
}

/* socket_server_udp does not report its port: probe a free one, then ask for it. */
static int
open_udp(int *port) {
	for (int attempt = 0; attempt < 20; attempt++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
			getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		close(fd);
		*port = ntohs(a.sin_port);
		int id = socket_server_udp(S.ss, 1 % (uintptr_t)S.nworkers, "127.0.0.1", *port);
		if (id >= 0)
			return id;
	}
	return -1;
}

static void
reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
reply(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void
cmd_settle(void) {
	uint64_t deadline = now_ns() + (uint64_t)SETTLE_SECONDS * 1000000000u;
	while (atomic_load(&S.live) > 0 && now_ns() < deadline) {
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	int live = atomic_load(&S.live);
	reply("%s live=%d", live == 0 ? "ok" : "timeout", live);
}

static void
cmd_wait_flood(void) {
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += FLOOD_WAIT_SECONDS;
	pthread_mutex_lock(&S.lock);
	while (!S.flood_done)
		if (pthread_cond_timedwait(&S.cond, &S.lock, &dl) != 0)
			break;
	int done = S.flood_done;
	uint64_t ns = S.flood_send_ns;
	pthread_mutex_unlock(&S.lock);
	reply("%s send_ns=%llu", done ? "ok" : "timeout", (unsigned long long)ns);
}

static int
cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
cmd_info(void) {
	uint64_t t[5];
	long entries = 0;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = now_ns();
		struct socket_info *si = socket_server_info(S.ss);
		if (i == 0)
			for (struct socket_info *p = si; p; p = p->next)
				entries++;
		socket_info_release(si);
		t[i] = now_ns() - t0;
	}
	qsort(t, 5, sizeof(t[0]), cmp_u64);
	reply("ok info_ns=%llu info_min_ns=%llu entries=%ld rss_kb=%ld hwm_kb=%ld", (unsigned long long)t[2],
		(unsigned long long)t[0], entries, proc_status_kb("VmRSS"), proc_status_kb("VmHWM"));
}

int
main(int argc, char **argv) {
	if (argc < 2 || (S.workload = workload_parse(argv[1])) < 0 ||
		(argc > 2 && strcmp(argv[2], "condvar") != 0)) {
		fprintf(stderr, "usage: %s pingpong|echo|push|recv|flood|storm|udp|idle|empty [condvar]\n", argv[0]);
		return 2;
	}
	S.condvar = argc > 2;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN); /* as skynet_main does */
	const char *w = getenv("BENCH_WORKERS");
	S.nworkers = w ? atoi(w) : 4;
	if (S.nworkers < 1 || S.nworkers > MAX_WORKERS)
		S.nworkers = 4;
	S.start_ns = now_ns();
	S.pattern = pattern_make(PUSH_CHUNK);
	pthread_mutex_init(&S.lock, NULL);
	pthread_cond_init(&S.cond, NULL);
	for (int i = 0; i < S.nworkers; i++)
		mailbox_init(&S.box[i]);

	long rss_before = proc_status_kb("VmRSS");
	S.ss = socket_server_create(0);
	if (S.ss == NULL) {
		fprintf(stderr, "socket_server_create failed\n");
		return 1;
	}
	long rss_created = proc_status_kb("VmRSS");
	pthread_create(&S.poller, NULL, poll_main, NULL);
	pthread_create(&S.timer, NULL, timer_main, NULL);
	for (int i = 0; i < S.nworkers; i++)
		pthread_create(&S.workers[i], NULL, worker_main, (void *)(uintptr_t)i);

	int tcp_port = 0, udp_port = 0;
	if (S.workload != W_EMPTY) {
		int lid = socket_server_listen(S.ss, GATE, "127.0.0.1", 0, 4096);
		atomic_store(&S.listen_id, lid);
		if (lid < 0 || (tcp_port = wait_tcp_port()) <= 0) {
			fprintf(stderr, "listen failed\n");
			return 1;
		}
		socket_server_start(S.ss, GATE, lid);
	}
	if (S.workload == W_UDP && open_udp(&udp_port) < 0) {
		fprintf(stderr, "udp failed\n");
		return 1;
	}
	reply("ready tcp=%d udp=%d", tcp_port, udp_port);

	char line[256];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "mark") == 0)
			reply("ok cpu_ns=%llu rss_kb=%ld hwm_kb=%ld", (unsigned long long)process_cpu_ns(),
				proc_status_kb("VmRSS"), proc_status_kb("VmHWM"));
		else if (strcmp(line, "settle") == 0)
			cmd_settle();
		else if (strcmp(line, "wait-flood") == 0)
			cmd_wait_flood();
		else if (strcmp(line, "info") == 0)
			cmd_info();
		else if (strcmp(line, "rss") == 0)
			reply("ok rss_kb=%ld hwm_kb=%ld create_kb=%ld", proc_status_kb("VmRSS"), proc_status_kb("VmHWM"),
				rss_created - rss_before);
		else if (strcmp(line, "quit") == 0)
			break;
		else
			reply("error unknown command");
	}

	/* Workers first: upstream's send may block on its command pipe once the poll thread is gone. */
	atomic_store(&S.stop_workers, 1);
	for (int i = 0; i < S.nworkers; i++)
		mailbox_wake(&S.box[i], 1);
	for (int i = 0; i < S.nworkers; i++)
		pthread_join(S.workers[i], NULL);
	socket_server_exit(S.ss);
	pthread_join(S.poller, NULL);
	atomic_store(&S.stop_timer, 1);
	pthread_join(S.timer, NULL);
	long hwm = proc_status_kb("VmHWM");
	socket_server_release(S.ss);
	for (int i = 0; i < S.nworkers; i++) {
		struct mailbox *b = &S.box[i];
		for (unsigned k = 0; k < b->count; k++)
			free(b->ring[(b->head + k) & (b->cap - 1)].data);
		free(b->ring);
	}
	for (int i = 0; i < TABLE_SIZE; i++)
		free(S.conns[i]);
	free(S.pattern);
	long vf = atomic_load(&S.verify_fail) + atomic_load(&S.collisions);
	reply("bye accepted=%ld errors=%ld warnings=%ld warn_max_kb=%ld logs=%ld results=%ld verify_fail=%ld hwm_kb=%ld",
		atomic_load(&S.accepted), atomic_load(&S.errors), atomic_load(&S.warnings), atomic_load(&S.warn_max_kb),
		atomic_load(&log_lines), atomic_load(&S.results), vf, hwm);
	return vf == 0 ? 0 : 3;
}
