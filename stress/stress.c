/*
 * A skynet-shaped stress harness for the socket_server library.
 *
 * The server process is built the way skynet is built around the library: one socket thread
 * calls socket_server_poll in a loop and forwards every result to the mailbox of the service
 * named by its opaque; worker threads run the services, each service handling its mailbox one
 * message at a time and never on two threads at once (skynet's actor model); a timer thread
 * sends ticks and updates the server time; another thread calls socket_server_info in a loop.
 *
 * Services (opaque 1 is the gate, 2.. are echo services) behave as skynet's Lua services do:
 *  - the gate listens; for every ACCEPT it starts the socket for an echo service, at once or on
 *    its next tick (OPEN "start" then reaches that service); a socket that fails before its
 *    start is shut down by the gate;
 *  - an echo service parses the client's frames and echoes the raw bytes back in echo frames
 *    (stress.h), using MEMORY, OBJECT and RAWPOINTER buffers at high and low priority;
 *  - a "slow" service keeps unprocessed input and works it off on ticks; when the input backs
 *    up it pauses the socket and starts it again later (OPEN "transfer"), as socket.lua does;
 *    a WARNING pauses reading too, until the WARNING 0 or for half a second at most;
 *  - services hand sockets to each other (start with the new opaque, expect OPEN "transfer";
 *    the old owner forwards what it still receives until a barrier, so no byte is lost);
 *  - CLOSE/SHUTDOWN frames make the service close/shut down the socket; a peer FIN makes it
 *    echo the rest and close; an ERR makes it call shutdown (socket.lua's behaviour).
 * The socket thread checks every result against what the SPEC allows (CLOSE once, nothing
 * after CLOSE, results carry the current owner, ...). The load process (load.c) checks the
 * bytes. Between rounds the harness waits until every socket is gone and compares memory.
 */
#include "stress.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "socket_server.h"

extern pid_t stress_kill_on_fail;

/* ---------------------------------------------------------------- configuration */

struct config {
	uint64_t seed;
	double seconds;
	int rounds;
	int conns;
	int workers;
	int services;
	int client_threads;
	uint32_t max_frame;
	int max_frames;
	double scale;
	int hog_pct;
	int lose_reset_pct;
	int verbose;
};

static struct config cfg;

static const char *opt(int argc, char **argv, const char *name, const char *env) {
	size_t n = strlen(name);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
	return getenv(env);
}

static void usage(void) {
	fprintf(stderr,
		"usage: stress [--seed=N] [--seconds=S] [--rounds=N] [--conns=N] [--workers=N]\n"
		"              [--services=N] [--client-threads=N] [--max-frame=BYTES] [--max-frames=N]\n"
		"              [--scale=F] [--hogs=PERCENT] [--lose-resets=PERCENT] [--verbose=1]\n"
		"Each option can also come from the environment: STRESS_SEED, STRESS_SECONDS, STRESS_ROUNDS,\n"
		"STRESS_CONNS, STRESS_WORKERS, STRESS_SERVICES, STRESS_CLIENT_THREADS, STRESS_MAX_FRAME,\n"
		"STRESS_MAX_FRAMES, STRESS_SCALE (multiplies every deadline), STRESS_HOGS, STRESS_LOSE_RESETS,\n"
		"STRESS_VERBOSE. --lose-resets checks the stall classification: that share of the client\n"
		"resets leave no RST (TCP repair mode, needs CAP_NET_ADMIN), which must pass as TCP's doing.\n");
	exit(2);
}

static void parse_config(int argc, char **argv) {
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--", 2) != 0 || !strchr(argv[i], '=')) usage();
	const char *v;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	cfg.seed = (v = opt(argc, argv, "--seed", "STRESS_SEED")) ? strtoull(v, NULL, 0)
		: mix64((uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid());
	cfg.seconds = (v = opt(argc, argv, "--seconds", "STRESS_SECONDS")) ? atof(v) : 30;
	cfg.rounds = (v = opt(argc, argv, "--rounds", "STRESS_ROUNDS")) ? atoi(v) : 4;
	cfg.conns = (v = opt(argc, argv, "--conns", "STRESS_CONNS")) ? atoi(v) : 2000;
	cfg.workers = (v = opt(argc, argv, "--workers", "STRESS_WORKERS")) ? atoi(v) : 4;
	cfg.services = (v = opt(argc, argv, "--services", "STRESS_SERVICES")) ? atoi(v) : 16;
	cfg.client_threads = (v = opt(argc, argv, "--client-threads", "STRESS_CLIENT_THREADS")) ? atoi(v) : 2;
	cfg.max_frame = (v = opt(argc, argv, "--max-frame", "STRESS_MAX_FRAME")) ? (uint32_t)atol(v) : 1u << 20;
	cfg.max_frames = (v = opt(argc, argv, "--max-frames", "STRESS_MAX_FRAMES")) ? atoi(v) : 8;
	cfg.scale = (v = opt(argc, argv, "--scale", "STRESS_SCALE")) ? atof(v) : 1;
	cfg.hog_pct = (v = opt(argc, argv, "--hogs", "STRESS_HOGS")) ? atoi(v) : 3;
	cfg.lose_reset_pct = (v = opt(argc, argv, "--lose-resets", "STRESS_LOSE_RESETS")) ? atoi(v) : 0;
	cfg.verbose = (v = opt(argc, argv, "--verbose", "STRESS_VERBOSE")) ? atoi(v) : 0;
	if (cfg.seconds <= 0 || cfg.rounds < 3 || cfg.conns < 1 || cfg.workers < 1 || cfg.services < 2 ||
		cfg.client_threads < 1 || cfg.client_threads > cfg.conns || cfg.max_frame < 1 ||
		cfg.max_frames < 1 || cfg.scale <= 0)
		usage();
}

static int64_t stall_ms(int base) { return (int64_t)(base * cfg.scale); }

/* ---------------------------------------------------------------- statistics */

#define STAT(x) atomic_uint_fast64_t x
static struct {
	STAT(results[8]);
	STAT(accepted);
	STAT(closed);
	STAT(handoffs);
	STAT(handoffs_failed);
	STAT(pauses);
	STAT(resumes);
	STAT(sends[3]);
	STAT(sends_low);
	STAT(send_refused);
	STAT(poison);
	STAT(deferred_starts);
	STAT(gate_shutdowns);
	STAT(info_calls);
	STAT(info_entries);
	STAT(orphans);
	STAT(progress);
	STAT(tcp_lost_resets);        /* server end never saw the client's RST (classified, not ours) */
	STAT(tcp_lost_server_resets); /* client end never saw the server's abortive close */
} stats;
#define INC(x) atomic_fetch_add_explicit(&stats.x, 1, memory_order_relaxed)
#define GET(x) atomic_load(&stats.x)

/* ---------------------------------------------------------------- per-id records (checker) */

/* Written by the socket thread only, except `starts`, which a service bumps before it calls
 * socket_server_start (so the socket thread sees it before the answer). */
struct idrec {
	atomic_int starts;
	atomic_int closes; /* close/shutdown calls, bumped before the call */
	atomic_int err_closes; /* of those, the shutdowns that answer an ERR */
	int answers;
	int owner;
	uint8_t state, nclose, nerr, accepted;
	/* The CLOSE may be the peer's (EOF or hang-up) rather than the answer to our close, so the
	 * socket may live on half-closed until our close is applied: PEER_CLOSE when no close was
	 * asked for; MAYBE_PEER_CLOSE when every close asked for answers an ERR (SPEC 6: after a
	 * read error the socket stays open and a later read of 0 reports CLOSE; the shutdown the
	 * ERR prompted may still be on its way). */
	uint8_t peer_closed;
	uint8_t abandoned; /* shut down by the harness after a classified TCP stall */
	uint8_t nhist;
	uint16_t peer_port;
	int round;
	char hist[8][14]; /* the last results, for diagnostics */
};
enum { ST_NONE, ST_ACCEPTED, ST_STARTED, ST_CLOSED };
enum { OUR_CLOSE, PEER_CLOSE, MAYBE_PEER_CLOSE };
static const char *const st_names[] = { "unknown", "accepted", "started", "closed" };
static const char *hist_text(const struct idrec *rec);

#define IDCHUNK_BITS 16
#define IDCHUNKS 4096
static struct idrec *_Atomic idchunks[IDCHUNKS];
static atomic_int max_id;

static struct idrec *rec_of(int id, int create) {
	if (id <= 0 || (id >> IDCHUNK_BITS) >= IDCHUNKS) stress_fail("socket id %d out of range", id);
	struct idrec *c = atomic_load(&idchunks[id >> IDCHUNK_BITS]);
	if (!c) {
		if (!create) return NULL;
		/* mmap, not malloc: these records must not count as heap growth across rounds. */
		c = mmap(NULL, ((size_t)1 << IDCHUNK_BITS) * sizeof *c, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		FAIL_IF(c == MAP_FAILED, "mmap: %s", strerror(errno));
		atomic_store(&idchunks[id >> IDCHUNK_BITS], c);
	}
	if (create && id > atomic_load(&max_id)) atomic_store(&max_id, id);
	return &c[id & ((1 << IDCHUNK_BITS) - 1)];
}

/* ---------------------------------------------------------------- messages and services */

enum { M_SOCKET, M_TICK, M_HANDOFF, M_FORWARD, M_BARRIER, M_BARRIER_ACK, M_ABANDON };

struct sconn;

struct msg {
	struct msg *next;
	int type;
	int from;
	/* a socket result, strings copied as skynet does (at most 128 bytes) */
	int stype;
	int id;
	int ud;
	uintptr_t opaque;
	char *data;
	char str[129];
	struct sconn *conn;
};

#define BUCKETS 512
struct idnode {
	int id;
	void *val;
	struct idnode *next;
};
struct idmap {
	struct idnode *b[BUCKETS];
	int n;
};

static void *idmap_get(struct idmap *m, int id) {
	for (struct idnode *e = m->b[(unsigned)id % BUCKETS]; e; e = e->next)
		if (e->id == id) return e->val;
	return NULL;
}

static void idmap_put(struct idmap *m, int id, void *val) {
	FAIL_IF(idmap_get(m, id), "internal: id %d already mapped", id);
	struct idnode *e = malloc(sizeof *e);
	FAIL_IF(!e, "malloc");
	e->id = id;
	e->val = val;
	e->next = m->b[(unsigned)id % BUCKETS];
	m->b[(unsigned)id % BUCKETS] = e;
	m->n++;
}

static void *idmap_del(struct idmap *m, int id) {
	for (struct idnode **p = &m->b[(unsigned)id % BUCKETS]; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct idnode *e = *p;
			void *v = e->val;
			*p = e->next;
			free(e);
			m->n--;
			return v;
		}
	}
	return NULL;
}

struct service {
	int idx;
	pthread_mutex_t mu;
	struct msg *head, *tail;
	int scheduled;
	struct service *gnext;
	atomic_int tick_pending;
	/* owned by whichever worker runs the service */
	struct rng rng;
	struct idmap conns;    /* echo: id -> sconn */
	struct idmap forward;  /* echo: id -> service index (handed off, forwarding until barrier) */
	struct idmap deferred; /* gate: id -> target service, not yet started */
	atomic_int nconns, nforward, ndeferred;
	struct sconn **snap;
	int snapcap;
};

#define GATE 1
static struct socket_server *ss;
static struct service *services; /* [0] unused; 1 = gate; 2..cfg.services+1 echo */
static int nsvc;                 /* highest service index */

static pthread_mutex_t gq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gq_cv = PTHREAD_COND_INITIALIZER;
static struct service *gq_head, *gq_tail;
static int gq_stop;

static void gq_push(struct service *s) {
	pthread_mutex_lock(&gq_mu);
	s->gnext = NULL;
	if (gq_tail) gq_tail->gnext = s;
	else gq_head = s;
	gq_tail = s;
	pthread_cond_signal(&gq_cv);
	pthread_mutex_unlock(&gq_mu);
}

static void mailbox_push(int to, struct msg *m) {
	FAIL_IF(to < 1 || to > nsvc, "message for service %d, which does not exist", to);
	struct service *s = &services[to];
	m->next = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->tail) s->tail->next = m;
	else s->head = m;
	s->tail = m;
	int wake = !s->scheduled;
	s->scheduled = 1;
	pthread_mutex_unlock(&s->mu);
	if (wake) gq_push(s);
}

static struct msg *msg_new(int type, int from, int id) {
	struct msg *m = calloc(1, sizeof *m);
	FAIL_IF(!m, "calloc");
	m->type = type;
	m->from = from;
	m->id = id;
	return m;
}

static void msg_free(struct msg *m) {
	if (m->type == M_SOCKET || m->type == M_FORWARD) free(m->data); /* DATA: ours now */
	free(m);
}

/* ---------------------------------------------------------------- echo connections */

struct chunk {
	struct chunk *next;
	char *buf; /* a DATA buffer from the library */
	uint32_t len, pos;
};

enum { X_NONE, X_WAIT_OPEN, X_WAIT_ACK };
enum { P_BACKLOG = 1, P_CONGESTED = 2 };

struct sconn {
	int id;
	struct rng rng;
	uint64_t in_off; /* inbound stream offset of the next byte to echo */
	struct chunk *bl_head, *bl_tail;
	uint64_t backlog, bl_limit;
	uint8_t ph[CFRAME_HDR];
	int ph_got;
	uint64_t pay_left;
	int ctl;           /* CF_CLOSE / CF_SHUTDOWN once parsed */
	int slow, lowpct;
	int reasons, paused;
	int resume_pending; /* our starts (resumes) not answered yet */
	int got_close;     /* CLOSE result seen */
	int closing, shut; /* we called close / shutdown */
	int own;           /* we closed on the client's request: the CLOSE is ours, sends fail */
	int erred;
	int done;
	int xfer, from;    /* hand-over state, previous owner */
	int draining;
	int congested;     /* a WARNING with ud > 0 came, and no WARNING 0 since */
	int64_t congested_at, checked_at, empty_at; /* that WARNING's arrival, its last checks */
	struct msg *held_head, *held_tail;
};

static void conn_drop_backlog(struct sconn *c) {
	while (c->bl_head) {
		struct chunk *k = c->bl_head;
		c->bl_head = k->next;
		free(k->buf);
		free(k);
	}
	c->bl_tail = NULL;
	c->backlog = 0;
}

/* A worker's RAWPOINTER buffer (freed when the worker ends). */
static __thread struct scratch raw;

/* Copies n backlog bytes to dst, releasing the DATA buffers it empties. */
static void gather(struct sconn *c, uint8_t *dst, size_t n) {
	while (n > 0) {
		struct chunk *k = c->bl_head;
		size_t t = k->len - k->pos < n ? k->len - k->pos : n;
		memcpy(dst, k->buf + k->pos, t);
		dst += t;
		n -= t;
		k->pos += (uint32_t)t;
		c->backlog -= t;
		if (k->pos == k->len) {
			c->bl_head = k->next;
			if (!c->bl_head) c->bl_tail = NULL;
			free(k->buf);
			free(k);
		}
	}
}

/* Walks the client's framing over bytes about to be echoed: a corrupted or reordered inbound
 * stream shows up here as a bad header. */
static void parse_inbound(struct sconn *c, const uint8_t *p, size_t n, uint64_t off) {
	size_t i = 0;
	while (i < n) {
		FAIL_IF(c->ctl, "socket %d: %zu bytes arrived after the client's %s frame (inbound offset %llu)",
			c->id, n - i, c->ctl == CF_CLOSE ? "CLOSE" : "SHUTDOWN", (unsigned long long)(off + i));
		if (c->ph_got < CFRAME_HDR) {
			c->ph[c->ph_got++] = p[i++];
			if (c->ph_got < CFRAME_HDR) continue;
			uint32_t len = get_le32(c->ph + 4);
			if (c->ph[0] != CFRAME_MAGIC || c->ph[1] < CF_DATA || c->ph[1] > CF_SHUTDOWN ||
				(c->ph[1] != CF_DATA && len != 0))
				stress_fail("socket %d: bad client frame header %02x %02x %02x %02x len %u at inbound "
					"offset %llu: DATA results lost, duplicated or reordered bytes",
					c->id, c->ph[0], c->ph[1], c->ph[2], c->ph[3], len,
					(unsigned long long)(off + i - CFRAME_HDR));
			c->pay_left = len;
			if (c->ph[1] != CF_DATA) c->ctl = c->ph[1];
			if (len == 0) c->ph_got = 0;
			continue;
		}
		size_t t = c->pay_left < n - i ? c->pay_left : n - i;
		i += t;
		c->pay_left -= t;
		if (c->pay_left == 0) c->ph_got = 0;
	}
}

static int send_buffer(int id, int type, const void *p, size_t sz, int low) {
	struct socket_sendbuffer b = { .id = id, .type = type, .buffer = p, .sz = sz };
	INC(sends[type]);
	if (low) INC(sends_low);
	int r = low ? socket_server_send_lowpriority(ss, &b) : socket_server_send(ss, &b);
	FAIL_IF(r != 0 && r != -1, "socket_server_send returned %d", r);
	if (r) INC(send_refused);
	return r;
}

/* Sends one echo frame [hdr | bytes] with a random buffer kind and priority. */
static void echo_frame(struct sconn *c, size_t n) {
	uint8_t h[EFRAME_HDR];
	int low = rng_pct(&c->rng, (unsigned)c->lowpct);
	h[0] = EFRAME_M0;
	h[1] = EFRAME_M1;
	h[2] = (uint8_t)low;
	h[3] = EK_ECHO;
	put_le32(h + 4, (uint32_t)n);
	put_le64(h + 8, c->in_off);
	unsigned kind = (unsigned)rng_below(&c->rng, 10);
	if (kind < 4) {
		uint8_t *m = track_memory_alloc(EFRAME_HDR + n);
		memcpy(m, h, EFRAME_HDR);
		gather(c, m + EFRAME_HDR, n);
		parse_inbound(c, m + EFRAME_HDR, n, c->in_off);
		send_buffer(c->id, SOCKET_BUFFER_MEMORY, m, EFRAME_HDR + n, low);
	} else {
		uint8_t *r = scratch_get(&raw, EFRAME_HDR + n);
		memcpy(r, h, EFRAME_HDR);
		gather(c, r + EFRAME_HDR, n);
		parse_inbound(c, r + EFRAME_HDR, n, c->in_off);
		if (kind < 7) {
			struct stress_object *o = object_new(r, EFRAME_HDR + n, NULL, 0);
			send_buffer(c->id, SOCKET_BUFFER_OBJECT, o, EFRAME_HDR + n, low);
		} else {
			send_buffer(c->id, SOCKET_BUFFER_RAWPOINTER, r, EFRAME_HDR + n, low);
			/* RAWPOINTER stays ours: the library must have copied what it kept. */
			memset(r, 0xdd, EFRAME_HDR + n);
		}
	}
	c->in_off += n;
}

static void sock_start(struct service *s, int id) {
	atomic_fetch_add(&rec_of(id, 0)->starts, 1);
	socket_server_start(ss, (uintptr_t)s->idx, id);
}

/* How a service ends a socket: close, shutdown, or shutdown in answer to an ERR. */
enum { HOW_CLOSE, HOW_SHUTDOWN, HOW_SHUTDOWN_ON_ERR };

static void sock_close(struct service *s, int id, int how) {
	struct idrec *r = rec_of(id, 0);
	atomic_fetch_add(&r->closes, 1);
	if (how == HOW_SHUTDOWN_ON_ERR) atomic_fetch_add(&r->err_closes, 1);
	if (how == HOW_CLOSE) socket_server_close(ss, (uintptr_t)s->idx, id);
	else socket_server_shutdown(ss, (uintptr_t)s->idx, id);
}

/* How long a WARNING stops reading at most. Waiting for the WARNING 0 itself can deadlock in
 * TCP: while this socket does not read, its receive window stays closed, the client's window
 * updates carry sequence numbers beyond that closed window (it keeps sending, and TCP drops
 * what does not fit), so the kernel discards them and keeps believing the client's window is
 * zero; the echo queue then never drains, and no WARNING 0 comes. An application that
 * throttles on WARNING must not stop reading for good either. */
#define CONGESTION_PAUSE_MS 500

static void update_pause(struct service *s, struct sconn *c) {
	if (c->closing || c->shut || c->got_close || c->erred || c->xfer != X_NONE) return;
	if ((c->reasons & P_CONGESTED) && now_ms() - c->congested_at >= CONGESTION_PAUSE_MS)
		c->reasons &= ~P_CONGESTED;
	if (c->slow) {
		if (c->backlog > c->bl_limit) c->reasons |= P_BACKLOG;
		else if (c->backlog <= c->bl_limit / 2) c->reasons &= ~P_BACKLOG;
	}
	if (c->reasons && !c->paused) {
		socket_server_pause(ss, (uintptr_t)s->idx, c->id);
		c->paused = 1;
		INC(pauses);
	} else if (!c->reasons && c->paused) {
		c->paused = 0;
		c->resume_pending++; /* a pause and start may repeat before the first answer */
		sock_start(s, c->id);
		INC(resumes);
	}
}

/* Echoes up to `budget` backlog bytes; acts on a CLOSE/SHUTDOWN frame once it is echoed. */
static void process_input(struct service *s, struct sconn *c, uint64_t budget) {
	(void)s;
	while (c->backlog > 0 && budget > 0 && !c->shut && !c->closing) {
		uint64_t n = rng_logsize(&c->rng, 256 * 1024);
		if (n > c->backlog) n = c->backlog;
		if (n > budget) n = budget;
		echo_frame(c, (size_t)n);
		budget -= n;
		if (c->ctl && c->backlog == 0) break;
	}
	if (c->ctl && c->backlog == 0 && !c->shut && !c->closing) {
		c->own = !c->got_close;
		if (c->ctl == CF_CLOSE) {
			sock_close(s, c->id, HOW_CLOSE);
			c->closing = 1;
		} else {
			sock_close(s, c->id, HOW_SHUTDOWN);
			c->shut = 1;
		}
	}
}

static void service_send(int to, struct msg *m) { mailbox_push(to, m); }

static void conn_free(struct service *s, struct sconn *c) {
	FAIL_IF(idmap_del(&s->conns, c->id) != c, "internal: conn table");
	atomic_fetch_sub(&s->nconns, 1);
	conn_drop_backlog(c);
	FAIL_IF(c->held_head, "internal: held messages left");
	free(c);
}

/* CLOSE seen and we closed too: the connection is over for this service. */
static void conn_finish(struct service *s, struct sconn *c) {
	c->done = 1;
	if (c->own) {
		/* SPEC 4/7: a send to a socket whose close we asked for and whose CLOSE arrived is
		 * refused (-1) and its buffer freed; its bytes must never reach the peer. */
		uint8_t h[EFRAME_HDR] = { EFRAME_M0, EFRAME_M1, 0, EK_POISON };
		put_le32(h + 4, 1);
		put_le64(h + 8, 0);
		int r;
		if (rng_pct(&c->rng, 50)) {
			uint8_t *m = track_memory_alloc(EFRAME_HDR + 1);
			memcpy(m, h, EFRAME_HDR);
			m[EFRAME_HDR] = 0;
			r = send_buffer(c->id, SOCKET_BUFFER_MEMORY, m, EFRAME_HDR + 1, 0);
		} else {
			uint8_t body = 0;
			r = send_buffer(c->id, SOCKET_BUFFER_OBJECT, object_new(h, EFRAME_HDR, &body, 1),
				EFRAME_HDR + 1, 0);
		}
		INC(poison);
		FAIL_IF(r != -1, "socket %d: send after the CLOSE that followed our %s returned %d, want -1 "
			"(SPEC 4: -1 when the id is invalid or closing)", c->id, c->shut ? "shutdown" : "close", r);
	}
	if (c->xfer == X_NONE) {
		if (!c->draining) conn_free(s, c);
	} else if (c->xfer == X_WAIT_OPEN) {
		/* Our start may never be answered (upstream answers nothing for a socket whose write
		 * side failed): the connection is over, so settle with the old owner now. */
		c->xfer = X_WAIT_ACK;
		service_send(c->from, msg_new(M_BARRIER, s->idx, c->id));
	}
}

static void handle_socket(struct service *s, struct sconn *c, struct msg *m);

/* A result for a connection that is over here (kept only until its hand-over settles).
 * Returns 1 when it is to be ignored: ERR and WARNING can follow the peer's CLOSE while the
 * socket is still open (the socket thread checks which results may come after CLOSE). */
static int after_done(struct sconn *c, struct msg *m) {
	if (m->stype == SOCKET_ERR && !strcmp(m->str, "invalid socket")) return 0;
	if (m->stype == SOCKET_ERR && !strcmp(m->str, "socket closed")) return 0;
	FAIL_IF(m->stype != SOCKET_ERR && m->stype != SOCKET_WARNING,
		"socket %d: result type %d after the connection was over", c->id, m->stype);
	return 1;
}

/* ERR texts that answer a start on a socket that is closed or got EOF (SPEC 4). */
static int is_start_answer(const char *s) { return !strcmp(s, "invalid socket") || !strcmp(s, "socket closed"); }

/* The hand-over settled: handle the results held meanwhile, then free the connection if
 * it is over. */
static void drain_held(struct service *s, struct sconn *c) {
	c->draining = 1;
	while (c->held_head) {
		struct msg *m = c->held_head;
		c->held_head = m->next;
		if (!c->held_head) c->held_tail = NULL;
		if (!(c->done && after_done(c, m))) handle_socket(s, c, m);
		msg_free(m);
	}
	c->draining = 0;
	if (c->done) conn_free(s, c);
}


/* One socket result for a connection this service holds (directly or forwarded). */
static void handle_socket(struct service *s, struct sconn *c, struct msg *m) {
	int mine = m->opaque == (uintptr_t)s->idx;
	switch (m->stype) {
	case SOCKET_DATA: {
		FAIL_IF(c->got_close, "socket %d: DATA after CLOSE", c->id);
		if (c->shut || c->closing) {
			/* Only after an ERR: our shutdown may not be applied yet. The client sends
			 * nothing after a CLOSE or SHUTDOWN frame. */
			FAIL_IF(!c->erred, "socket %d: %d bytes of DATA after the client's last frame", c->id, m->ud);
			break;
		}
		struct chunk *k = malloc(sizeof *k);
		FAIL_IF(!k, "malloc");
		k->next = NULL;
		k->buf = m->data;
		k->len = (uint32_t)m->ud;
		k->pos = 0;
		m->data = NULL;
		if (c->bl_tail) c->bl_tail->next = k;
		else c->bl_head = k;
		c->bl_tail = k;
		c->backlog += k->len;
		if (!c->slow) process_input(s, c, UINT64_MAX);
		update_pause(s, c);
		break;
	}
	case SOCKET_OPEN:
		FAIL_IF(strcmp(m->str, "transfer") != 0, "socket %d: OPEN \"%s\" for a started connection",
			c->id, m->str);
		if (!mine) break; /* the previous owner's resume, forwarded */
		if (c->xfer == X_WAIT_OPEN) {
			c->xfer = X_WAIT_ACK;
			struct msg *b = msg_new(M_BARRIER, s->idx, c->id);
			service_send(c->from, b);
			INC(handoffs);
		} else {
			FAIL_IF(c->resume_pending <= 0, "socket %d: OPEN \"transfer\" that no start of this service "
				"asked for", c->id);
			c->resume_pending--;
		}
		break;
	case SOCKET_ERR:
		if (is_start_answer(m->str)) {
			if (!mine) break;
			if (c->xfer == X_WAIT_OPEN) {
				/* The socket closed or got EOF before our start: it stays with the old owner,
				 * whose events (the CLOSE among them) come forwarded. */
				c->xfer = X_WAIT_ACK;
				service_send(c->from, msg_new(M_BARRIER, s->idx, c->id));
				INC(handoffs_failed);
			} else if (c->resume_pending > 0) {
				c->resume_pending--;
			}
			break;
		}
		c->erred = 1;
		conn_drop_backlog(c);
		if (!c->shut) {
			/* socket.lua: an error closes the socket with shutdown. The CLOSE that follows
			 * may be the peer's (EOF or hang-up) rather than ours, so `own` stays 0. */
			sock_close(s, c->id, HOW_SHUTDOWN_ON_ERR);
			c->shut = 1;
		}
		break;
	case SOCKET_CLOSE:
		FAIL_IF(c->got_close, "socket %d: second CLOSE delivered to the owning service", c->id);
		c->got_close = 1;
		if (!c->closing && !c->shut) {
			/* The peer closed (FIN): echo what is left, then close our side. */
			process_input(s, c, UINT64_MAX);
			if (!c->closing && !c->shut) {
				sock_close(s, c->id, HOW_CLOSE);
				c->closing = 1;
			}
			c->own = 0;
		}
		conn_finish(s, c);
		break;
	case SOCKET_WARNING:
		if (m->ud > 0) {
			c->congested = 1;
			c->reasons |= P_CONGESTED;
			c->congested_at = now_ms();
			c->empty_at = 0;
		} else {
			c->congested = 0;
			c->reasons &= ~P_CONGESTED;
		}
		update_pause(s, c);
		break;
	default:
		stress_fail("socket %d: unexpected result type %d at an echo service", c->id, m->stype);
	}
}

static void maybe_handoff(struct service *s, struct sconn *c) {
	if (c->xfer != X_NONE || c->paused || c->resume_pending || c->reasons || c->closing || c->shut ||
		c->got_close || c->erred || c->ctl || cfg.services < 2)
		return;
	if (!rng_pct(&c->rng, 2)) return;
	int to;
	do to = 2 + (int)rng_below(&s->rng, (uint64_t)cfg.services);
	while (to == s->idx);
	idmap_del(&s->conns, c->id);
	atomic_fetch_sub(&s->nconns, 1);
	idmap_put(&s->forward, c->id, (void *)(intptr_t)to);
	atomic_fetch_add(&s->nforward, 1);
	struct msg *h = msg_new(M_HANDOFF, s->idx, c->id);
	h->conn = c;
	service_send(to, h);
}

static int64_t stall_ms(int base);

/* Queued bytes of socket `id` as socket_server_info reports them, or -1 if not listed. */
static int64_t info_wbuffer(int id) {
	struct socket_info *list = socket_server_info(ss);
	int64_t w = -1;
	for (struct socket_info *e = list; e; e = e->next)
		if (e->id == id) w = e->wbuffer;
	socket_info_release(list);
	return w;
}

/* A connection paused by a WARNING waits for the WARNING 0 that follows once the queue has
 * drained (SPEC 7). If its queue stays empty and no WARNING 0 comes, the service would wait
 * forever (skynet code that throttles on WARNING would too): report it. */
static atomic_int listener_port;

static void check_congestion(struct service *s, struct sconn *c) {
	int64_t now = now_ms();
	if (!c->congested || now - c->congested_at < stall_ms(2000) || now - c->checked_at < 500)
		return;
	c->checked_at = now;
	int64_t w = info_wbuffer(c->id);
	if (w != 0) {
		c->empty_at = 0;
		return;
	}
	if (!c->empty_at) {
		c->empty_at = now;
		return;
	}
	if (now - c->empty_at >= stall_ms(2000)) {
		struct idrec *r = rec_of(c->id, 0);
		stress_log("socket %d at service %d: WARNING ud > 0 handled %lld ms ago; %s, pause reasons %d, "
			"paused %d, resume pending %d, hand-over %d from %d, held results %d, CLOSE %d, close %d, "
			"shutdown %d, ERR %d, done %d; %d close/shutdown calls, %d starts, %d answers",
			c->id, s->idx, (long long)(now - c->congested_at), c->slow ? "slow" : "fast", c->reasons,
			c->paused, c->resume_pending, c->xfer, c->from, c->held_head != NULL, c->got_close,
			c->closing, c->shut, c->erred, c->done, atomic_load(&r->closes), atomic_load(&r->starts),
			r->answers);
		tcp_view_print((unsigned)atomic_load(&listener_port), r->peer_port);
		stress_fail("socket %d: its last WARNING had ud > 0, but for %lld ms socket_info has shown nothing "
			"queued and no WARNING 0 came (SPEC 7: WARNING 0 once the queue drains after a warning); "
			"last results (type letter, opaque, text): %s", c->id, (long long)(now - c->empty_at),
			hist_text(r));
	}
}

static void echo_tick(struct service *s) {
	int n = 0;
	for (int b = 0; b < BUCKETS; b++) {
		for (struct idnode *e = s->conns.b[b]; e; e = e->next) {
			if (n == s->snapcap) {
				s->snapcap = s->snapcap ? s->snapcap * 2 : 64;
				s->snap = realloc(s->snap, (size_t)s->snapcap * sizeof *s->snap);
				FAIL_IF(!s->snap, "realloc");
			}
			s->snap[n++] = e->val;
		}
	}
	for (int i = 0; i < n; i++) {
		struct sconn *c = s->snap[i];
		if (c->done) continue;
		if (c->slow && c->backlog) process_input(s, c, rng_logsize(&c->rng, 512 * 1024));
		check_congestion(s, c);
		update_pause(s, c);
		maybe_handoff(s, c);
	}
}

static void echo_message(struct service *s, struct msg *m) {
	switch (m->type) {
	case M_TICK:
		atomic_store(&s->tick_pending, 0);
		echo_tick(s);
		msg_free(m);
		return;
	case M_HANDOFF: {
		struct sconn *c = m->conn;
		idmap_put(&s->conns, c->id, c);
		atomic_fetch_add(&s->nconns, 1);
		c->from = m->from;
		c->xfer = X_WAIT_OPEN;
		sock_start(s, c->id);
		msg_free(m);
		return;
	}
	case M_BARRIER: {
		/* Everything the old owner received for this id before the barrier is forwarded. */
		FAIL_IF(!idmap_del(&s->forward, m->id), "internal: barrier without forwarding");
		atomic_fetch_sub(&s->nforward, 1);
		service_send(m->from, msg_new(M_BARRIER_ACK, s->idx, m->id));
		msg_free(m);
		return;
	}
	case M_BARRIER_ACK: {
		struct sconn *c = idmap_get(&s->conns, m->id);
		FAIL_IF(!c || c->xfer != X_WAIT_ACK, "internal: unexpected barrier ack");
		c->xfer = X_NONE;
		c->from = 0;
		msg_free(m);
		drain_held(s, c);
		return;
	}
	case M_FORWARD: {
		struct sconn *c = idmap_get(&s->conns, m->id);
		FAIL_IF(!c || c->xfer == X_NONE, "internal: forwarded result for socket %d without hand-over", m->id);
		if (!(c->done && after_done(c, m))) handle_socket(s, c, m);
		msg_free(m);
		return;
	}
	case M_ABANDON: {
		/* The harness gives up on a connection TCP left half-dead (classify_open): shut it
		 * down, as an application's idle timeout would. Sent to every service; the holder acts. */
		struct sconn *c = idmap_get(&s->conns, m->id);
		if (c && !c->done && !c->shut && !c->closing) {
			c->own = !c->got_close;
			sock_close(s, c->id, HOW_SHUTDOWN);
			c->shut = 1;
		}
		msg_free(m);
		return;
	}
	case M_SOCKET:
		break;
	default:
		stress_fail("internal: message type %d", m->type);
	}
	intptr_t fwd = (intptr_t)idmap_get(&s->forward, m->id);
	if (fwd) {
		m->type = M_FORWARD;
		service_send((int)fwd, m);
		return;
	}
	struct sconn *c = idmap_get(&s->conns, m->id);
	if (!c) {
		if (m->stype == SOCKET_OPEN && !strcmp(m->str, "start")) {
			c = calloc(1, sizeof *c);
			FAIL_IF(!c, "calloc");
			c->id = m->id;
			c->rng.s = rng_next(&s->rng);
			c->slow = rng_pct(&c->rng, 30);
			c->lowpct = rng_pct(&c->rng, 50) ? 0 : (int)rng_below(&c->rng, 60);
			c->bl_limit = (64u << 10) + rng_below(&c->rng, 448u << 10);
			idmap_put(&s->conns, c->id, c);
			atomic_fetch_add(&s->nconns, 1);
		} else if (m->stype == SOCKET_ERR && is_start_answer(m->str)) {
			/* answer to a start for a connection that is over here */
		} else {
			FAIL_IF(m->stype == SOCKET_DATA, "socket %d: %d bytes of DATA reached service %d, which "
				"does not hold the socket (lost bytes)", m->id, m->ud, s->idx);
			INC(orphans);
		}
		msg_free(m);
		return;
	}
	if (c->xfer == X_WAIT_ACK && m->opaque == (uintptr_t)s->idx) {
		/* Ours already, but the old owner may still forward older results: hold these. */
		m->next = NULL;
		if (c->held_tail) c->held_tail->next = m;
		else c->held_head = m;
		c->held_tail = m;
		return;
	}
	if (!(c->done && after_done(c, m))) handle_socket(s, c, m);
	msg_free(m);
}

static void gate_message(struct service *s, struct msg *m) {
	switch (m->type) {
	case M_TICK: {
		atomic_store(&s->tick_pending, 0);
		for (int b = 0; b < BUCKETS; b++) {
			while (s->deferred.b[b]) {
				int id = s->deferred.b[b]->id;
				int to = (int)(intptr_t)idmap_del(&s->deferred, id);
				atomic_fetch_sub(&s->ndeferred, 1);
				atomic_fetch_add(&rec_of(id, 0)->starts, 1);
				socket_server_start(ss, (uintptr_t)to, id);
				INC(deferred_starts);
			}
		}
		break;
	}
	case M_SOCKET:
		switch (m->stype) {
		case SOCKET_ACCEPT: {
			int id = m->ud;
			int to = 2 + (int)rng_below(&s->rng, (uint64_t)cfg.services);
			if (rng_pct(&s->rng, 80)) {
				atomic_fetch_add(&rec_of(id, 0)->starts, 1);
				socket_server_start(ss, (uintptr_t)to, id);
			} else {
				idmap_put(&s->deferred, id, (void *)(intptr_t)to);
				atomic_fetch_add(&s->ndeferred, 1);
			}
			break;
		}
		case SOCKET_ERR:
			if (idmap_del(&s->deferred, m->id)) {
				atomic_fetch_sub(&s->ndeferred, 1);
				sock_close(s, m->id, HOW_SHUTDOWN_ON_ERR);
				INC(gate_shutdowns);
			}
			break;
		case SOCKET_CLOSE:
			if (idmap_del(&s->deferred, m->id)) atomic_fetch_sub(&s->ndeferred, 1);
			break;
		case SOCKET_OPEN:
			break; /* the listener's: main() waits for it */
		default:
			stress_fail("socket %d: result type %d reached the gate", m->id, m->stype);
		}
		break;
	default:
		stress_fail("internal: message type %d at the gate", m->type);
	}
	msg_free(m);
}

/* Workers hold it shared while they run a service; a failure report takes it exclusively to
 * read the services' state. */
static pthread_rwlock_t world = PTHREAD_RWLOCK_INITIALIZER;

static void *worker_main(void *arg) {
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&gq_mu);
		while (!gq_head && !gq_stop) pthread_cond_wait(&gq_cv, &gq_mu);
		struct service *s = gq_head;
		if (!s) {
			pthread_mutex_unlock(&gq_mu);
			scratch_free(&raw);
			return NULL;
		}
		gq_head = s->gnext;
		if (!gq_head) gq_tail = NULL;
		pthread_mutex_unlock(&gq_mu);

		pthread_rwlock_rdlock(&world);
		pthread_mutex_lock(&s->mu);
		struct msg *batch = s->head;
		s->head = s->tail = NULL;
		pthread_mutex_unlock(&s->mu);
		while (batch) {
			struct msg *m = batch;
			batch = m->next;
			m->next = NULL;
			if (s->idx == GATE) gate_message(s, m);
			else echo_message(s, m);
		}
		pthread_rwlock_unlock(&world);
		pthread_mutex_lock(&s->mu);
		int again = s->head != NULL;
		if (!again) s->scheduled = 0;
		pthread_mutex_unlock(&s->mu);
		if (again) gq_push(s);
	}
}

/* ---------------------------------------------------------------- the socket thread */

static atomic_int listener_id, listener_started;
static atomic_int cur_round;

static const char *const type_names[] = { "DATA", "CLOSE", "OPEN", "ACCEPT", "ERR", "EXIT", "UDP", "WARNING" };

static void hist_add(struct idrec *rec, int type, const struct socket_message *r) {
	char *h = rec->hist[rec->nhist++ % 8];
	const char *d = type == SOCKET_OPEN || type == SOCKET_ERR ? r->data : NULL;
	snprintf(h, sizeof rec->hist[0], "%c%lu%s%.8s", type_names[type][0], (unsigned long)r->opaque,
		d ? ":" : "", d ? d : "");
	if (type == SOCKET_WARNING) snprintf(h, sizeof rec->hist[0], "W%lu:%d", (unsigned long)r->opaque, r->ud);
}

/* "OPEN start by 3, DATA, ..." for a failure message. */
static const char *hist_text(const struct idrec *rec) {
	static char out[256];
	out[0] = 0;
	int n = rec->nhist < 8 ? rec->nhist : 8;
	for (int i = rec->nhist - n; i < rec->nhist; i++) {
		strcat(out, i == rec->nhist - n ? "" : " ");
		strcat(out, rec->hist[i % 8]);
	}
	return out;
}

#define RFAIL_IF(cond, ...) do { \
	if (__builtin_expect(!!(cond), 0)) { \
		stress_log("socket %d: last results (type letter, opaque, text): %s; %d close/shutdown " \
			"calls, %d starts", id, hist_text(rec), atomic_load(&rec->closes), atomic_load(&rec->starts)); \
		stress_fail(__VA_ARGS__); \
	} \
} while (0)

static void check_result(int type, const struct socket_message *r) {
	const char *str = r->data ? r->data : "(null)";
	if (type == SOCKET_EXIT) return;
	int lid = atomic_load(&listener_id);
	if (lid == 0 || r->id == lid) {
		/* The listener: OPEN for listen (bound address, port), OPEN "start", ACCEPTs. */
		if (type == SOCKET_OPEN && lid == 0) {
			FAIL_IF(r->opaque != GATE || r->ud <= 0 || !r->data || strcmp(r->data, "127.0.0.1"),
				"listen OPEN: opaque %lu ud %d data \"%s\", want opaque 1, a port, \"127.0.0.1\"",
				(unsigned long)r->opaque, r->ud, str);
			atomic_store(&listener_port, r->ud);
			atomic_store(&listener_id, r->id);
			return;
		}
		FAIL_IF(lid == 0, "result type %d for socket %d before the listener opened", type, r->id);
		if (type == SOCKET_OPEN) {
			FAIL_IF(!r->data || strcmp(r->data, "start") || r->opaque != GATE ||
				atomic_load(&listener_started), "listener: unexpected OPEN \"%s\" (opaque %lu)",
				str, (unsigned long)r->opaque);
			atomic_store(&listener_started, 1);
			return;
		}
		FAIL_IF(type != SOCKET_ACCEPT, "listener: unexpected result type %d (\"%s\")", type, str);
		FAIL_IF(!atomic_load(&listener_started), "ACCEPT before the listener was started");
		FAIL_IF(r->opaque != GATE, "ACCEPT carries opaque %lu, want the listener's (1)", (unsigned long)r->opaque);
		FAIL_IF(r->ud <= 0, "ACCEPT with new id %d", r->ud);
		unsigned port = 0;
		FAIL_IF(!r->data || sscanf(r->data, "127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535,
			"ACCEPT data \"%s\", want \"127.0.0.1:port\"", str);
		struct idrec *n = rec_of(r->ud, 1);
		FAIL_IF(n->state != ST_NONE, "ACCEPT of id %d, which is already in use (state %s)", r->ud,
			st_names[n->state]);
		n->state = ST_ACCEPTED;
		n->accepted = 1;
		n->owner = GATE;
		n->peer_port = (uint16_t)port;
		n->round = atomic_load(&cur_round);
		INC(accepted);
		return;
	}
	struct idrec *rec = rec_of(r->id, 0);
	FAIL_IF(!rec || rec->state == ST_NONE, "result type %d for socket %d, which was never accepted", type, r->id);
	int id = r->id;
	unsigned long op = (unsigned long)r->opaque;
	hist_add(rec, type, r);
	switch (type) {
	case SOCKET_DATA:
		RFAIL_IF(rec->state != ST_STARTED, "socket %d: DATA while %s (SPEC 4: no reading before start; "
			"6: nothing after CLOSE)", id, st_names[rec->state]);
		RFAIL_IF(op != (unsigned long)rec->owner, "socket %d: DATA carries opaque %lu, owner is %d (SPEC 5)",
			id, op, rec->owner);
		RFAIL_IF(r->ud <= 0 || !r->data, "socket %d: DATA with ud %d data %p", id, r->ud, (void *)r->data);
		break;
	case SOCKET_CLOSE:
		RFAIL_IF(rec->state == ST_CLOSED, "socket %d: second CLOSE (SPEC 6: at most once)", id);
		RFAIL_IF(op != (unsigned long)rec->owner, "socket %d: CLOSE carries opaque %lu, owner is %d "
			"(SPEC 14: CLOSE carries the current owner)", id, op, rec->owner);
		RFAIL_IF(r->ud != 0 || r->data, "socket %d: CLOSE with ud %d data %p", id, r->ud, (void *)r->data);
		{
			int closes = atomic_load(&rec->closes);
			rec->peer_closed = closes == 0 ? PEER_CLOSE
				: closes == atomic_load(&rec->err_closes) ? MAYBE_PEER_CLOSE : OUR_CLOSE;
		}
		rec->state = ST_CLOSED;
		rec->nclose++;
		INC(closed);
		break;
	case SOCKET_OPEN:
		RFAIL_IF(rec->state == ST_CLOSED, "socket %d: OPEN \"%s\" after CLOSE (SPEC 6)", id, str);
		RFAIL_IF(rec->answers >= atomic_load(&rec->starts), "socket %d: OPEN \"%s\" that no start asked for",
			id, str);
		rec->answers++;
		if (r->data && !strcmp(r->data, "start")) {
			RFAIL_IF(rec->state != ST_ACCEPTED, "socket %d: OPEN \"start\" while %s (SPEC 14: "
				"start on a connected socket is \"transfer\")", id, st_names[rec->state]);
		} else if (r->data && !strcmp(r->data, "transfer")) {
			RFAIL_IF(rec->state != ST_STARTED, "socket %d: OPEN \"transfer\" while %s (SPEC 4)", id,
				st_names[rec->state]);
		} else {
			stress_fail("socket %d: OPEN \"%s\", want \"start\" or \"transfer\"", id, str);
		}
		RFAIL_IF(r->ud != 0, "socket %d: OPEN \"%s\" with ud %d", id, str, r->ud);
		rec->state = ST_STARTED;
		rec->owner = (int)op;
		break;
	case SOCKET_ERR:
		RFAIL_IF(!r->data, "socket %d: ERR without text", id);
		if (is_start_answer(r->data)) {
			RFAIL_IF(rec->answers >= atomic_load(&rec->starts), "socket %d: ERR \"%s\" that no start "
				"asked for", id, str);
			rec->answers++;
			break;
		}
		/* After the peer's CLOSE the socket stays open (half-closed) until its owner closes it;
		 * an EPOLLERR then still reports ERR, as upstream does. After a CLOSE we asked for,
		 * nothing may follow (see peer_closed for when we cannot tell the two apart). */
		RFAIL_IF(rec->state == ST_CLOSED && !rec->peer_closed, "socket %d: ERR \"%s\" after the CLOSE "
			"that followed a close/shutdown call (SPEC 6/14: nothing after it)", id, str);
		RFAIL_IF(op != (unsigned long)rec->owner, "socket %d: ERR carries opaque %lu, owner is %d", id, op,
			rec->owner);
		rec->nerr++;
		break;
	case SOCKET_WARNING:
		RFAIL_IF(rec->state != ST_STARTED && !(rec->state == ST_CLOSED && rec->peer_closed),
			"socket %d: WARNING while %s", id, st_names[rec->state]);
		RFAIL_IF(op != (unsigned long)rec->owner, "socket %d: WARNING carries opaque %lu, owner is %d", id,
			op, rec->owner);
		RFAIL_IF(r->data || r->ud < 0, "socket %d: WARNING with ud %d data %p", id, r->ud, (void *)r->data);
		break;
	default:
		stress_fail("socket %d: unexpected result type %d (\"%s\")", id, type, str);
	}
}

static void *socket_thread(void *arg) {
	(void)arg;
	for (;;) {
		struct socket_message r = { 0 };
		int more = 1;
		int type = socket_server_poll(ss, &r, &more);
		INC(progress);
		FAIL_IF(type < 0 || type > SOCKET_WARNING, "socket_server_poll returned %d", type);
		INC(results[type]);
		if (type == SOCKET_EXIT) {
			FAIL_IF(r.id != 0 || r.ud != 0 || r.data, "EXIT with id %d ud %d data %p", r.id, r.ud, (void *)r.data);
			return NULL;
		}
		check_result(type, &r);
		struct msg *m = msg_new(M_SOCKET, 0, r.id);
		m->stype = type;
		m->ud = r.ud;
		m->opaque = r.opaque;
		if (type == SOCKET_DATA) {
			m->data = r.data;
		} else if (r.data) {
			/* skynet copies at most 128 bytes of OPEN/ERR/ACCEPT strings */
			strncpy(m->str, r.data, 128);
		}
		FAIL_IF(r.opaque < 1 || r.opaque > (uintptr_t)nsvc, "result type %d for socket %d carries opaque %lu, "
			"which no service has", type, r.id, (unsigned long)r.opaque);
		mailbox_push((int)r.opaque, m);
	}
}

/* ---------------------------------------------------------------- timer and info threads */

static atomic_int aux_stop;

static void *timer_thread(void *arg) {
	(void)arg;
	int64_t t0 = now_ms();
	while (!atomic_load(&aux_stop)) {
		struct timespec d = { 0, 10 * 1000 * 1000 };
		nanosleep(&d, NULL);
		socket_server_updatetime(ss, (uint64_t)(now_ms() - t0) / 10);
		for (int i = 1; i <= nsvc; i++) {
			if (!atomic_exchange(&services[i].tick_pending, 1)) mailbox_push(i, msg_new(M_TICK, 0, 0));
		}
	}
	return NULL;
}

static int cmp_int(const void *a, const void *b) {
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Calls socket_server_info, checks every entry, returns how many non-listener entries it had
 * (and prints up to `show` of them). */
static __thread int *info_ids;
static __thread int info_cap;

static int info_check(int show) {
	int *ids = info_ids, cap = info_cap;
	struct socket_info *list = socket_server_info(ss);
	INC(info_calls);
	int n = 0, others = 0;
	int lid = atomic_load(&listener_id);
	for (struct socket_info *e = list; e; e = e->next) {
		FAIL_IF(n > 70000, "socket_info list longer than 65536 entries");
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			ids = realloc(ids, (size_t)cap * sizeof *ids);
			FAIL_IF(!ids, "realloc");
		}
		ids[n++] = e->id;
		FAIL_IF(e->id <= 0, "socket_info entry with id %d", e->id);
		FAIL_IF(!memchr(e->name, 0, sizeof e->name), "socket_info entry %d: name not NUL-terminated", e->id);
		FAIL_IF(e->reading > 1 || e->writing > 1 || e->wbuffer < 0,
			"socket_info entry %d: reading %u writing %u wbuffer %lld", e->id, e->reading, e->writing,
			(long long)e->wbuffer);
		unsigned port;
		if (e->id == lid) {
			FAIL_IF(e->type != SOCKET_INFO_LISTEN || e->opaque != GATE ||
				sscanf(e->name, "127.0.0.1:%u", &port) != 1 || (int)port != atomic_load(&listener_port),
				"socket_info: listener entry type %d opaque %llu name \"%s\"", e->type,
				(unsigned long long)e->opaque, e->name);
			continue;
		}
		others++;
		FAIL_IF(e->type != SOCKET_INFO_TCP && e->type != SOCKET_INFO_CLOSING,
			"socket_info entry %d: type %d, want TCP (2) or CLOSING (5)", e->id, e->type);
		FAIL_IF(e->opaque < 1 || e->opaque > (uint64_t)nsvc, "socket_info entry %d: owner %llu", e->id,
			(unsigned long long)e->opaque);
		/* The name comes from getpeername at query time (as upstream): empty once the peer
		 * has reset the connection. */
		FAIL_IF(e->name[0] && (sscanf(e->name, "127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535),
			"socket_info entry %d (type %d, owner %llu, read %llu, write %llu, reading %u, writing %u): "
			"name \"%s\", want the peer's 127.0.0.1:port (SPEC 9)", e->id, e->type,
			(unsigned long long)e->opaque, (unsigned long long)e->read, (unsigned long long)e->write,
			e->reading, e->writing, e->name);
		if (show > 0) {
			show--;
			stress_log("  info: id %d type %d owner %llu read %llu write %llu wbuffer %lld reading %u "
				"writing %u name %s", e->id, e->type, (unsigned long long)e->opaque,
				(unsigned long long)e->read, (unsigned long long)e->write, (long long)e->wbuffer,
				e->reading, e->writing, e->name);
		}
	}
	info_ids = ids;
	info_cap = cap;
	atomic_fetch_add(&stats.info_entries, (uint64_t)n);
	socket_info_release(list);
	qsort(ids, (size_t)n, sizeof *ids, cmp_int);
	for (int i = 1; i < n; i++) FAIL_IF(ids[i] == ids[i - 1], "socket_info lists id %d twice", ids[i]);
	return others;
}

static void *info_thread(void *arg) {
	(void)arg;
	while (!atomic_load(&aux_stop)) {
		info_check(0);
		struct timespec d = { 0, 2 * 1000 * 1000 };
		nanosleep(&d, NULL);
	}
	free(info_ids);
	return NULL;
}

/* ---------------------------------------------------------------- rounds */

struct quiet {
	uint64_t accepted, closed, mem, obj;
	int conns, forward, deferred, info;
};

static struct quiet quiet_now(void) {
	struct quiet q = { GET(accepted), GET(closed), track_memory_live(), object_live(), 0, 0, 0, 0 };
	for (int i = 1; i <= nsvc; i++) {
		q.conns += atomic_load(&services[i].nconns);
		q.forward += atomic_load(&services[i].nforward);
		q.deferred += atomic_load(&services[i].ndeferred);
	}
	q.info = info_check(0);
	return q;
}

static void dump_state(int round) {
	struct quiet q = quiet_now();
	stress_log("state: accepted %llu closed %llu, service conns %d forwarding %d deferred %d, "
		"live MEMORY buffers %llu, live OBJECTs %llu, socket_info entries %d",
		(unsigned long long)q.accepted, (unsigned long long)q.closed, q.conns, q.forward, q.deferred,
		(unsigned long long)q.mem, (unsigned long long)q.obj, q.info);
	/* Racy reads of the socket thread's records: only for this diagnostic. */
	int shown = 0, top = atomic_load(&max_id);
	for (int id = 1; id <= top && shown < 20; id++) {
		struct idrec *r = rec_of(id, 0);
		if (!r || !r->accepted || r->state == ST_CLOSED || (round >= 0 && r->round != round)) continue;
		shown++;
		stress_log("  open: id %d (peer 127.0.0.1:%u) %s, owner %d, starts %d answers %d, errors %u; "
			"results: %s", id, r->peer_port, st_names[r->state], r->owner, atomic_load(&r->starts),
			r->answers, r->nerr, hist_text(r));
	}
	info_check(20);
	/* Stop the services and show the connections they still hold. */
	pthread_rwlock_wrlock(&world);
	struct socket_info *info = socket_server_info(ss);
	shown = 0;
	for (int i = 2; i <= nsvc; i++) {
		for (int b = 0; b < BUCKETS; b++) {
			for (struct idnode *e = services[i].conns.b[b]; e && shown < 20; e = e->next, shown++) {
				struct sconn *c = e->val;
				struct idrec *r = rec_of(c->id, 0);
				struct socket_info *in = info;
				while (in && in->id != c->id) in = in->next;
				if (in)
					stress_log("  socket_info for %d: type %d owner %llu read %llu write %llu wbuffer %lld "
						"reading %u writing %u", c->id, in->type, (unsigned long long)in->opaque,
						(unsigned long long)in->read, (unsigned long long)in->write,
						(long long)in->wbuffer, in->reading, in->writing);
				stress_log("  service %d holds socket %d (peer 127.0.0.1:%u): echoed %llu, backlog %llu "
					"(limit %llu), %s, pause reasons %d, paused %d, resume pending %d, hand-over %d "
					"from %d, CLOSE %d, close %d, shutdown %d, ERR %d, client frame %d, done %d; "
					"results: %s", i, c->id, r->peer_port, (unsigned long long)c->in_off,
					(unsigned long long)c->backlog, (unsigned long long)c->bl_limit,
					c->slow ? "slow" : "fast", c->reasons, c->paused, c->resume_pending, c->xfer,
					c->from, c->got_close, c->closing, c->shut, c->erred, c->ctl, c->done, hist_text(r));
			}
		}
	}
	socket_info_release(info);
	pthread_rwlock_unlock(&world);
}

/* ---------------------------------------------------------------- stalls: whose fault */

static uint64_t tcp_counters0[TCP_COUNTERS];

static void log_tcp_counters(void) {
	char t[512];
	tcp_counters_text(tcp_counters0, t, sizeof t);
	stress_log("  kernel TcpExt counters since the run began (all sockets of this machine): %s", t);
}

/* socket_info's entry for `id` in `list`, or NULL. */
static const struct socket_info *info_find(const struct socket_info *list, int id) {
	while (list && list->id != id) list = list->next;
	return list;
}

static void log_library_view(int id, const struct socket_info *in) {
	if (in)
		stress_log("  library: socket_info type %d owner %llu read %llu write %llu wbuffer %lld reading %u "
			"writing %u", in->type, (unsigned long long)in->opaque, (unsigned long long)in->read,
			(unsigned long long)in->write, (long long)in->wbuffer, in->reading, in->writing);
	else
		stress_log("  library: socket_info does not list socket %d", id);
}

/*
 * A socket the harness still holds open after the load process closed every connection: the
 * peer's FIN or RST should have reached it. Decides from the kernel's view of both ends whose
 * fault it is. The one outcome that is not a failure: the client end is gone without a
 * TIME_WAIT (it closed abortively: SO_LINGER 0, or unread data) while the server end is still
 * ESTABLISHED with nothing queued anywhere and no retransmission pending: the RST never took
 * effect (TCP sends it once; a challenge ACK that the kernel skips under its rate limit leaves
 * the connection so), so nothing ever reached the library's socket. Returns 1 for that case.
 */
static int classify_open(int id, const struct idrec *r, const struct socket_info *in) {
	unsigned lp = (unsigned)atomic_load(&listener_port), pp = r->peer_port;
	struct tcp_end se, ce;
	tcp_end_lookup(lp, pp, &se);
	tcp_end_lookup(pp, lp, &ce);
	stress_log("socket %d (peer 127.0.0.1:%u) still open: harness %s, owner %d, %d close/shutdown calls, "
		"%d starts, %d answers, errors %u; results: %s", id, pp, st_names[r->state], r->owner,
		atomic_load(&r->closes), atomic_load(&r->starts), r->answers, r->nerr, hist_text(r));
	log_library_view(id, in);
	tcp_view_print(lp, pp);
	const char *verdict = NULL;
	int tcp = 0;
	if (r->abandoned)
		verdict = "LIBRARY: shut down by the harness after an earlier stall, yet no CLOSE (SPEC 4)";
	else if (!in)
		verdict = "LIBRARY: the socket is not (or no longer) listed, but its CLOSE was never reported (SPEC 6)";
	else if (!se.found)
		verdict = "LIBRARY: the kernel reset and dropped the server end, but the library reported no "
			"ERR/CLOSE (SPEC 6, 13: hang-up and error events are reported even for paused sockets)";
	else if (se.state == TCPS_CLOSE_WAIT && in->reading)
		verdict = "LIBRARY: the peer's FIN reached the server end (CLOSE_WAIT) and reading is on, but no "
			"CLOSE was reported (SPEC 6)";
	else if (se.state == TCPS_CLOSE_WAIT)
		verdict = "HARNESS: the peer's FIN reached the server end (CLOSE_WAIT), but the service keeps the "
			"socket paused, so it never reads the EOF";
	else if (se.state == TCPS_ESTABLISHED && se.rxq == 0 && se.txq == 0 && (se.timer == 0 || se.timer == 2) &&
		!ce.found && in->wbuffer == 0) {
		verdict = "TCP: the client end is gone without TIME_WAIT (an abortive close: RST) while the server "
			"end is ESTABLISHED with empty queues and nothing in flight: the RST never took effect, so "
			"nothing reached the library; not a library failure";
		tcp = 1;
	} else
		verdict = "UNCLASSIFIED: neither the peer's FIN nor its RST is known to have reached the server end";
	stress_log("  verdict for socket %d: %s", id, verdict);
	return tcp;
}

/* Every socket of `round` still open for the harness; fails unless all are TCP's doing, which
 * are then shut down (M_ABANDON) and counted. */
static void classify_stall(int round) {
	log_tcp_counters();
	struct socket_info *info = socket_server_info(ss);
	int top = atomic_load(&max_id), lost = 0, other = 0;
	for (int id = 1; id <= top; id++) {
		struct idrec *r = rec_of(id, 0);
		if (!r || !r->accepted || r->state == ST_CLOSED || r->round != round) continue;
		if (classify_open(id, r, info_find(info, id))) lost++;
		else other++;
	}
	socket_info_release(info);
	if (other || !lost)
		stress_fail("round %d: the server side did not settle after the load finished (%d sockets open "
			"for a reason other than TCP's, verdicts and state above)", round, other);
	for (int id = 1; id <= top; id++) {
		struct idrec *r = rec_of(id, 0);
		if (!r || !r->accepted || r->state == ST_CLOSED || r->round != round) continue;
		r->abandoned = 1;
		INC(tcp_lost_resets);
		printf("stress: TCP-classified: round %d, socket %d (peer 127.0.0.1:%u): the client's RST never "
			"reached the server end (kernel view above); shutting it down\n", round + 1, id, r->peer_port);
		for (int i = 2; i <= nsvc; i++) mailbox_push(i, msg_new(M_ABANDON, 0, id));
	}
}

/*
 * A client connection that made no progress for a long while, still open on the load side.
 * Always a failure, except when the client only waits for EOF or a reset (it sent a SHUTDOWN
 * frame), the harness saw the socket's CLOSE, the library has let it go, the server end is
 * gone without TIME_WAIT (an abortive close: RST) and the client end is ESTABLISHED with
 * nothing queued or in flight: the RST never took effect on the client. Returns 1 then.
 */
static int classify_client_stall(int round, unsigned port, const char *cstate) {
	unsigned lp = (unsigned)atomic_load(&listener_port);
	log_tcp_counters();
	int id = 0;
	struct idrec *r = NULL;
	for (int i = atomic_load(&max_id); i >= 1 && !id; i--) {
		r = rec_of(i, 0);
		if (r && r->accepted && r->round == round && r->peer_port == port) id = i;
	}
	struct socket_info *info = socket_server_info(ss);
	const struct socket_info *in = id ? info_find(info, id) : NULL;
	if (id) {
		stress_log("socket %d (peer 127.0.0.1:%u, client %s): harness %s, owner %d, %d close/shutdown calls, "
			"%d starts, %d answers, errors %u; results: %s", id, port, cstate, st_names[r->state], r->owner,
			atomic_load(&r->closes), atomic_load(&r->starts), r->answers, r->nerr, hist_text(r));
		log_library_view(id, in);
	} else {
		stress_log("no socket accepted in round %d has peer port %u", round, port);
	}
	tcp_view_print(lp, port);
	struct tcp_end se, ce;
	tcp_end_lookup(lp, port, &se);
	tcp_end_lookup(port, lp, &ce);
	int tcp = id && !strcmp(cstate, "wait-prefix") && r->state == ST_CLOSED && !in && !se.found && ce.found &&
		ce.state == TCPS_ESTABLISHED && ce.rxq == 0 && ce.txq == 0 && (ce.timer == 0 || ce.timer == 2);
	socket_info_release(info);
	stress_log("  verdict for the client on port %u: %s", port, tcp
		? "TCP: the server end closed abortively (gone without TIME_WAIT) after the harness's shutdown, "
		  "and the client end is ESTABLISHED with empty queues: the RST never took effect; not a library failure"
		: "a failure (see the kernel's and the library's view above)");
	return tcp;
}

static void wait_quiet(int round) {
	int64_t last = now_ms();
	struct quiet prev = { 0 };
	for (;;) {
		struct quiet q = quiet_now();
		if (q.accepted == q.closed && q.conns == 0 && q.forward == 0 && q.deferred == 0 && q.mem == 0 &&
			q.obj == 0 && q.info == 0)
			return;
		/* Progress is a change in anything but the services' connection counts: services keep
		 * handing idle sockets to each other (conns and forward move while one is in transit),
		 * which must not hide a socket that never closes. */
		q.conns = prev.conns;
		q.forward = prev.forward;
		if (memcmp(&q, &prev, sizeof q)) {
			if (cfg.verbose)
				stress_log("settling: accepted %llu closed %llu conns %d forward %d deferred %d mem %llu obj %llu "
					"info %d", (unsigned long long)q.accepted, (unsigned long long)q.closed, q.conns, q.forward,
					q.deferred, (unsigned long long)q.mem, (unsigned long long)q.obj, q.info);
			prev = q;
			last = now_ms();
		}
		if (now_ms() - last > stall_ms(20000)) {
			stress_log("round %d: the server side has not settled for %lld ms after the load finished:",
				round, (long long)(now_ms() - last));
			dump_state(round);
			classify_stall(round);
			last = now_ms();
		}
		struct timespec d = { 0, 10 * 1000 * 1000 };
		nanosleep(&d, NULL);
	}
}

static pid_t child;
static int ctl = -1;

static void wait_round_done(int round, char *line, size_t cap) {
	int64_t last = now_ms();
	uint64_t prog = GET(progress);
	for (;;) {
		int n = ctl_recv(ctl, line, cap, 1000);
		if (n > 0) {
			int r = -1;
			unsigned port = 0;
			char cstate[32];
			if (sscanf(line, "DONE %d", &r) == 1 && r == round) return;
			if (sscanf(line, "STALL %u %31s", &port, cstate) == 2) {
				stress_log("the load process reports a stalled connection from 127.0.0.1:%u (%s); the "
					"server side now:", port, cstate);
				dump_state(round);
				int tcp = classify_client_stall(round, port, cstate);
				if (tcp) INC(tcp_lost_server_resets);
				ctl_send(ctl, tcp ? "DUMPED tcp" : "DUMPED fail");
				continue;
			}
			stress_fail("unexpected line from the load process: '%s'", line);
		}
		if (n < 0) {
			int st = 0;
			dump_state(round);
			pid_t w = waitpid(child, &st, 0);
			child = 0;
			stress_kill_on_fail = 0;
			stress_fail("the load process failed (%s %d) in round %d; its message is above",
				w > 0 && WIFSIGNALED(st) ? "signal" : "exit status",
				w > 0 && WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), round);
		}
		uint64_t p = GET(progress);
		if (p != prog) {
			prog = p;
			last = now_ms();
		}
		if (now_ms() - last > stall_ms(60000)) {
			dump_state(round);
			log_tcp_counters();
			tcp_view_port((unsigned)atomic_load(&listener_port), 40);
			stress_log("the load process's threads (is one stuck, or spinning?):");
			proc_threads_print(child);
			stress_log("this process's threads:");
			proc_threads_print(getpid());
			stress_fail("round %d: no poll result for %lld ms while the load is running", round,
				(long long)(now_ms() - last));
		}
	}
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
	parse_config(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	track_init();

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)cfg.conns + 256)
		stress_fail("RLIMIT_NOFILE is %llu: too low for %d connections (lower STRESS_CONNS)",
			(unsigned long long)rl.rlim_cur, cfg.conns);

	printf("stress: seed %#llx (rerun with STRESS_SEED=%#llx), %g s, %d rounds, %d connections, "
		"%d workers, %d services, %d client threads, frames up to %u bytes\n",
		(unsigned long long)cfg.seed, (unsigned long long)cfg.seed, cfg.seconds, cfg.rounds, cfg.conns,
		cfg.workers, cfg.services, cfg.client_threads, cfg.max_frame);
	int64_t t_start = now_ms();
	tcp_counters_read(tcp_counters0);

	int sv[2];
	FAIL_IF(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0, "socketpair: %s", strerror(errno));
	fflush(NULL);
	child = fork();
	FAIL_IF(child < 0, "fork: %s", strerror(errno));
	if (child == 0) {
		stress_role = "stress[load]";
		close(sv[0]);
		struct load_config lc = { cfg.seed, cfg.conns, cfg.client_threads, cfg.max_frame, cfg.max_frames,
			cfg.scale, cfg.hog_pct, cfg.lose_reset_pct, cfg.verbose };
		int st = load_main(sv[1], &lc);
		fflush(NULL);
		_exit(st);
	}
	stress_kill_on_fail = child;
	close(sv[1]);
	ctl = sv[0];

	ss = socket_server_create(0);
	FAIL_IF(!ss, "socket_server_create failed");
	socket_server_userobject(ss, &stress_soi);

	nsvc = cfg.services + 1;
	services = calloc((size_t)nsvc + 1, sizeof *services);
	FAIL_IF(!services, "calloc");
	struct rng sr = { cfg.seed ^ 0x5e41ce5ULL };
	for (int i = 1; i <= nsvc; i++) {
		services[i].idx = i;
		services[i].rng.s = rng_next(&sr);
		pthread_mutex_init(&services[i].mu, NULL);
	}
	/* The first block of id records exists before any thread that uses it. */
	rec_of(1, 1);
	pthread_t st, tt, it, *wt = calloc((size_t)cfg.workers, sizeof *wt);
	FAIL_IF(!wt, "calloc");
	FAIL_IF(pthread_create(&st, NULL, socket_thread, NULL), "pthread_create");
	for (int i = 0; i < cfg.workers; i++) FAIL_IF(pthread_create(&wt[i], NULL, worker_main, NULL), "pthread_create");

	int lid = socket_server_listen(ss, GATE, "127.0.0.1", 0, 4096);
	FAIL_IF(lid <= 0, "socket_server_listen returned %d", lid);
	int64_t t0 = now_ms();
	while (!atomic_load(&listener_port)) {
		FAIL_IF(now_ms() - t0 > stall_ms(10000), "no OPEN for the listener");
		struct timespec d = { 0, 1000 * 1000 };
		nanosleep(&d, NULL);
	}
	FAIL_IF(atomic_load(&listener_id) != lid, "listen returned %d, OPEN came for %d", lid, atomic_load(&listener_id));
	atomic_fetch_add(&rec_of(lid, 1)->starts, 1);
	socket_server_start(ss, GATE, lid);
	while (!atomic_load(&listener_started)) {
		FAIL_IF(now_ms() - t0 > stall_ms(10000), "no OPEN \"start\" for the listener");
		struct timespec d = { 0, 1000 * 1000 };
		nanosleep(&d, NULL);
	}
	FAIL_IF(pthread_create(&tt, NULL, timer_thread, NULL), "pthread_create");
	FAIL_IF(pthread_create(&it, NULL, info_thread, NULL), "pthread_create");
	int fds0 = count_fds();
	FAIL_IF(ctl_send(ctl, "PORT %d", atomic_load(&listener_port)), "control channel");

	/* Each round gets an equal share of the traffic time; the rest of the budget is for
	 * setting up and winding down. */
	long traffic_ms = (long)(cfg.seconds * 1000 * 0.7 / cfg.rounds);
	if (traffic_ms < 200) traffic_ms = 200;
	uint64_t *heap = calloc((size_t)cfg.rounds, sizeof *heap);
	int *ids = calloc((size_t)cfg.rounds, sizeof *ids);
	uint64_t prev_accepted = 0;
	FAIL_IF(!heap || !ids, "calloc");
	for (int r = 0; r < cfg.rounds; r++) {
		int64_t rs = now_ms();
		atomic_store(&cur_round, r);
		char line[512];
		FAIL_IF(ctl_send(ctl, "ROUND %d %ld", r, traffic_ms), "control channel");
		wait_round_done(r, line, sizeof line);
		int64_t load_done = now_ms();
		wait_quiet(r);
		object_reap();
		heap[r] = heap_in_use();
		ids[r] = atomic_load(&max_id);
		int fds = count_fds();
		FAIL_IF(fds != fds0, "round %d: %d open descriptors after every socket closed, %d before the "
			"first round (descriptor leak)", r, fds, fds0);
		uint64_t acc = GET(accepted);
		printf("stress: round %d/%d in %.1f s (load %.1f s, settling %.1f s): %llu sockets accepted and "
			"closed; load: %s; heap in use %.2f MiB, rss %.1f MiB, fds %d\n", r + 1, cfg.rounds,
			(double)(now_ms() - rs) / 1000, (double)(load_done - rs) / 1000,
			(double)(now_ms() - load_done) / 1000,
			(unsigned long long)(acc - prev_accepted), line + 5, (double)heap[r] / 1048576.0,
			(double)rss_bytes() / 1048576.0, fds);
		prev_accepted = acc;
	}

	FAIL_IF(ctl_send(ctl, "QUIT"), "control channel");
	int status = 0;
	t0 = now_ms();
	while (waitpid(child, &status, WNOHANG) == 0) {
		FAIL_IF(now_ms() - t0 > stall_ms(30000), "the load process did not exit");
		struct timespec d = { 0, 5 * 1000 * 1000 };
		nanosleep(&d, NULL);
	}
	child = 0;
	stress_kill_on_fail = 0;
	FAIL_IF(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "the load process ended with status %#x", status);
	close(ctl);

	atomic_store(&aux_stop, 1);
	pthread_join(tt, NULL);
	pthread_join(it, NULL);
	socket_server_exit(ss);
	pthread_join(st, NULL);
	pthread_mutex_lock(&gq_mu);
	gq_stop = 1;
	pthread_cond_broadcast(&gq_cv);
	pthread_mutex_unlock(&gq_mu);
	for (int i = 0; i < cfg.workers; i++) pthread_join(wt[i], NULL);
	socket_server_release(ss);
	ss = NULL;
	object_reap();

	FAIL_IF(track_memory_live() != 0, "%llu MEMORY buffers handed to the library were never freed "
		"(SPEC 1: freed exactly once on every path)", (unsigned long long)track_memory_live());
	FAIL_IF(object_live() != 0, "%llu OBJECT buffers never got their free callback (SPEC 7)",
		(unsigned long long)object_live());

	/* No growth across rounds: the first round may grow tables for good; from the second on
	 * the heap in use once every socket is gone must stay flat. The library's slot table
	 * allocates slots 256 at a time for the slots (id % 65536) that ids reach, and keeps them
	 * (README: at most 65536 slots, about 24 bytes each), so allow 40 bytes per slot first
	 * reached after round 2, plus 1 MiB for allocator caches (glibc's tcache counts as used). */
	int last = cfg.rounds - 1;
	uint64_t new_slots = (uint64_t)(ids[last] < 65536 ? ids[last] : 65536) -
		(uint64_t)(ids[1] < 65536 ? ids[1] : 65536);
	uint64_t allowed = (1u << 20) + new_slots * 40;
	if (heap[1] && heap[last] > heap[1] + allowed)
		stress_fail("heap in use grew from %llu bytes after round 2 to %llu after round %d, %llu more than "
			"the %llu allowed for %llu new slots: memory leaks across rounds (%llu sockets in rounds 3..%d)",
			(unsigned long long)heap[1], (unsigned long long)heap[last], cfg.rounds,
			(unsigned long long)(heap[last] - heap[1] - allowed), (unsigned long long)allowed,
			(unsigned long long)new_slots, (unsigned long long)(GET(accepted) - (uint64_t)ids[1]), cfg.rounds);
	if (!heap[1]) printf("stress: heap accounting unavailable here (valgrind?): growth not checked\n");

	printf("stress: results: DATA %llu CLOSE %llu OPEN %llu ACCEPT %llu ERR %llu WARNING %llu\n",
		(unsigned long long)GET(results[SOCKET_DATA]), (unsigned long long)GET(results[SOCKET_CLOSE]),
		(unsigned long long)GET(results[SOCKET_OPEN]), (unsigned long long)GET(results[SOCKET_ACCEPT]),
		(unsigned long long)GET(results[SOCKET_ERR]), (unsigned long long)GET(results[SOCKET_WARNING]));
	printf("stress: sends MEMORY %llu OBJECT %llu RAWPOINTER %llu (low priority %llu, refused %llu), "
		"sends after CLOSE %llu; hand-overs %llu (+%llu refused), pauses %llu, resumes %llu, deferred "
		"starts %llu, gate shutdowns %llu, socket_info calls %llu (%llu entries), stray results %llu\n",
		(unsigned long long)GET(sends[0]), (unsigned long long)GET(sends[1]), (unsigned long long)GET(sends[2]),
		(unsigned long long)GET(sends_low), (unsigned long long)GET(send_refused), (unsigned long long)GET(poison),
		(unsigned long long)GET(handoffs), (unsigned long long)GET(handoffs_failed),
		(unsigned long long)GET(pauses), (unsigned long long)GET(resumes),
		(unsigned long long)GET(deferred_starts), (unsigned long long)GET(gate_shutdowns),
		(unsigned long long)GET(info_calls), (unsigned long long)GET(info_entries),
		(unsigned long long)GET(orphans));
	printf("stress: MEMORY buffers handed %llu, freed by the library %llu; OBJECTs %llu, freed %llu; "
		"heap after each round:", (unsigned long long)track_memory_handed(),
		(unsigned long long)track_memory_freed(), (unsigned long long)object_created(),
		(unsigned long long)object_freed());
	for (int r = 0; r < cfg.rounds; r++) printf(" %.2f", (double)heap[r] / 1048576.0);
	printf(" MiB; %.1f s in all\n", (double)(now_ms() - t_start) / 1000);
	printf("stress: classified TCP non-failures (not the library's): %llu client RSTs the server end never "
		"applied, %llu server RSTs the client end never applied\n",
		(unsigned long long)GET(tcp_lost_resets), (unsigned long long)GET(tcp_lost_server_resets));
	printf("stress: 1 passed, 0 failed\n");

	for (int i = 1; i <= nsvc; i++) {
		struct service *s = &services[i];
		FAIL_IF(s->head || s->conns.n || s->forward.n || s->deferred.n, "service %d not empty at exit", i);
		free(s->snap);
		pthread_mutex_destroy(&s->mu);
	}
	free(services);
	free(wt);
	free(heap);
	free(ids);
	free(info_ids);
	for (int i = 0; i < IDCHUNKS; i++)
		if (atomic_load(&idchunks[i]))
			munmap(atomic_load(&idchunks[i]), ((size_t)1 << IDCHUNK_BITS) * sizeof(struct idrec));
	return 0;
}
