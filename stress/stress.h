/*
 * Shared pieces of the skynet-shaped stress harness: the failure path, the seeded PRNG, the
 * byte stream every client connection sends, the two wire framings, and the tracking of
 * buffers handed to the library. See stress/README.md for what the harness checks.
 */
#ifndef STRESS_H
#define STRESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- failure */

/* Prints "stress: FAIL <msg>" (prefixed with the role) and ends the process with status 1
 * (after killing the load process, from the server side). Thread-safe; the first failure wins. */
void stress_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Informational line on stderr, prefixed with the role. */
void stress_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern const char *stress_role;

#define FAIL_IF(cond, ...) do { if (__builtin_expect(!!(cond), 0)) stress_fail(__VA_ARGS__); } while (0)

/* A scratch buffer that grows to the largest size asked of it; one per thread. */
struct scratch {
	uint8_t *p;
	size_t cap;
};
/* At least `n` bytes of `s` (its old contents are not kept). */
uint8_t *scratch_get(struct scratch *s, size_t n);
void scratch_free(struct scratch *s);

int64_t now_ms(void);

/* ---------------------------------------------------------------- PRNG */

static inline uint64_t mix64(uint64_t z) {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng { uint64_t s; };

static inline uint64_t rng_next(struct rng *r) {
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}
/* Uniform in [0, n). */
static inline uint64_t rng_below(struct rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }
/* True with probability pct/100. */
static inline int rng_pct(struct rng *r, unsigned pct) { return rng_below(r, 100) < pct; }
/* Log-uniform in [1, max]: as many tiny sizes as huge ones. */
static inline uint64_t rng_logsize(struct rng *r, uint64_t max) {
	int bits = 64 - __builtin_clzll(max);
	uint64_t v = rng_next(r) & ((1ULL << rng_below(r, (uint64_t)bits + 1)) - 1);
	v = v ? v : 1;
	return v > max ? max : v;
}

/* ---------------------------------------------------------------- the client byte stream */

/* Byte `pos` of connection `seed`'s stream (frame headers are laid over it, see below). */
static inline uint64_t stream_word(uint64_t seed, uint64_t word) { return mix64(seed ^ (word * 0xd1b54a32d192ed03ULL)); }
/* Fills out[0..n) with bytes [pos, pos+n) of the stream. */
void stream_fill(uint64_t seed, uint64_t pos, uint8_t *out, size_t n);
/* Returns the first index where in[0..n) differs from stream bytes [pos, pos+n), or n. */
size_t stream_diff(uint64_t seed, uint64_t pos, const uint8_t *in, size_t n);

/*
 * Client -> server: frames of an 8-byte header (magic, type, 0, 0, payload length LE32) then
 * the payload. DATA frames are echoed; CLOSE asks the service to echo everything and close;
 * SHUTDOWN asks it to shut the socket down at once. The service echoes the raw inbound bytes
 * (headers included), so the client can check the echo against what it sent.
 */
#define CFRAME_MAGIC 0xa5
#define CFRAME_HDR 8
enum { CF_DATA = 1, CF_CLOSE = 2, CF_SHUTDOWN = 3 };

/*
 * Server -> client: echo frames of a 16-byte header (magic 'E' 'C', priority, kind, payload
 * length LE32, offset in the client's stream LE64) then the payload. High and low priority
 * sends may legitimately overtake each other (SPEC 7), so the client checks order per
 * priority and that the union of all frames covers its stream exactly once.
 */
#define EFRAME_HDR 16
#define EFRAME_M0 'E'
#define EFRAME_M1 'C'
enum { EK_ECHO = 0, EK_POISON = 1 };

static inline void put_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ---------------------------------------------------------------- control channel */

/* Parent <-> load process: one text line per message over a socketpair. */
int ctl_send(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads one line (without '\n') into buf; waits at most timeout_ms (-1: forever).
 * Returns length, 0 on timeout, -1 on EOF/error. */
int ctl_recv(int fd, char *buf, size_t cap, int timeout_ms);

/* ---------------------------------------------------------------- tracking (track.c) */

/* MEMORY buffers: every pointer handed to the library is recorded; the interposed free()
 * removes it. Returns a malloc'ed block of sz bytes, already recorded. */
void *track_memory_alloc(size_t sz);
uint64_t track_memory_live(void);
uint64_t track_memory_handed(void);
uint64_t track_memory_freed(void);
void track_init(void);

/* OBJECT buffers: free callback must run exactly once per object. */
struct stress_object;
extern struct socket_object_interface stress_soi;
/* A new object holding a copy of hdr (hn bytes) followed by body (bn bytes). */
struct stress_object *object_new(const void *hdr, size_t hn, const void *body, size_t bn);
uint64_t object_live(void);
uint64_t object_created(void);
uint64_t object_freed(void);
/* Releases the headers of freed objects (kept until now so a second free is caught). */
void object_reap(void);

/* Bytes currently allocated (sanitizer allocator or glibc's arenas), 0 if unknown. */
uint64_t heap_in_use(void);
uint64_t rss_bytes(void);
int count_fds(void);

/* ---------------------------------------------------------------- the kernel's view (tcpview.c) */

/* One end of a loopback TCP connection as /proc/net/tcp shows it. */
struct tcp_end {
	int found;
	unsigned state;       /* TCP_ESTABLISHED = 1, ..., TCP_CLOSE_WAIT = 8 */
	uint32_t txq, rxq;    /* bytes not yet acknowledged by the peer / not yet read */
	unsigned timer;       /* 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe */
	long when;            /* centiseconds until the timer fires */
	unsigned retrans, probes;
	unsigned long inode;  /* 0: no descriptor holds it (orphan) */
};
enum { TCPS_ESTABLISHED = 1, TCPS_TIME_WAIT = 6, TCPS_CLOSE_WAIT = 8 };
#define TCP_COUNTERS 10

/* The socket bound to 127.0.0.1:lport and connected to 127.0.0.1:rport; found = 0 if none. */
void tcp_end_lookup(unsigned lport, unsigned rport, struct tcp_end *out);
const char *tcp_state_name(unsigned st);
void tcp_end_text(const struct tcp_end *e, char *out, size_t cap);
/* Logs both ends (and ss's lines for them, when ss exists). */
void tcp_view_print(unsigned server_port, unsigned client_port);
/* TcpExt counters of segments TCP dropped or ignored by itself, and their growth since `since`. */
/* Logs up to `max` connection ends with local or remote port `port` (not LISTEN or TIME_WAIT). */
void tcp_view_port(unsigned port, int max);
/* Logs each thread of process `pid`: state, CPU ticks, the system call it is in. */
void proc_threads_print(int pid);
void tcp_counters_read(uint64_t out[TCP_COUNTERS]);
void tcp_counters_text(const uint64_t since[TCP_COUNTERS], char *out, size_t cap);

/* ---------------------------------------------------------------- load process (load.c) */

struct load_config {
	uint64_t seed;
	int conns;          /* concurrent connections */
	int threads;
	uint32_t max_frame; /* largest DATA frame payload */
	int max_frames;     /* frames per connection, 1..max_frames */
	double scale;       /* deadline multiplier (valgrind) */
	int hog_pct;        /* connections that read slowly through a small receive buffer */
	int lose_reset_pct; /* resets closed in TCP repair mode: no RST leaves (a lost RST) */
	int verbose;
};
/* Runs in the forked load process: talks to the parent over ctl, returns the exit status. */
int load_main(int ctl, const struct load_config *cfg);

#endif
