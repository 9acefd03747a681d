/*
 * Test harness for the socket_server C ABI.
 *
 * The library is driven the way skynet drives it: one thread calls socket_server_poll in a
 * loop (started by fixture_init) and queues every result; tests issue commands from the main
 * thread and from worker threads, and wait for results with deadlines, never with sleeps.
 *
 * Every test runs in a forked child (TEST_NOFORK=1 runs them in-process), so a crash, a hang
 * (alarm) or a valgrind error fails one test, not the whole binary, and rlimit changes stay
 * local. TEST_FILTER=substr runs only the matching tests. TEST_TIMEOUT_SCALE multiplies every
 * deadline (use it under valgrind).
 */
#ifndef SOCKET_SERVER_TEST_HARNESS_H
#define SOCKET_SERVER_TEST_HARNESS_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "socket_server.h"

/* ---------------------------------------------------------------- checks and the runner */

void check_at(const char *file, int line, int ok, const char *what);
void check_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records a failure with file:line and carries on. Evaluates to the condition. */
#define CHECK(cond) ({ int check_ok_ = !!(cond); check_at(__FILE__, __LINE__, check_ok_, #cond); check_ok_; })
#define CHECK_INT(a, b) check_int_at(__FILE__, __LINE__, #a, (long long)(a), (long long)(b))
#define CHECK_STR(a, b) check_str_at(__FILE__, __LINE__, #a, (a), (b))
int check_int_at(const char *file, int line, const char *what, long long got, long long want);
int check_str_at(const char *file, int line, const char *what, const char *got, const char *want);

struct test {
	const char *name;
	void (*fn)(void);
};
#define TEST(fn) { #fn, fn }

/* Runs the tests, prints "N passed, N failed", returns the process exit status. */
int run_tests(const struct test *tests, size_t n);

/* True when the current test already recorded a failure. */
int test_failed(void);

/* ---------------------------------------------------------------- time */

/* A base deadline in ms scaled by TEST_TIMEOUT_SCALE. */
int tmo(int ms);
/* A "nothing happens within" window: scaled more gently (it costs wall time). */
int quiet(int ms);
/* Default deadline for a result that should come promptly. */
#define T_EVENT tmo(3000)
int64_t now_ms(void);
double timeout_scale(void);
/* What the tests run under, from TEST_UNDER ("valgrind", "qemu"), or NULL when they run
   directly: some checks depend on the real kernel's resource limits. */
const char *test_runner_wrapper(void);

/* ---------------------------------------------------------------- skynet_error capture */

/* Number of recorded log lines containing `needle`. */
int log_count(const char *needle);
/* Waits until a log line containing `needle` is recorded; returns 1 if it was. */
int log_wait(const char *needle, int timeout_ms);
void log_clear(void);

/* ---------------------------------------------------------------- OBJECT buffers */

struct tobj {
	const char *bytes;
	size_t sz;
	atomic_int frees;
};
extern struct socket_object_interface test_soi;
void tobj_init(struct tobj *o, const char *bytes, size_t sz);
/* Waits (with a deadline) until o->frees reaches want; returns the final count. */
int tobj_wait_frees(struct tobj *o, int want, int timeout_ms);

/* ---------------------------------------------------------------- the fixture */

#define ANY_ID INT_MIN
#define ANY_UD INT_MIN
#define ANY_OPAQUE UINTPTR_MAX
#define ANY_DATA ((const char *)-1)

struct ev {
	struct ev *next;
	int type;
	int id;
	uintptr_t opaque;
	int ud;
	/* OPEN/ERR/ACCEPT: a copy of the string (NULL if the library gave NULL).
	   DATA/UDP: the library's malloc'ed buffer, freed by the harness. */
	char *data;
	int more;
};

struct fixture {
	struct socket_server *ss;
	pthread_t thread;
	int polling;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ev *head, *tail; /* results not consumed yet */
	struct ev *used;        /* consumed results, freed by fixture_finish */
	int exited;             /* the poll thread got SOCKET_EXIT */
	int hold, held;         /* park the poll thread outside socket_server_poll */
	long results;           /* results seen so far */
};

/* Creates a server, registers test_soi and starts the poll thread. */
void fixture_init(struct fixture *f);
/* Creates the server without a poll thread (commands queue up); see fixture_start_poll. */
void fixture_init_nopoll(struct fixture *f);
void fixture_start_poll(struct fixture *f);
/* socket_server_exit (unless EXIT was already seen), join, free every result, release. */
void fixture_finish(struct fixture *f);

/* Returns once every command this thread issued before has been processed by the poll thread
   (a listen, its OPEN, a close and its CLOSE make the round trip). */
void fixture_sync(struct fixture *f);

/* Parks the poll thread outside socket_server_poll once it returns its next result. To make it
   return, `start(owner, id)` is issued on the connected socket `id` (an OPEN "transfer"
   result, consumed here). Returns 1 when the thread is parked. */
int fixture_hold(struct fixture *f, uintptr_t owner, int id);
void fixture_release_hold(struct fixture *f);

/* Removes and returns the first queued result with this id (ANY_ID: any), waiting up to
   timeout_ms. The fixture keeps ownership (freed by fixture_finish). NULL on timeout. */
struct ev *take_event(struct fixture *f, int id, int timeout_ms);
/* Same, but only a result of this type; others stay queued. */
struct ev *take_event_type(struct fixture *f, int id, int type, int timeout_ms);
/* Frees a result now (optional; useful in loops with many DATA results). */
void ev_release(struct fixture *f, struct ev *e);
/* Rebuilds the socket_message of a result (for socket_server_udp_address). */
struct socket_message ev_msg(const struct ev *e);
const char *type_name(int type);

/* Takes the next result of `id` and checks every field. opaque ANY_OPAQUE, ud ANY_UD and
   data ANY_DATA skip a field; data NULL means the result's data must be NULL; for DATA/UDP the
   payload must equal the string (and ud its length unless ANY_UD). Returns the result (NULL on
   timeout). */
struct ev *expect_event_at(const char *file, int line, struct fixture *f, int type, int id,
	uintptr_t opaque, int ud, const char *data, int timeout_ms);
#define EXPECT(f, type, id, opaque, ud, data) \
	expect_event_at(__FILE__, __LINE__, (f), (type), (id), (opaque), (ud), (data), T_EVENT)
/* The checks of expect_event_at on a result already taken (e may be NULL: a timeout). */
struct ev *check_event_at(const char *file, int line, struct ev *e, int type, int id,
	uintptr_t opaque, int ud, const char *data);
/* take_event, discarding results of type skip_type (e.g. SOCKET_WARNING) on the way. */
struct ev *take_event_skipping(struct fixture *f, int id, int skip_type, int timeout_ms);
/* EXPECT, skipping WARNING results of that id first (bulk sends queue data and warn). */
#define EXPECT_AFTER_WARNINGS(f, type, id, opaque, ud, data) \
	check_event_at(__FILE__, __LINE__, take_event_skipping((f), (id), SOCKET_WARNING, tmo(10000)), \
		(type), (id), (opaque), (ud), (data))

/* Fails if any result for `id` (ANY_ID: any) arrives within ms. Returns 1 when none did. */
int expect_no_event_at(const char *file, int line, struct fixture *f, int id, int ms);
#define EXPECT_NO_EVENT(f, id, ms) expect_no_event_at(__FILE__, __LINE__, (f), (id), (ms))

/* Counts results of `id` arriving within ms, by type (counts[type], type < 8). Consumes them. */
void drain_events(struct fixture *f, int id, int ms, int counts[8]);

/* ---------------------------------------------------------------- byte buffers */

struct bytes {
	unsigned char *p;
	size_t n, cap;
};
void bytes_append(struct bytes *b, const void *p, size_t n);
void bytes_free(struct bytes *b);
/* Deterministic content for offset `off` of stream `seed`. */
static inline unsigned char
pattern_byte(unsigned seed, size_t off) {
	uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u;
	return (unsigned char)(x >> 24);
}
void fill_pattern(unsigned char *p, size_t n, unsigned seed, size_t off0);
/* Index of the first byte of b[off0..] that differs from the pattern, or (size_t)-1. */
size_t check_pattern(const unsigned char *p, size_t n, unsigned seed, size_t off0);

/* Moves DATA results of `id` into `out` until it holds `want` bytes or the deadline passes;
   stops early (leaving it queued) at a non-DATA result of `id`. Returns out->n. If sizes is
   not NULL, every DATA ud is appended to it (ints). */
size_t collect_data(struct fixture *f, int id, struct bytes *out, size_t want, int timeout_ms,
	struct bytes *sizes);

/* ---------------------------------------------------------------- plain peer sockets */

/* A listening TCP socket on ip:0 (rcvbuf > 0 sets SO_RCVBUF before listen). Sets *port. */
int peer_listen(const char *ip, int *port, int rcvbuf);
/* A blocking TCP connect to ip:port (rcvbuf as above). Returns the fd or -1. */
int peer_connect(const char *ip, int port, int rcvbuf);
/* accept with a deadline; returns the fd or -1. */
int peer_accept(int lfd, int timeout_ms);
/* Reads until `want` bytes are in `out`, EOF, an error or the deadline. Returns:
   1 at EOF or a reset (errno-like code in *err, 0 for EOF), 0 otherwise. */
int peer_read(int fd, struct bytes *out, size_t want, int timeout_ms, int *err);
/* Reads until EOF/reset or the deadline; returns 1 when EOF/reset was seen. */
int peer_read_to_eof(int fd, struct bytes *out, int timeout_ms, int *err);
/* Returns 1 if nothing can be read from fd within ms (no data, no EOF). */
int peer_silent(int fd, int ms);
void peer_write_all(int fd, const void *p, size_t n);
/* close() with SO_LINGER {1, 0}: the kernel sends RST. */
void peer_rst_close(int fd);
/* A local port of a TCP socket. */
int sock_port(int fd);
/* A bound UDP socket on ip:0; sets *port. */
int udp_peer(const char *ip, int *port);
/* recvfrom with a deadline into buf; returns length or -1; fills *from_port if not NULL. */
int udp_peer_recv(int fd, void *buf, size_t cap, int timeout_ms, int *from_port);
int udp_peer_sendto(int fd, const char *ip, int port, const void *p, size_t n);
/* A TCP port on which nothing listens (a bound, non-listening socket is kept in *holder). */
int refused_port(const char *ip, int *holder);

/* ---------------------------------------------------------------- library-side helpers */

int send_mem(struct socket_server *ss, int id, const void *p, size_t n);
int send_mem_low(struct socket_server *ss, int id, const void *p, size_t n);
int send_raw(struct socket_server *ss, int id, const void *p, size_t n);
int send_raw_low(struct socket_server *ss, int id, const void *p, size_t n);
int send_obj(struct socket_server *ss, int id, struct tobj *o);
int send_obj_low(struct socket_server *ss, int id, struct tobj *o);
int send_str(struct socket_server *ss, int id, const char *s);
/* Sends `total` pattern bytes (seed, stream offset *off) as MEMORY chunks of `chunk`; returns
   the number of sends that did not return 0. */
int send_pattern(struct socket_server *ss, int id, size_t total, size_t chunk, unsigned seed,
	size_t *off);

/* The descriptor (in this process) of the library's end of the TCP connection `peer`. */
int library_fd_of(int peer);
/* The library connects to a plain peer listener: expects OPEN with data ip and the given owner,
   accepts on the peer side. Returns the id (-1 on failure), sets *peer. rcvbuf > 0 makes the
   connection easy to congest: SO_RCVBUF on the peer and SO_SNDBUF on the library's end. */
int connected_pair(struct fixture *f, uintptr_t owner, const char *ip, int rcvbuf, int *peer);
/* The library listens (owner lowner) and starts; a plain peer connects; ACCEPT; start(owner).
   Returns the accepted id (started), sets *lid and *peer. */
int accepted_pair(struct fixture *f, uintptr_t lowner, uintptr_t owner, int *lid, int *peer);

/* socket_server_info snapshot lookup: copies the entry of `id` into *out; 1 if listed. */
int info_find(struct socket_server *ss, int id, struct socket_info *out);
/* Waits until `id` is listed (or, with listed == 0, no longer listed). */
int info_wait(struct socket_server *ss, int id, int listed, int timeout_ms);

/* ---------------------------------------------------------------- slot exhaustion */

/* 65536, the library's slot count; TEST_MAX_SOCKETS overrides it (only to validate the tests
   against a build of upstream with a smaller MAX_SOCKET_P, where a 65536-deep command pipe is
   impossible without raising RLIMIT_NOFILE). */
int max_sockets(void);
#define MAX_SOCKETS max_sockets()

/* All 65536 slots filled with socket_server_bind. If RLIMIT_NOFILE can be raised, every bind gets
   its own dup of a pipe end and the poll thread runs (results: OPEN "binding"). Otherwise (no
   CAP_SYS_RESOURCE, valgrind) the poll thread is not started yet and every bind reserves an id
   for the same pipe end (results after fixture_start_poll: one OPEN, then ERR); upstream cannot
   run that way (its 64 KiB command pipe fills up). TEST_SLOTS_NOFD=1 forces the second way. */
struct exhausted {
	int with_fds;
	int first_id, last_id, count;
	int consecutive;
	int pipe[2];
	int *fds;
};
/* Initialises *f (do not call fixture_init) and fills every slot. */
void slots_exhaust(struct fixture *f, struct exhausted *x);
/* Starts polling if needed and consumes the 65536 results; returns how many had the expected
   type (OPEN "binding", or ERR). */
int slots_drain(struct fixture *f, struct exhausted *x);
/* After fixture_finish: closes the descriptors. */
void slots_cleanup(struct exhausted *x);
/* Number of open descriptors of this process. */
int count_open_fds(void);

/* Waits until `pred(arg)` is true; returns 1 if it became true. */
int wait_until(int (*pred)(void *), void *arg, int timeout_ms);

#endif
