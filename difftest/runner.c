/*
 * The differential runner (difftest/README.md). One binary per implementation of the ABI:
 *
 *   runner --seed N [--steps 0,3,5-9] [--print] [--check] [--nsteps K]
 *
 * It generates the program of seed N (gen.c), runs the chosen steps from this thread (the
 * driver, skynet's worker) while the harness's poll thread queues every result, waits after
 * each step until the system is quiet, and prints a normalised trace on stdout. --check also
 * verifies invariants that hold whatever upstream does and exits 1 when one fails.
 *
 * The trace must be identical run after run on one implementation, so everything that depends
 * on timing or on the kernel's choices is normalised here: ids and ports are renamed in order
 * of appearance, consecutive DATA results of a socket are merged (read sizes follow arrival
 * timing), WARNING sizes are reduced to the threshold they crossed, queued byte counts are
 * printed only as a sum with the written ones. Differences between implementations that are
 * intended are NOT normalised here but by the driver, from difftest/known_differences.txt.
 */
#define _GNU_SOURCE
#include "runner.h"
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OPAQUE_BASE 0x100
#define SMALL_BUF 131072      /* SO_SNDBUF/SO_RCVBUF on TCP sockets: fixed, no autotuning; above the loopback MSS (65483) so that a drained receiver always reopens its window */
#define SETTLE_MAX_MS 4000    /* a step that never settles is reported, not waited on */
#define NEVER_ISSUED 50000    /* base of the ids an unset handle stands for */

static struct fixture F;
static int check_mode;
static int violations;
static int settle_timeouts;

static void
out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
out(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void
violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
violation(const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	violations++;
	out("  INVARIANT %s\n", buf);
	fprintf(stderr, "difftest: invariant: %s\n", buf);
}

static uint32_t
fnv(uint32_t h, const void *p, size_t n) {
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 16777619u;
	return h;
}
#define FNV0 2166136261u

/* ================================================================ MEMORY buffer tracking */

/* The library frees MEMORY buffers with plain free(); linked statically, its calls bind to this
   definition. Pointers handed out as MEMORY buffers are looked up and counted once; everything
   else passes straight on. A double free reaches glibc, which aborts: a crash in the trace. */
#define MEM_MAX 4096
static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static void *mem_ptr[MEM_MAX];
static int mem_frees[MEM_MAX];
static int mem_n;
static atomic_int mem_live;
static void (*real_free)(void *);
static __thread int resolving;

void
free(void *p) {
	if (p == NULL)
		return;
	if (atomic_load_explicit(&mem_live, memory_order_relaxed) > 0) {
		pthread_mutex_lock(&mem_mu);
		for (int i = 0; i < mem_n; i++) {
			if (mem_ptr[i] == p) {
				mem_ptr[i] = NULL;
				mem_frees[i]++;
				atomic_fetch_sub(&mem_live, 1);
				break;
			}
		}
		pthread_mutex_unlock(&mem_mu);
	}
	if (real_free == NULL) {
		if (resolving)
			return; /* dlsym's own bookkeeping while free is looked up: leak it */
		resolving = 1;
		real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
		resolving = 0;
		if (real_free == NULL)
			abort();
	}
	real_free(p);
}

static void *
mem_alloc(size_t n, int *index) {
	void *p = malloc(n ? n : 1);
	if (p == NULL || mem_n >= MEM_MAX)
		abort();
	pthread_mutex_lock(&mem_mu);
	*index = mem_n;
	mem_ptr[mem_n] = p;
	mem_frees[mem_n] = 0;
	mem_n++;
	atomic_fetch_add(&mem_live, 1);
	pthread_mutex_unlock(&mem_mu);
	return p;
}

/* ================================================================ OBJECT buffers */

struct dobj {
	unsigned char *bytes;
	size_t sz;
	atomic_int frees[2]; /* by interface A, B */
	int switches_at_send; /* soi_switches when it was made */
};
/* userobject calls that changed the interface (a fact known_differences.txt refers to) */
static int soi_switches, soi_current;
#define OBJ_MAX 512
static struct dobj *objs[OBJ_MAX];
static int obj_n;

static const void *obj_buffer(const void *p) { return ((const struct dobj *)p)->bytes; }
static size_t obj_size(const void *p) { return ((const struct dobj *)p)->sz; }
static void obj_free_a(void *p) { atomic_fetch_add(&((struct dobj *)p)->frees[0], 1); }
static void obj_free_b(void *p) { atomic_fetch_add(&((struct dobj *)p)->frees[1], 1); }
static struct socket_object_interface soi[2] = {
	{ obj_buffer, obj_size, obj_free_a },
	{ obj_buffer, obj_size, obj_free_b },
};

/* ================================================================ renaming */

static int id_raw[1024], id_count;
static int port_raw[1024], port_count;

static int
id_name(int raw) {
	for (int i = 0; i < id_count; i++)
		if (id_raw[i] == raw)
			return i;
	if (id_count < 1024)
		id_raw[id_count++] = raw;
	return id_count - 1;
}

static int
port_name(int raw) {
	for (int i = 0; i < port_count; i++)
		if (port_raw[i] == raw)
			return i;
	if (port_count < 1024)
		port_raw[port_count++] = raw;
	return port_count - 1;
}

static void
fmt_id(char *b, size_t n, int raw) {
	snprintf(b, n, "#%d", id_name(raw));
}

static void
fmt_opaque(char *b, size_t n, uintptr_t o) {
	if (o >= OPAQUE_BASE && o < OPAQUE_BASE + 3)
		snprintf(b, n, "O%d", (int)(o - OPAQUE_BASE));
	else
		snprintf(b, n, "opaque=%#lx", (unsigned long)o);
}

/* "ip:port" with the port renamed; anything else unchanged. */
static void
fmt_hostport(char *b, size_t n, const char *s) {
	const char *c = s ? strrchr(s, ':') : NULL;
	if (c == NULL || c[1] == 0 || strspn(c + 1, "0123456789") != strlen(c + 1)) {
		if (s == NULL) {
			snprintf(b, n, "\"(null)\"");
			return;
		}
		/* uninitialised bytes (upstream's stale names) stay on one line: \xNN */
		size_t k = 0;
		b[k++] = '"';
		for (const unsigned char *p = (const unsigned char *)s; *p && k + 6 < n; p++) {
			if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
				b[k++] = (char)*p;
			else
				k += (size_t)snprintf(b + k, n - k, "\\x%02x", *p);
		}
		b[k++] = '"';
		b[k] = 0;
		return;
	}
	snprintf(b, n, "\"%.*s:p%d\"", (int)(c - s), s, port_name(atoi(c + 1)));
}

/* ================================================================ runner-owned descriptors */

/* The runner tells its own descriptors from the library's by inode (numbers get reused). */
static ino_t own_ino[4096];
static int own_n;

static ino_t
fd_ino(int fd) {
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void
own(int fd) {
	if (fd >= 0 && own_n < 4096)
		own_ino[own_n++] = fd_ino(fd);
}

static int
owned(ino_t ino) {
	for (int i = 0; i < own_n; i++)
		if (own_ino[i] == ino)
			return 1;
	return 0;
}

/* Descriptors handed to socket_server_bind: the caller's; whether the library closed them is
   part of the trace. */
struct bound {
	int fd;
	ino_t ino;
	int step;
};
static struct bound bounds[64];
static int bound_n;

static int
bound_open(const struct bound *b) {
	return fcntl(b->fd, F_GETFD) >= 0 && fd_ino(b->fd) == b->ino;
}

/* The library's end of the pipe whose other end is `fd` is still open. */
static int
bound_open_fd_of_pipe(int fd) {
	ino_t ino = fd_ino(fd);
	for (int i = 0; i < bound_n; i++)
		if (bounds[i].ino == ino && bound_open(&bounds[i]))
			return 1;
	return 0;
}

static int
bound_ino(ino_t ino) {
	for (int i = 0; i < bound_n; i++)
		if (bounds[i].ino == ino)
			return 1;
	return 0;
}

/* Sockets in this process that neither the runner nor a bind handed over: the library's. The
   library's own wake-up descriptors (a pipe upstream, an eventfd here) are not sockets. */
static int
library_sockets(int *tcp_fds, int max) {
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (owned(st.st_ino) || bound_ino(st.st_ino))
			continue;
		if (tcp_fds && n < max)
			tcp_fds[n] = fd;
		n++;
	}
	closedir(d);
	return n;
}

static int
count_fds(void) {
	return count_open_fds();
}

/* Small fixed buffers on every TCP socket of the library, so a few hundred KB congest it and
   the kernel's autotuning cannot change how much is queued from run to run. */
static ino_t shrunk[1024];
static int shrunk_n;

static void
shrink_library_buffers(void) {
	int fds[512];
	int n = library_sockets(fds, 512);
	if (n > 512)
		n = 512;
	for (int i = 0; i < n; i++) {
		ino_t ino = fd_ino(fds[i]);
		int done = 0;
		for (int k = 0; k < shrunk_n; k++)
			if (shrunk[k] == ino)
				done = 1;
		if (done)
			continue;
		int type = 0;
		socklen_t len = sizeof(type);
		if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
			continue;
		int b = SMALL_BUF;
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
		/* listeners: accepted sockets inherit it */
		int acc = 0;
		len = sizeof(acc);
		if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
			setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
		if (shrunk_n < 1024)
			shrunk[shrunk_n++] = ino;
	}
}

/* ================================================================ handles */

struct sock {
	int id;      /* raw id, or 0 when the handle was never set */
	int port;    /* listener: bound port (from OPEN); UDP: the port the runner chose */
	int fam;
	int closed;  /* close/shutdown issued by the runner */
};

enum { PEER_NONE, PEER_TCP, PEER_SOCKETPAIR, PEER_PIPE_WRITE, PEER_PIPE_READ, PEER_UDP };

struct peer {
	int fd;
	int kind;
	int fam;
	int port;     /* TCP: local port (ACCEPT matching); UDP: bound port */
	int lib_id;   /* TCP: the library socket accepted for it (0 if not yet) */
	int handle;   /* the socket handle that ACCEPT fills (-1 none) */
	long got;     /* bytes read so far */
	uint32_t sum; /* their checksum, as one stream */
	int eof;
	int reset;    /* a read ended in ECONNRESET */
};

static struct sock S[NSOCK];
static struct peer P[NPEER];
static int listener_waiting[1024][2]; /* library connects to own listener: (listener raw id, handle) */
static int waiting_n;

static int
sid(int h) {
	return S[h].id ? S[h].id : NEVER_ISSUED + h;
}

static const char *
ip_of(int fam) {
	return fam == 6 ? "::1" : "127.0.0.1";
}

/* A port nothing listens on (bound to find it, then closed). */
static int
closed_port(int fam, int type) {
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len;
	if (fam == 6) {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	int fd = socket(fam == 6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0) {
		if (fd >= 0)
			close(fd);
		return 1; /* port 1: privileged, nothing there */
	}
	int port = sock_port(fd);
	close(fd);
	return port;
}

/* Pipe read ends kept open until the end (see peer_drop). */
static int parked[64];
static int parked_n;

static int bound_open_fd_of_pipe(int fd);

static void
peer_drop(int p) {
	/* Closing the read end of a pipe whose write end the library holds makes that end
	   report EPOLLERR forever: both implementations then return ERR in a hot loop, and how
	   many depends on time. Such a read end stays open until the end of the run. */
	if (P[p].fd >= 0 && P[p].kind == PEER_PIPE_READ && bound_open_fd_of_pipe(P[p].fd) &&
		parked_n < 64)
		parked[parked_n++] = P[p].fd;
	else if (P[p].fd >= 0)
		close(P[p].fd);
	memset(&P[p], 0, sizeof(P[p]));
	P[p].fd = -1;
	P[p].handle = -1;
}

/* ================================================================ settling */

static pid_t poll_tid;
static int lib_epoll_fd = -1;

static int
find_poll_tid(void) {
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	struct dirent *e;
	int tid = -1, n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int t = atoi(e->d_name);
		if (t != getpid()) {
			tid = t;
			n++;
		}
	}
	closedir(d);
	return n == 1 ? tid : -1;
}

static int
find_epoll_fd(void) {
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	struct dirent *e;
	int found = -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], link[64];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			if (strcmp(link, "anon_inode:[eventpoll]") == 0)
				found = atoi(e->d_name);
		}
	}
	closedir(d);
	return found;
}

/* The poll thread is blocked in epoll_wait and its epoll set has nothing ready: nothing is
   being processed and nothing is about to be (a pending command makes the set ready too). */
static int
poll_idle(void) {
	if (poll_tid <= 0 || lib_epoll_fd < 0)
		return 1;
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)poll_tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	long nr = strtol(buf, NULL, 10);
	/* epoll_wait, epoll_pwait, epoll_pwait2 */
	if (!(buf[0] >= '0' && buf[0] <= '9') || (nr != 232 && nr != 281 && nr != 441))
		return 0;
	struct pollfd p = { lib_epoll_fd, POLLIN, 0 };
	return poll(&p, 1, 0) == 0;
}

static uint64_t
queue_fingerprint(int *inflight) {
	uint64_t h = 1469598103934665603ull;
	int fds[512];
	int n = library_sockets(fds, 512);
	if (n > 512)
		n = 512;
	for (int p = 0; p < NPEER; p++)
		if (P[p].fd >= 0 && n < 512)
			fds[n++] = P[p].fd;
	for (int i = 0; i < n; i++) {
		int in = 0, outq = 0, nsd = 0;
		ioctl(fds[i], SIOCINQ, &in);
		/* unsent bytes behind unacknowledged ones: Nagle or the congestion window holds them
		   until an ACK comes (a delayed one can take 40 ms); with nothing unacknowledged,
		   unsent bytes wait for the peer to read */
		if (ioctl(fds[i], SIOCOUTQ, &outq) == 0 && ioctl(fds[i], SIOCOUTQNSD, &nsd) == 0 &&
			nsd > 0 && outq > nsd)
			*inflight = 1;
		h = (h ^ (uint64_t)(unsigned)in) * 1099511628211ull;
		h = (h ^ (uint64_t)(unsigned)outq) * 1099511628211ull;
	}
	return h;
}

static long
results_seen(void) {
	pthread_mutex_lock(&F.mu);
	long r = F.results;
	pthread_mutex_unlock(&F.mu);
	return r;
}

static void
sleep_ms(int ms) {
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Waits until nothing moves: the poll thread idle with nothing ready, no new result, and every
   TCP queue of the library's and the peers' sockets unchanged, with nothing in flight, for
   several consecutive looks. */
static void
settle(void) {
	int64_t end = now_ms() + tmo(SETTLE_MAX_MS);
	long last = -1;
	uint64_t last_fp = 0;
	int stable = 0, idle_seen = 0;
	for (;;) {
		sleep_ms(1);
		int inflight = 0;
		uint64_t fp = queue_fingerprint(&inflight);
		long r = results_seen();
		int idle = poll_idle();
		if (idle && !inflight && r == last && fp == last_fp)
			stable++;
		else
			stable = 0;
		if (stable >= 6) {
			if (getenv("DIFFTEST_TIMING"))
				fprintf(stderr, "difftest: settle %lld ms (idle %d)\n",
					(long long)(now_ms() - end + tmo(SETTLE_MAX_MS)), idle_seen);
			return;
		}
		idle_seen += !idle;
		last = r;
		last_fp = fp;
		if (now_ms() > end) {
			settle_timeouts++;
			fprintf(stderr, "difftest: a step did not settle within %d ms\n", SETTLE_MAX_MS);
			return;
		}
	}
}

/* ================================================================ results */

struct rec {
	int type, id, ud;
	uintptr_t opaque;
	char *data; /* OPEN/ERR/ACCEPT text, or DATA/UDP bytes */
	int seq;
};

/* Invariant state per raw id (ids stay below a few hundred; never-issued ones are folded). */
#define ID_SLOTS 4096
static unsigned char inv_closes[ID_SLOTS];
static unsigned char inv_own_close[ID_SLOTS]; /* close/shutdown issued */
static unsigned char inv_done[ID_SLOTS];      /* CLOSE seen after our close/shutdown */

static int
id_slot(int id) {
	/* issued ids stay small; the made-up ones get slots of their own */
	if (id >= 0 && id < 2048)
		return id;
	if (id >= NEVER_ISSUED - 1 && id < NEVER_ISSUED + NSOCK)
		return 2048 + id - NEVER_ISSUED + 1;
	if (id >= 65536 && id < 65536 + 1024)
		return 3072 + id - 65536;
	return ID_SLOTS - 1;
}

/* Facts about the runner's own calls that known_differences.txt rules refer to. */
static unsigned char udp_dialed[ID_SLOTS]; /* udp_dial created it, or udp_connect was called */
static unsigned char udp_socket[ID_SLOTS]; /* created by udp/udp_listen/udp_dial */
static unsigned char udp_dest[ID_SLOTS];   /* given a destination of its own family */
static unsigned char udp_fam[ID_SLOTS];    /* 4 or 6, as created */
static unsigned char bound_not_ip[ID_SLOTS]; /* bind of a pipe or socketpair end */
static unsigned char failure_errs[ID_SLOTS]; /* ERRs with an errno text reported so far */

static void
note_own_close(int id) {
	inv_own_close[id_slot(id)] = 1;
}

static void
check_invariants(const struct rec *r) {
	if (r->type == SOCKET_EXIT)
		return;
	int s = id_slot(r->id);
	/* a call on the stale id is answered with ERR "invalid socket": a reply, not an event */
	int reply = r->type == SOCKET_ERR && r->data && strcmp(r->data, "invalid socket") == 0;
	if (inv_done[s] && !reply)
		violation("%s for id %d after the CLOSE of its own close", type_name(r->type), r->id);
	if (r->type == SOCKET_CLOSE) {
		if (++inv_closes[s] > 1)
			violation("second CLOSE for id %d", r->id);
		if (inv_own_close[s])
			inv_done[s] = 1;
	}
}

static int
rec_cmp(const void *a, const void *b) {
	const struct rec *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq - y->seq;
}

/* A WARNING's size as the threshold it crossed: the exact KB depend on how much the kernel took
   meanwhile. */
static int
warning_level(int ud) {
	if (ud <= 0)
		return ud;
	int level = 1024;
	while (level * 2 <= ud)
		level *= 2;
	return level;
}

static void
print_udp_address(const struct rec *r) {
	struct socket_message m = { r->id, r->opaque, r->ud, r->data };
	int sz = -12345;
	const struct socket_udp_address *a = socket_server_udp_address(F.ss, &m, &sz);
	if (a == NULL) {
		out(" from=NULL sz=%d", sz);
		return;
	}
	const unsigned char *b = (const unsigned char *)a;
	uint16_t port;
	memcpy(&port, b + 1, 2);
	char ip[64] = "?";
	if (b[0] == 1)
		inet_ntop(AF_INET, b + 3, ip, sizeof(ip));
	else if (b[0] == 2)
		inet_ntop(AF_INET6, b + 3, ip, sizeof(ip));
	out(" from=%d/%s/p%d sz=%d", b[0], ip, port_name(ntohs(port)), sz);
}

static void
handle_accept(const struct rec *r) {
	const char *c = r->data ? strrchr(r->data, ':') : NULL;
	int port = c ? atoi(c + 1) : -1;
	for (int p = 0; p < NPEER; p++) {
		if (P[p].fd >= 0 && P[p].kind == PEER_TCP && P[p].port == port && P[p].lib_id == 0) {
			P[p].lib_id = r->ud;
			if (P[p].handle >= 0)
				S[P[p].handle] = (struct sock){ .id = r->ud };
			return;
		}
	}
	/* not a peer's: a connect of the library to its own listener, in the order issued */
	for (int i = 0; i < waiting_n; i++) {
		if (listener_waiting[i][0] == r->id) {
			int h = listener_waiting[i][1];
			if (h >= 0)
				S[h] = (struct sock){ .id = r->ud };
			memmove(listener_waiting[i], listener_waiting[i + 1],
				sizeof(listener_waiting[0]) * (size_t)(waiting_n - i - 1));
			waiting_n--;
			return;
		}
	}
}

static int seq_counter;

/* Takes every queued result, updates the handles, prints them grouped per socket. */
static void
report_results(void) {
	struct rec recs[4096];
	int n = 0;
	for (;;) {
		struct ev *e = take_event(&F, ANY_ID, 0);
		if (e == NULL)
			break;
		if (n < 4096) {
			struct rec *r = &recs[n++];
			r->type = e->type;
			r->id = e->id;
			r->ud = e->ud;
			r->opaque = e->opaque;
			r->seq = seq_counter++;
			r->data = NULL;
			if (e->data) {
				size_t len = strlen(e->data) + 1;
				size_t ud = (size_t)(e->ud > 0 ? e->ud : 0);
				if (e->type == SOCKET_DATA)
					len = ud;
				else if (e->type == SOCKET_UDP) /* payload, then a 7 or 19 byte address */
					len = ud + (e->data[ud] == 1 ? 7 : e->data[ud] == 2 ? 19 : 1);
				r->data = malloc(len);
				memcpy(r->data, e->data, len);
			}
			check_invariants(r);
			if (r->type == SOCKET_ACCEPT)
				handle_accept(r);
			if (r->type == SOCKET_OPEN && r->ud > 0) {
				/* listen: remember the bound port for connects to it */
				for (int h = 0; h < NSOCK; h++)
					if (S[h].id == r->id)
						S[h].port = r->ud;
			}
		}
		ev_release(&F, e);
	}
	qsort(recs, (size_t)n, sizeof(recs[0]), rec_cmp);
	for (int i = 0; i < n; i++) {
		struct rec *r = &recs[i];
		char idb[32], op[32];
		fmt_id(idb, sizeof(idb), r->id);
		fmt_opaque(op, sizeof(op), r->opaque);
		if (r->type == SOCKET_DATA) {
			/* consecutive DATA of one socket: one line (read sizes follow timing) */
			long total = 0;
			uint32_t h = FNV0;
			int j = i;
			for (; j < n && recs[j].id == r->id && recs[j].type == SOCKET_DATA &&
				recs[j].opaque == r->opaque; j++) {
				if (recs[j].ud > 0) {
					total += recs[j].ud;
					h = fnv(h, recs[j].data, (size_t)recs[j].ud);
				}
			}
			out("  %s DATA %s n=%ld sum=%08x\n", idb, op, total, h);
			i = j - 1;
			continue;
		}
		switch (r->type) {
		case SOCKET_UDP:
			out("  %s UDP %s n=%d sum=%08x", idb, op, r->ud,
				r->ud > 0 ? fnv(FNV0, r->data, (size_t)r->ud) : FNV0);
			print_udp_address(r);
			out("\n");
			break;
		case SOCKET_OPEN: {
			char ud[32];
			if (r->ud > 0)
				snprintf(ud, sizeof(ud), "p%d", port_name(r->ud));
			else
				snprintf(ud, sizeof(ud), "%d", r->ud);
			out("  %s OPEN %s ud=%s \"%s\"\n", idb, op, ud, r->data ? r->data : "(null)");
			break;
		}
		case SOCKET_ACCEPT: {
			char nid[32], hp[128];
			fmt_id(nid, sizeof(nid), r->ud);
			fmt_hostport(hp, sizeof(hp), r->data);
			out("  %s ACCEPT %s new=%s %s\n", idb, op, nid, hp);
			break;
		}
		case SOCKET_ERR: {
			/* the fixed texts answer calls; the others report the connection failing */
			static const char *const replies[] = { "invalid socket", "socket closed",
				"reach skynet socket number limit", "enable write failed",
				"disable write failed", "enable read failed", "protocol mismatch" };
			int reply = 0;
			for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
				reply |= r->data && strcmp(r->data, replies[i]) == 0;
			int sl = id_slot(r->id);
			int repeated = !reply && failure_errs[sl]++ > 0;
			out("  %s ERR %s ud=%d \"%s\"%s\n", idb, op, r->ud, r->data ? r->data : "(null)",
				repeated ? " (repeated ERR)" : "");
			break;
		}
		case SOCKET_WARNING:
			out("  %s WARNING %s level=%d%s\n", idb, op, warning_level(r->ud),
				udp_dialed[id_slot(r->id)] ? " (udp dialed)" : "");
			break;
		default:
			out("  %s %s %s ud=%d%s\n", idb, type_name(r->type), op, r->ud,
				r->data ? " data!=NULL" : "");
			break;
		}
	}
	for (int i = 0; i < n; i++)
		free(recs[i].data);
}

/* ================================================================ peers */

static void
peer_print_read(int p, long n, uint32_t h, int eof, int err) {
	if (err == ECONNRESET) {
		/* How much arrived before the reset depends on when it came (a close with unread
		   bytes resets the connection), not on the program. */
		P[p].reset = 1;
		out("  P%d read until reset err=ECONNRESET\n", p);
		return;
	}
	out("  P%d read n=%ld sum=%08x%s%s%s\n", p, n, h, eof ? " eof" : "", err ? " err=" : "",
		err ? strerrorname_np(err) : "");
}

/* Reads up to `want` bytes (0: everything that comes) without blocking: when nothing is
   readable, it waits for the system to settle and stops if still nothing is. */
static void
peer_read_some(int p, long want) {
	struct peer *q = &P[p];
	if (q->fd < 0 || q->kind == PEER_UDP || q->kind == PEER_PIPE_WRITE) {
		if (q->fd >= 0 && q->kind == PEER_PIPE_WRITE) {
			/* reading the write end of a pipe: an error, as any caller would get */
			char c;
			ssize_t r = read(q->fd, &c, 1);
			out("  P%d read -> %zd %s\n", p, r, r < 0 ? strerrorname_np(errno) : "");
		}
		return;
	}
	static unsigned char buf[65536];
	long got = 0;
	uint32_t h = FNV0;
	int eof = 0, err = 0;
	while (want == 0 || got < want) {
		size_t room = sizeof(buf);
		if (want && (size_t)(want - got) < room)
			room = (size_t)(want - got);
		ssize_t r = recv(q->fd, buf, room, MSG_DONTWAIT);
		if (r < 0 && errno == ENOTSOCK)
			r = read(q->fd, buf, room);
		if (r > 0) {
			got += r;
			h = fnv(h, buf, (size_t)r);
			q->sum = fnv(q->sum, buf, (size_t)r);
			q->got += r;
			continue;
		}
		if (r == 0) {
			eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			err = errno;
			break;
		}
		/* drained: once the library has written what the freed window lets it write and
		   everything settled, either more is readable or nothing more will come */
		settle();
		struct pollfd pf = { q->fd, POLLIN, 0 };
		if (poll(&pf, 1, 0) == 1)
			continue;
		/* Bytes the library's end holds unsent while this end is drained: the kernel owes
		   a window update (at worst the zero-window probe brings it), so wait for them. */
		int lib = q->kind == PEER_TCP ? library_fd_of(q->fd) : -1;
		int unsent = 0;
		if (lib < 0 || ioctl(lib, SIOCOUTQNSD, &unsent) != 0 || unsent == 0)
			break;
		if (poll(&pf, 1, tmo(3000)) != 1) {
			fprintf(stderr, "difftest: P%d: %d bytes unsent at the library's end, none came\n",
				p, unsent);
			break;
		}
	}
	if (eof)
		q->eof = 1;
	peer_print_read(p, got, h, eof, err);
}

static void
peer_udp_drain(int p) {
	struct peer *q = &P[p];
	if (q->fd < 0 || q->kind != PEER_UDP)
		return;
	static unsigned char buf[70000];
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		ssize_t r = recvfrom(q->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &len);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			out("  P%d udp recv error %s\n", p, strerrorname_np(errno));
			break;
		}
		int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		out("  P%d udp got n=%zd sum=%08x from p%d\n", p, r, fnv(FNV0, buf, (size_t)r),
			port_name(port));
	}
}

/* ================================================================ steps */

static void
fill(unsigned char *b, size_t n, int step) {
	fill_pattern(b, n, (unsigned)step + 1, 0);
}

static void *raws[MAX_STEPS];

/* Builds a send buffer of kind/size for step k (owned by the library from the call on,
   RAWPOINTER kept by the runner until the end). */
static struct socket_sendbuffer
make_buffer(int id, int kind, long size, int k, char *desc, size_t dn) {
	struct socket_sendbuffer b = { id, 0, NULL, 0 };
	if (kind == BUF_MEMORY) {
		int idx;
		unsigned char *m = mem_alloc((size_t)size, &idx);
		fill(m, (size_t)size, k);
		b.type = SOCKET_BUFFER_MEMORY;
		b.buffer = m;
		b.sz = (size_t)size;
		snprintf(desc, dn, "M%d", idx);
	} else if (kind == BUF_OBJECT) {
		struct dobj *o = calloc(1, sizeof(*o));
		o->bytes = malloc((size_t)size);
		o->sz = (size_t)size;
		o->switches_at_send = soi_switches;
		fill(o->bytes, o->sz, k);
		int idx = obj_n;
		if (obj_n < OBJ_MAX)
			objs[obj_n++] = o;
		b.type = SOCKET_BUFFER_OBJECT;
		b.buffer = o;
		b.sz = 0;
		snprintf(desc, dn, "J%d", idx);
	} else {
		unsigned char *m = malloc((size_t)size);
		fill(m, (size_t)size, k);
		free(raws[k]);
		raws[k] = m;
		b.type = SOCKET_BUFFER_RAWPOINTER;
		b.buffer = m;
		b.sz = (size_t)size;
		snprintf(desc, dn, "raw");
	}
	return b;
}

static void
udp_address_bytes(uint8_t *a, int fam, int port) {
	uint16_t pn = htons((uint16_t)port);
	memset(a, 0, 19);
	if (fam == 6) {
		a[0] = 2;
		memcpy(a + 1, &pn, 2);
		inet_pton(AF_INET6, "::1", a + 3);
	} else {
		a[0] = 1;
		memcpy(a + 1, &pn, 2);
		inet_pton(AF_INET, "127.0.0.1", a + 3);
	}
}

static void
ret_id(int r) {
	if (r > 0) {
		char b[32];
		fmt_id(b, sizeof(b), r);
		out("  -> %s\n", b);
	} else {
		out("  -> %d\n", r);
	}
}

static void
set_handle(int h, int id, int fam) {
	S[h] = (struct sock){ .id = id > 0 ? id : 0, .fam = fam };
}

static int
bad_id(int which) {
	switch (which) {
	case 0: return 0;
	case 1: return -1;
	case 2: return NEVER_ISSUED - 1;
	default: return 65536 + (S[0].id ? S[0].id : 1); /* the slot of a live (or first) socket */
	}
}

static void
run_step(const struct step *s, int k) {
	uintptr_t opq = OPAQUE_BASE + (uintptr_t)s->b;
	char desc[32];
	switch (s->op) {
	case OP_LISTEN: {
		int r = socket_server_listen(F.ss, OPAQUE_BASE, ip_of(s->b), 0, 32);
		ret_id(r);
		set_handle(s->a, r, s->b);
		break;
	}
	case OP_LISTEN_BAD: {
		/* TEST-NET-1: numeric, and no interface has it, so bind fails */
		int r = socket_server_listen(F.ss, OPAQUE_BASE, "192.0.2.1", 0, 32);
		ret_id(r);
		set_handle(s->a, r, 4);
		break;
	}
	case OP_CONNECT: {
		int port, lfd = -1;
		if (s->c == 0) {
			lfd = peer_listen(ip_of(s->b), &port, SMALL_BUF);
			own(lfd);
		} else if (s->c == 1 && S[s->d].port > 0) {
			port = S[s->d].port;
		} else {
			port = closed_port(s->b, SOCK_STREAM);
		}
		int r = socket_server_connect(F.ss, OPAQUE_BASE, ip_of(s->b), port);
		ret_id(r);
		set_handle(s->a, r, s->b);
		if (s->c == 1 && r > 0 && S[s->d].port > 0 && waiting_n < 1024) {
			listener_waiting[waiting_n][0] = S[s->d].id;
			listener_waiting[waiting_n][1] = s->e;
			waiting_n++;
		}
		if (lfd >= 0) {
			settle();
			int pfd = peer_accept(lfd, r > 0 ? tmo(2000) : 0);
			close(lfd);
			peer_drop(s->d);
			if (pfd >= 0) {
				own(pfd);
				P[s->d].fd = pfd;
				P[s->d].kind = PEER_TCP;
				P[s->d].fam = s->b;
				P[s->d].port = sock_port(pfd);
				P[s->d].lib_id = r;
				P[s->d].sum = FNV0;
			}
			out("  P%d %s\n", s->d, pfd >= 0 ? "accepted" : "accepted nothing");
		}
		break;
	}
	case OP_BIND: {
		int fds[2];
		int ok = s->b == 0 ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
				   : pipe2(fds, O_CLOEXEC);
		if (ok != 0) {
			out("  (no descriptors)\n");
			break;
		}
		/* library end, runner end */
		int lib = s->b == 2 ? fds[1] : fds[0];
		int mine = s->b == 2 ? fds[0] : fds[1];
		if (s->b == 0 && SMALL_BUF > 0) {
			int b = SMALL_BUF;
			setsockopt(lib, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
			setsockopt(mine, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
		}
		/* the runner never blocks on its end (a read of an empty pipe would hang) */
		fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) | O_NONBLOCK);
		own(mine);
		if (bound_n < 64)
			bounds[bound_n++] = (struct bound){ lib, fd_ino(lib), k };
		peer_drop(s->c);
		P[s->c].fd = mine;
		P[s->c].kind = s->b == 0 ? PEER_SOCKETPAIR : s->b == 1 ? PEER_PIPE_WRITE : PEER_PIPE_READ;
		P[s->c].sum = FNV0;
		int r = socket_server_bind(F.ss, OPAQUE_BASE, lib);
		ret_id(r);
		if (r > 0)
			bound_not_ip[id_slot(r)] = 1;
		set_handle(s->a, r, 0);
		break;
	}
	case OP_START:
		socket_server_start(F.ss, opq, sid(s->a));
		break;
	case OP_PAUSE:
		socket_server_pause(F.ss, opq, sid(s->a));
		break;
	case OP_CLOSE:
	case OP_SHUTDOWN:
		note_own_close(sid(s->a));
		if (s->op == OP_CLOSE)
			socket_server_close(F.ss, opq, sid(s->a));
		else
			socket_server_shutdown(F.ss, opq, sid(s->a));
		S[s->a].closed = 1;
		break;
	case OP_NODELAY:
		socket_server_nodelay(F.ss, sid(s->a));
		break;
	case OP_SEND: {
		struct socket_sendbuffer b = make_buffer(sid(s->a), s->c, s->size, k, desc, sizeof(desc));
		int sl = id_slot(sid(s->a));
		int r = s->b ? socket_server_send_lowpriority(F.ss, &b) : socket_server_send(F.ss, &b);
		out("  %s -> %d%s\n", desc, r,
			udp_socket[sl] && !udp_dest[sl] ? " (unusable udp destination)" : "");
		break;
	}
	case OP_UDP:
	case OP_UDP_LISTEN: {
		int port = s->c ? closed_port(s->b, SOCK_DGRAM) : 0;
		const char *host = s->op == OP_UDP && !s->c ? NULL : ip_of(s->b);
		int r = s->op == OP_UDP ? socket_server_udp(F.ss, OPAQUE_BASE, host, port)
					: socket_server_udp_listen(F.ss, OPAQUE_BASE, host, port);
		ret_id(r);
		if (r > 0) {
			udp_socket[id_slot(r)] = 1;
			udp_fam[id_slot(r)] = (unsigned char)(host ? s->b : 4);
		}
		set_handle(s->a, r, host ? s->b : 4);
		S[s->a].port = port;
		if (port)
			out("  bound p%d\n", port_name(port));
		break;
	}
	case OP_UDP_DIAL: {
		int port = P[s->c].kind == PEER_UDP ? P[s->c].port : closed_port(s->b, SOCK_DGRAM);
		int r = socket_server_udp_dial(F.ss, OPAQUE_BASE, ip_of(s->b), port);
		ret_id(r);
		if (r > 0) {
			udp_socket[id_slot(r)] = udp_dialed[id_slot(r)] = udp_dest[id_slot(r)] = 1;
			udp_fam[id_slot(r)] = (unsigned char)s->b;
		}
		set_handle(s->a, r, s->b);
		break;
	}
	case OP_UDP_CONNECT: {
		int port = P[s->c].kind == PEER_UDP ? P[s->c].port : closed_port(s->b, SOCK_DGRAM);
		int r = socket_server_udp_connect(F.ss, sid(s->a), ip_of(s->b), port);
		out("  -> %d\n", r);
		udp_dialed[id_slot(sid(s->a))] = 1;
		if (r == 0 && udp_fam[id_slot(sid(s->a))] == s->b)
			udp_dest[id_slot(sid(s->a))] = 1;
		break;
	}
	case OP_UDP_SEND: {
		int sl = id_slot(sid(s->a));
		if (!udp_socket[sl] && S[s->a].id > 0) {
			/* a stream socket: see known_differences.txt [udp-send-to-a-stream-socket] */
			out("  not sent: udp_send to a stream socket\n");
			break;
		}
		uint8_t addr[19];
		int fam = P[s->c].kind == PEER_UDP ? P[s->c].fam : 4;
		int port = P[s->c].kind == PEER_UDP ? P[s->c].port : closed_port(fam, SOCK_DGRAM);
		if (s->b == 1)
			fam = 10 - fam;
		udp_address_bytes(addr, fam, port);
		if (s->b == 2)
			addr[0] = 7;
		struct socket_sendbuffer b = make_buffer(sid(s->a), s->d, s->size, k, desc, sizeof(desc));
		int r = socket_server_udp_send(F.ss, (const struct socket_udp_address *)addr, &b);
		int other_family = s->b != 2 && udp_socket[sl] && fam != udp_fam[sl];
		out("  %s -> %d%s\n", desc, r, other_family ? " (unusable udp destination)" : "");
		break;
	}
	case OP_USEROBJECT:
		if (s->a != soi_current)
			soi_switches++;
		soi_current = s->a;
		socket_server_userobject(F.ss, &soi[s->a]);
		break;
	case OP_INFO: {
		struct socket_info *list = socket_server_info(F.ss);
		struct socket_info *v[1024];
		int n = 0;
		for (struct socket_info *i = list; i && n < 1024; i = i->next)
			v[n++] = i;
		/* by id: the list's order is the implementation's business */
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && v[j - 1]->id > v[j]->id; j--) {
				struct socket_info *t = v[j];
				v[j] = v[j - 1];
				v[j - 1] = t;
			}
		out("  info: %d entries\n", n);
		for (int i = 0; i < n; i++) {
			char idb[32], op[32], name[160];
			fmt_id(idb, sizeof(idb), v[i]->id);
			fmt_opaque(op, sizeof(op), (uintptr_t)v[i]->opaque);
			fmt_hostport(name, sizeof(name), v[i]->name);
			/* written + queued is what was accepted for sending; how it splits depends on
			   how much the kernel took */
			int sl = id_slot(v[i]->id);
			out("  info %s type=%d %s read=%llu written+queued=%lld rtime=%llu wtime=%s"
			    " reading=%d writing=%d%s%s name=%s\n",
				idb, v[i]->type, op, (unsigned long long)v[i]->read,
				(long long)v[i]->write + (long long)v[i]->wbuffer,
				(unsigned long long)v[i]->rtime, v[i]->wtime ? "set" : "0", v[i]->reading,
				v[i]->writing, udp_socket[sl] && !udp_dest[sl] ? " (no udp destination)" : "",
				bound_not_ip[sl] ? " (bound, not IP)" : udp_dialed[sl] ? " (udp dialed)" : "",
				name);
		}
		socket_info_release(list);
		break;
	}
	case OP_BADID: {
		int id = bad_id(s->b);
		switch (s->a) {
		case 0: {
			struct socket_sendbuffer b = make_buffer(id, BUF_MEMORY, 10, k, desc, sizeof(desc));
			out("  %s -> %d\n", desc, socket_server_send(F.ss, &b));
			break;
		}
		case 1: socket_server_close(F.ss, OPAQUE_BASE, id); break;
		case 2: socket_server_shutdown(F.ss, OPAQUE_BASE, id); break;
		case 3: socket_server_start(F.ss, OPAQUE_BASE, id); break;
		case 4: socket_server_pause(F.ss, OPAQUE_BASE, id); break;
		case 5: socket_server_nodelay(F.ss, id); break;
		default: out("  -> %d\n", socket_server_udp_connect(F.ss, id, "127.0.0.1", 9)); break;
		}
		break;
	}
	case OP_PCONNECT: {
		int port = S[s->b].port > 0 && S[s->b].fam == s->c ? S[s->b].port
								    : closed_port(s->c, SOCK_STREAM);
		peer_drop(s->a);
		int fd = peer_connect(ip_of(s->c), port, SMALL_BUF);
		if (fd >= 0) {
			own(fd);
			P[s->a].fd = fd;
			P[s->a].kind = PEER_TCP;
			P[s->a].fam = s->c;
			P[s->a].port = sock_port(fd);
			P[s->a].handle = s->d;
			P[s->a].sum = FNV0;
		}
		out("  connect -> %s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
		break;
	}
	case OP_PWRITE: {
		struct peer *q = &P[s->a];
		if (q->fd < 0 || q->kind == PEER_UDP) {
			out("  (no peer)\n");
			break;
		}
		unsigned char *b = malloc((size_t)s->size);
		fill(b, (size_t)s->size, k);
		long done = 0;
		int err = 0;
		int64_t end = now_ms() + tmo(2000);
		while (done < s->size && now_ms() < end) {
			ssize_t w = q->kind == PEER_PIPE_WRITE || q->kind == PEER_PIPE_READ
				? write(q->fd, b + done, (size_t)(s->size - done))
				: send(q->fd, b + done, (size_t)(s->size - done), MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				done += w;
			} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
				struct pollfd pf = { q->fd, POLLOUT, 0 };
				poll(&pf, 1, 10);
			} else {
				err = w < 0 ? errno : EIO;
				break;
			}
		}
		free(b);
		out("  wrote %ld%s%s\n", done, err ? " err=" : "", err ? strerrorname_np(err) : "");
		break;
	}
	case OP_PREAD:
		peer_read_some(s->a, s->size);
		break;
	case OP_PSHUT: {
		struct peer *q = &P[s->a];
		if (q->fd < 0)
			break;
		if (q->kind == PEER_TCP || q->kind == PEER_SOCKETPAIR)
			shutdown(q->fd, SHUT_WR);
		else if (q->kind == PEER_PIPE_WRITE)
			peer_drop(s->a); /* a pipe half-closes by closing its write end */
		break;
	}
	case OP_PRST:
		if (P[s->a].fd >= 0 && P[s->a].kind == PEER_TCP) {
			struct linger l = { 1, 0 };
			setsockopt(P[s->a].fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		peer_drop(s->a);
		break;
	case OP_PCLOSE:
		peer_drop(s->a);
		break;
	case OP_PUDP: {
		peer_drop(s->a);
		int port;
		int fd = udp_peer(ip_of(s->b), &port);
		if (fd >= 0) {
			own(fd);
			P[s->a].fd = fd;
			P[s->a].kind = PEER_UDP;
			P[s->a].fam = s->b;
			P[s->a].port = port;
			out("  bound p%d\n", port_name(port));
		}
		break;
	}
	case OP_PUDPSEND: {
		struct peer *q = &P[s->a];
		if (q->fd < 0 || q->kind != PEER_UDP) {
			out("  (no peer)\n");
			break;
		}
		int port = S[s->b].port > 0 ? S[s->b].port : closed_port(q->fam, SOCK_DGRAM);
		unsigned char *b = malloc((size_t)s->size);
		fill(b, (size_t)s->size, k);
		int r = udp_peer_sendto(q->fd, ip_of(q->fam), port, b, (size_t)s->size);
		free(b);
		out("  sent %d\n", r);
		break;
	}
	default:
		break;
	}
}

/* ================================================================ the program */

static int
parse_steps(const char *spec, unsigned char *on, int n) {
	memset(on, 0, (size_t)n);
	const char *c = spec;
	while (*c) {
		char *e;
		long a = strtol(c, &e, 10);
		if (e == c)
			return -1;
		long b = a;
		if (*e == '-') {
			c = e + 1;
			b = strtol(c, &e, 10);
			if (e == c)
				return -1;
		}
		for (long i = a; i <= b; i++)
			if (i >= 0 && i < n)
				on[i] = 1;
		c = e;
		if (*c == ',')
			c++;
		else if (*c)
			return -1;
	}
	return 0;
}

static void
final_report(void) {
	out("end:\n");
	for (int p = 0; p < NPEER; p++)
		if (P[p].fd >= 0)
			peer_read_some(p, 0);
	settle();
	report_results();
	for (int p = 0; p < NPEER; p++) {
		peer_udp_drain(p);
		if (P[p].fd < 0 || P[p].kind == PEER_UDP)
			continue;
		if (P[p].reset)
			out("  P%d total: reset\n", p);
		else
			out("  P%d total n=%ld sum=%08x%s\n", p, P[p].got, P[p].sum, P[p].eof ? " eof" : "");
	}
	out("  library sockets open: %d\n", library_sockets(NULL, 0));
	for (int i = 0; i < bound_n; i++)
		out("  bound fd of step %d: %s\n", bounds[i].step, bound_open(&bounds[i]) ? "open" : "closed");
}

static void
usage(void) {
	fprintf(stderr, "usage: runner --seed N [--steps 0,3,5-9] [--print] [--check] [--nsteps K]\n");
	exit(2);
}

int
main(int argc, char **argv) {
	unsigned long seed = 0;
	int have_seed = 0, print_only = 0, nsteps = 0;
	const char *steps = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoul(argv[++i], NULL, 10);
			have_seed = 1;
		} else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
			steps = argv[++i];
		} else if (strcmp(argv[i], "--nsteps") == 0 && i + 1 < argc) {
			nsteps = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--print") == 0) {
			print_only = 1;
		} else if (strcmp(argv[i], "--check") == 0) {
			check_mode = 1;
		} else {
			usage();
		}
	}
	if (!have_seed)
		usage();
	static struct program prog;
	generate(&prog, seed, nsteps);
	static unsigned char on[MAX_STEPS];
	if (steps) {
		if (parse_steps(steps, on, prog.n) != 0)
			usage();
	} else {
		memset(on, 1, sizeof(on));
	}
	if (print_only) {
		for (int k = 0; k < prog.n; k++) {
			if (!on[k])
				continue;
			char b[256];
			print_step(b, sizeof(b), &prog.s[k]);
			printf("%d: %s\n", k, b);
		}
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* skynet ignores SIGPIPE (skynet_start.c); upstream writes without MSG_NOSIGNAL */
	signal(SIGPIPE, SIG_IGN);
	alarm(240);
	for (int p = 0; p < NPEER; p++)
		peer_drop(p);

	int base_fds = count_fds();
	fixture_init(&F);
	socket_server_userobject(F.ss, &soi[0]);
	lib_epoll_fd = find_epoll_fd();
	for (int i = 0; i < 100 && (poll_tid = find_poll_tid()) <= 0; i++)
		sleep_ms(1);
	if (lib_epoll_fd < 0 || poll_tid <= 0)
		fprintf(stderr, "difftest: cannot watch the poll thread (epoll fd %d, tid %d)\n",
			lib_epoll_fd, (int)poll_tid);
	out("seed %lu\n", seed);
	for (int k = 0; k < prog.n; k++) {
		if (!on[k])
			continue;
		char b[256];
		print_step(b, sizeof(b), &prog.s[k]);
		out("%d: %s\n", k, b);
		int64_t t0 = now_ms();
		shrink_library_buffers();
		run_step(&prog.s[k], k);
		settle();
		report_results();
		if (getenv("DIFFTEST_TIMING"))
			fprintf(stderr, "difftest: step %d: %lld ms\n", k, (long long)(now_ms() - t0));
		for (int p = 0; p < NPEER; p++)
			peer_udp_drain(p);
	}
	final_report();

	/* release: every buffer back, every library descriptor closed */
	socket_server_exit(F.ss);
	pthread_join(F.thread, NULL);
	F.polling = 0;
	{
		struct ev *e;
		while ((e = take_event(&F, ANY_ID, 0)) != NULL) {
			if (e->type != SOCKET_EXIT) {
				struct rec r = { e->type, e->id, e->ud, e->opaque, NULL, 0 };
				check_invariants(&r);
				out("  after exit: %s id #%d\n", type_name(e->type), id_name(e->id));
			}
			ev_release(&F, e);
		}
	}
	fixture_finish(&F);
	out("released:\n");
	int mem_bad = 0;
	for (int i = 0; i < mem_n; i++) {
		if (mem_frees[i] != 1) {
			mem_bad++;
			out("  M%d freed %d times\n", i, mem_frees[i]);
			violation("MEMORY buffer M%d freed %d times", i, mem_frees[i]);
		}
	}
	out("  MEMORY buffers: %d, freed once: %d\n", mem_n, mem_n - mem_bad);
	int obj_bad = 0;
	for (int i = 0; i < obj_n; i++) {
		int a = atomic_load(&objs[i]->frees[0]), b = atomic_load(&objs[i]->frees[1]);
		if (a + b != 1) {
			obj_bad++;
			violation("OBJECT J%d freed %d times", i, a + b);
		}
		/* which interface freed it shows when the free function is taken */
		out("  J%d freed by A %d B %d%s\n", i, a, b,
			soi_switches > objs[i]->switches_at_send ? " (interface switched after its send)" : "");
	}
	out("  OBJECT buffers: %d, freed once: %d\n", obj_n, obj_n - obj_bad);
	int lib_left = library_sockets(NULL, 0);
	out("  library sockets open: %d\n", lib_left);
	if (lib_left != 0)
		violation("%d library sockets open after release", lib_left);
	for (int i = 0; i < bound_n; i++) {
		int open = bound_open(&bounds[i]);
		out("  bound fd of step %d: %s\n", bounds[i].step, open ? "open" : "closed");
		if (open)
			close(bounds[i].fd);
	}
	for (int p = 0; p < NPEER; p++)
		peer_drop(p);
	for (int i = 0; i < parked_n; i++)
		close(parked[i]);
	int left = count_fds() - base_fds;
	out("  descriptors vs baseline: %+d\n", left);
	if (left != 0)
		violation("%d descriptors more than the baseline after release", left);
	out("settle timeouts: %d\n", settle_timeouts);
	for (int i = 0; i < MAX_STEPS; i++)
		free(raws[i]);
	for (int i = 0; i < obj_n; i++) {
		free(objs[i]->bytes);
		free(objs[i]);
	}
	if (check_mode && (violations || settle_timeouts)) {
		fprintf(stderr, "difftest: seed %lu: %d invariant violations, %d settle timeouts\n", seed,
			violations, settle_timeouts);
		return 1;
	}
	return 0;
}
