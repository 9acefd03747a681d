/*
 * The load side of the stress harness, run in a forked process: client threads keep `conns`
 * loopback connections busy with framed, seeded traffic and check every echoed byte.
 *
 * Each connection sends 1..max_frames DATA frames (payload 1 byte .. max_frame, log-uniform)
 * written in random-sized chunks, then ends in one of five ways:
 *   CLOSE     a CLOSE frame: the service echoes everything, then socket_server_close;
 *             the client must read its whole stream back, then EOF.
 *   HALF      shutdown(SHUT_WR): the service sees CLOSE (peer FIN), echoes the rest, closes;
 *             the client must read its whole stream back, then EOF.
 *   SHUTDOWN  a SHUTDOWN frame: the service calls socket_server_shutdown (queued data dropped);
 *             the client accepts any correct subset, then EOF or a reset.
 *   RESET     SO_LINGER 0 + close at a random point of the last frame (RST).
 *   VANISH    close() after the last byte, without reading the echo.
 * A connection never sees EOF or a reset while it is still sending; any byte the service echoes
 * must equal the byte at that offset of the client's stream, each priority's frames come in
 * stream order, and no byte is echoed twice.
 */
#include "stress.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { C_CONNECTING, C_ACTIVE, C_WAIT_FULL, C_WAIT_PREFIX, C_DONE };
enum { END_CLOSE, END_HALF, END_SHUTDOWN, END_RESET, END_VANISH, END__N };
static const char *const end_names[END__N] = { "close", "half-close", "shutdown", "reset", "vanish" };
static const char *const state_names[] = { "connecting", "active", "wait-full-echo", "wait-prefix", "done" };

#define CHUNK_MAX (256 * 1024)
#define READ_MAX (64 * 1024)

struct frame {
	uint64_t off;
	uint8_t hdr[CFRAME_HDR];
};

struct ival {
	uint64_t a, b;
};

struct cconn {
	int fd;
	int state;
	int ending;
	int hog;
	int lose_reset; /* --lose-resets: end by a reset that never leaves, once all is echoed */
	uint16_t lport;
	uint32_t interest;
	uint64_t seed;
	struct rng rng;
	int64_t last_progress;
	int64_t read_pause_until, next_pause_at;
	/* sending */
	uint64_t sent, frame_end, reset_at, window;
	int frames_left;
	int final_sent;
	struct frame *frames;
	int nframes, capframes;
	/* receiving */
	uint8_t eh[EFRAME_HDR];
	int eh_got;
	int ep_prio;
	uint32_t ep_len, ep_left;
	uint64_t ep_start, ep_off;
	uint64_t last_end[2];
	uint64_t contig, covered, echo_frames;
	struct ival *pend;
	int npend, cappend;
};

struct lstats {
	uint64_t opened, done, bytes_sent, bytes_echoed, echo_frames, ends[END__N], lost_resets;
};

struct lthread {
	int index;
	int target;
	uint64_t seed;
	int64_t deadline;
	const struct load_config *cfg;
	struct sockaddr_in addr;
	struct lstats st;
	int winding;
	pthread_t tid;
};

static int ctl_fd = -1;

/* On a stall: let the server process print its view (its own, the library's and the kernel's)
 * while the connection is still open (our exit would reset it), and classify it. Returns 1 when
 * the server found it to be TCP's doing, not a failure. */
static int stall_dump(const struct cconn *c) {
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	char line[64] = "";
	pthread_mutex_lock(&mu);
	if (ctl_send(ctl_fd, "STALL %u %s", c->lport, state_names[c->state]) == 0)
		ctl_recv(ctl_fd, line, sizeof line, 60000);
	pthread_mutex_unlock(&mu);
	return strcmp(line, "DUMPED tcp") == 0;
}

static __thread struct scratch tbuf;

/* ---------------------------------------------------------------- the expected stream */

/* Bytes [pos, pos+n) of what this connection wrote: its stream with frame headers on top. */
static void expected_bytes(const struct cconn *c, uint64_t pos, uint8_t *out, size_t n) {
	stream_fill(c->seed, pos, out, n);
	/* First frame whose header may reach pos. */
	int lo = 0, hi = c->nframes;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (c->frames[mid].off + CFRAME_HDR <= pos) lo = mid + 1;
		else hi = mid;
	}
	for (int i = lo; i < c->nframes && c->frames[i].off < pos + n; i++) {
		for (int k = 0; k < CFRAME_HDR; k++) {
			uint64_t at = c->frames[i].off + (uint64_t)k;
			if (at >= pos && at < pos + n) out[at - pos] = c->frames[i].hdr[k];
		}
	}
}

static void describe(const struct cconn *c, char *out, size_t cap) {
	snprintf(out, cap, "conn 127.0.0.1:%u (seed %#llx, %s%s, ends by %s): sent %llu, echoed %llu "
		"(contiguous %llu, %d pending intervals), %llu echo frames, parser %s",
		c->lport, (unsigned long long)c->seed, state_names[c->state], c->hog ? ", hog" : "",
		end_names[c->ending], (unsigned long long)c->sent, (unsigned long long)c->covered,
		(unsigned long long)c->contig, c->npend, (unsigned long long)c->echo_frames,
		c->eh_got == 0 ? "between frames" : c->eh_got < EFRAME_HDR ? "inside a header" : "inside a payload");
}

#define CFAIL(c, ...) do { \
	char what_[512], who_[512]; \
	snprintf(what_, sizeof what_, __VA_ARGS__); \
	describe((c), who_, sizeof who_); \
	stress_fail("%s; %s", what_, who_); \
} while (0)

static void add_interval(struct cconn *c, uint64_t a, uint64_t b) {
	if (a < c->contig)
		CFAIL(c, "bytes [%llu,%llu) echoed twice (already had everything below %llu)",
			(unsigned long long)a, (unsigned long long)b, (unsigned long long)c->contig);
	int i = 0;
	while (i < c->npend && c->pend[i].a < a) i++;
	if ((i > 0 && c->pend[i - 1].b > a) || (i < c->npend && c->pend[i].a < b))
		CFAIL(c, "bytes [%llu,%llu) echoed twice (overlap with an earlier echo frame)",
			(unsigned long long)a, (unsigned long long)b);
	if (a == c->contig) {
		c->contig = b;
		while (c->npend > 0 && c->pend[0].a == c->contig) {
			c->contig = c->pend[0].b;
			memmove(c->pend, c->pend + 1, (size_t)(c->npend - 1) * sizeof *c->pend);
			c->npend--;
		}
	} else {
		if (c->npend == c->cappend) {
			c->cappend = c->cappend ? c->cappend * 2 : 16;
			c->pend = realloc(c->pend, (size_t)c->cappend * sizeof *c->pend);
			FAIL_IF(!c->pend, "realloc");
		}
		memmove(c->pend + i + 1, c->pend + i, (size_t)(c->npend - i) * sizeof *c->pend);
		c->pend[i] = (struct ival){ a, b };
		c->npend++;
	}
	c->covered += b - a;
}

static void on_echo(struct cconn *c, const uint8_t *p, size_t n) {
	while (n > 0) {
		if (c->eh_got < EFRAME_HDR) {
			size_t k = (size_t)(EFRAME_HDR - c->eh_got) < n ? (size_t)(EFRAME_HDR - c->eh_got) : n;
			memcpy(c->eh + c->eh_got, p, k);
			c->eh_got += (int)k;
			p += k;
			n -= k;
			if (c->eh_got < EFRAME_HDR) return;
			const uint8_t *h = c->eh;
			uint32_t len = get_le32(h + 4);
			uint64_t off = get_le64(h + 8);
			if (h[0] != EFRAME_M0 || h[1] != EFRAME_M1 || h[2] > 1)
				CFAIL(c, "garbage where an echo frame header should start "
					"(%02x %02x %02x %02x ...): the echo stream lost or duplicated bytes",
					h[0], h[1], h[2], h[3]);
			if (h[3] == EK_POISON)
				CFAIL(c, "received bytes the service sent after CLOSE was reported for the "
					"socket it had closed (SPEC 4/7: such sends are dropped)");
			if (h[3] != EK_ECHO || len == 0)
				CFAIL(c, "bad echo frame header (kind %u, len %u)", h[3], len);
			if (off + len > c->sent)
				CFAIL(c, "echo frame [%llu,+%u) covers bytes never sent", (unsigned long long)off, len);
			if (off < c->last_end[h[2]])
				CFAIL(c, "%s priority echo frame at %llu after one ending at %llu: same-priority "
					"sends overtook each other or were duplicated (SPEC 7)",
					h[2] ? "low" : "high", (unsigned long long)off,
					(unsigned long long)c->last_end[h[2]]);
			c->last_end[h[2]] = off + len;
			c->ep_prio = h[2];
			c->ep_len = c->ep_left = len;
			c->ep_start = c->ep_off = off;
			continue;
		}
		size_t k = c->ep_left < n ? c->ep_left : n;
		uint8_t *want = scratch_get(&tbuf, k);
		expected_bytes(c, c->ep_off, want, k);
		if (memcmp(want, p, k) != 0) {
			size_t i = 0;
			while (want[i] == p[i]) i++;
			CFAIL(c, "echoed byte at stream offset %llu is %#04x, sent %#04x (%s priority "
				"echo frame [%llu,+%u))", (unsigned long long)(c->ep_off + i), p[i], want[i],
				c->ep_prio ? "low" : "high", (unsigned long long)c->ep_start, c->ep_len);
		}
		c->ep_off += k;
		c->ep_left -= (uint32_t)k;
		p += k;
		n -= k;
		if (c->ep_left == 0) {
			add_interval(c, c->ep_start, c->ep_start + c->ep_len);
			c->echo_frames++;
			c->eh_got = 0;
		}
	}
}

/* ---------------------------------------------------------------- one connection */

static void conn_free(struct lthread *t, struct cconn *c, int ep) {
	(void)t;
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->state = C_DONE;
}

static void conn_done(struct lthread *t, struct cconn *c, int ep) {
	t->st.done++;
	t->st.ends[c->ending]++;
	t->st.bytes_sent += c->sent;
	t->st.bytes_echoed += c->covered;
	t->st.echo_frames += c->echo_frames;
	conn_free(t, c, ep);
}

static void conn_reset(struct lthread *t, struct cconn *c, int ep) {
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	if (c->lose_reset) {
		/* A socket closed in repair mode vanishes without sending its RST, as if TCP had
		 * dropped it. */
		int one = 1;
		FAIL_IF(setsockopt(c->fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) != 0,
			"setsockopt(TCP_REPAIR): %s (--lose-resets needs CAP_NET_ADMIN)", strerror(errno));
	}
	conn_done(t, c, ep);
}

static void new_frame(struct cconn *c, int type, uint32_t len) {
	if (c->nframes == c->capframes) {
		c->capframes = c->capframes ? c->capframes * 2 : 8;
		c->frames = realloc(c->frames, (size_t)c->capframes * sizeof *c->frames);
		FAIL_IF(!c->frames, "realloc");
	}
	struct frame *f = &c->frames[c->nframes++];
	f->off = c->sent;
	f->hdr[0] = CFRAME_MAGIC;
	f->hdr[1] = (uint8_t)type;
	f->hdr[2] = f->hdr[3] = 0;
	put_le32(f->hdr + 4, len);
	c->frame_end = c->sent + CFRAME_HDR + len;
}

/* Writes as much as the window and the socket allow. */
static void pump_write(struct lthread *t, struct cconn *c, int ep, int winding) {
	while (c->state == C_ACTIVE) {
		if (c->sent >= c->reset_at) {
			conn_reset(t, c, ep);
			return;
		}
		if (c->sent == c->frame_end) {
			if (winding) c->frames_left = 0;
			if (c->frames_left > 0) {
				c->frames_left--;
				uint32_t max = t->cfg->max_frame;
				/* A hog sends big frames, so its echo queues up while it is not reading. */
				uint32_t len = c->hog ? max - (uint32_t)rng_below(&c->rng, max / 2 + 1)
					: (uint32_t)rng_logsize(&c->rng, max);
				new_frame(c, CF_DATA, len);
				if (c->frames_left == 0 && c->ending == END_RESET && !c->lose_reset)
					c->reset_at = c->sent + rng_below(&c->rng, CFRAME_HDR + (uint64_t)len + 1);
				continue;
			}
			if (c->final_sent) {
				c->state = c->ending == END_CLOSE ? C_WAIT_FULL : C_WAIT_PREFIX;
				return;
			}
			c->final_sent = 1;
			switch (c->ending) {
			case END_CLOSE: new_frame(c, CF_CLOSE, 0); continue;
			case END_SHUTDOWN: new_frame(c, CF_SHUTDOWN, 0); continue;
			case END_HALF:
				FAIL_IF(shutdown(c->fd, SHUT_WR) != 0, "shutdown(SHUT_WR): %s", strerror(errno));
				c->state = C_WAIT_FULL;
				return;
			case END_RESET:
				if (c->lose_reset) {
					c->state = C_WAIT_FULL; /* pump_read resets it once all is echoed */
					return;
				}
				conn_reset(t, c, ep);
				return;
			default: conn_done(t, c, ep); return; /* vanish */
			}
		}
		if (c->sent - c->covered >= c->window) return; /* wait for the echo */
		uint64_t n = c->frame_end - c->sent;
		uint64_t room = c->window - (c->sent - c->covered);
		uint64_t chunk = rng_logsize(&c->rng, CHUNK_MAX);
		if (n > room) n = room;
		if (n > chunk) n = chunk;
		if (c->reset_at > c->sent && n > c->reset_at - c->sent) n = c->reset_at - c->sent;
		uint8_t *buf = scratch_get(&tbuf, n);
		expected_bytes(c, c->sent, buf, n);
		ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) return;
			CFAIL(c, "send failed: %s (the server side dropped a connection it should keep)",
				strerror(errno));
		}
		c->sent += (uint64_t)w;
		c->last_progress = now_ms();
		if ((uint64_t)w < n) return;
	}
}

static void pump_read(struct lthread *t, struct cconn *c, int ep) {
	uint8_t buf[READ_MAX];
	while (c->state == C_ACTIVE || c->state == C_WAIT_FULL || c->state == C_WAIT_PREFIX) {
		if (c->read_pause_until) return;
		ssize_t r = recv(c->fd, buf, sizeof buf, 0);
		if (r > 0) {
			on_echo(c, buf, (size_t)r);
			if (c->lose_reset && c->state == C_WAIT_FULL && c->covered == c->sent) {
				/* The service has nothing left to send: a lost RST leaves its socket as it is. */
				conn_reset(t, c, ep);
				return;
			}
			int64_t now = now_ms();
			c->last_progress = now;
			/* Stop reading now and then (a hog for longer) so the service's queue backs up:
			 * WARNINGs, pauses and partial writes. Not while winding down. */
			if (!c->next_pause_at) {
				c->next_pause_at = now + 20 + (int64_t)rng_below(&c->rng, c->hog ? 200 : 500);
			} else if (now >= c->next_pause_at && !t->winding) {
				c->read_pause_until = now + (c->hog ? 200 + (int64_t)rng_below(&c->rng, 600)
					: 5 + (int64_t)rng_below(&c->rng, 100));
				c->next_pause_at = c->read_pause_until + 20 + (int64_t)rng_below(&c->rng, c->hog ? 200 : 500);
			}
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
		int err = r < 0 ? errno : 0;
		if (c->state == C_WAIT_PREFIX) {
			if (err && err != ECONNRESET) CFAIL(c, "recv: %s", strerror(err));
			conn_done(t, c, ep);
			return;
		}
		if (c->state == C_ACTIVE)
			CFAIL(c, "%s while still sending: the service never closes such a connection",
				err ? strerror(err) : "EOF");
		/* C_WAIT_FULL */
		if (err) CFAIL(c, "%s instead of EOF after the whole echo", strerror(err));
		if (c->covered != c->sent || c->npend || c->eh_got)
			CFAIL(c, "EOF before the whole stream was echoed: %llu of %llu bytes",
				(unsigned long long)c->covered, (unsigned long long)c->sent);
		conn_done(t, c, ep);
		return;
	}
}

static void update_interest(struct cconn *c, int ep) {
	if (c->state == C_DONE) return;
	uint32_t want = 0;
	if (c->state == C_CONNECTING) want = EPOLLOUT;
	else {
		if (!c->read_pause_until) want |= EPOLLIN;
		if (c->state == C_ACTIVE && c->sent - c->covered < c->window) want |= EPOLLOUT;
	}
	if (want != c->interest) {
		struct epoll_event ev = { .events = want, .data.ptr = c };
		FAIL_IF(epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0, "epoll_ctl: %s", strerror(errno));
		c->interest = want;
	}
}

static struct cconn *conn_open(struct lthread *t, int ep, struct rng *tr) {
	struct cconn *c = calloc(1, sizeof *c);
	FAIL_IF(!c, "calloc");
	c->seed = rng_next(tr);
	c->rng.s = c->seed ^ 0x5eed;
	c->hog = rng_pct(&c->rng, (unsigned)t->cfg->hog_pct);
	int w = (int)rng_below(&c->rng, 100);
	c->ending = w < 35 ? END_CLOSE : w < 60 ? END_HALF : w < 70 ? END_SHUTDOWN : w < 90 ? END_RESET : END_VANISH;
	/* Self-check of the stall classification (--lose-resets). */
	if (c->ending == END_RESET && t->cfg->lose_reset_pct) c->lose_reset = rng_pct(&c->rng, (unsigned)t->cfg->lose_reset_pct);
	c->frames_left = 1 + (int)rng_below(&c->rng, (uint64_t)t->cfg->max_frames);
	if (c->hog) c->frames_left += t->cfg->max_frames;
	c->window = c->hog ? (4u << 20) + rng_below(&c->rng, 8u << 20) : (256u << 10) + rng_below(&c->rng, 768u << 10);
	c->reset_at = UINT64_MAX;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FAIL_IF(c->fd < 0, "socket: %s", strerror(errno));
	if (c->hog) {
		/* Small enough to stop the kernel's receive autotuning (so the service's queue backs
		 * up), but not below loopback's 64 KiB MSS: a receive window smaller than one segment
		 * leaves TCP waiting on its persist timer for tens of seconds. */
		int small = (128 << 10) << rng_below(&c->rng, 2);
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	}
	if (rng_pct(&c->rng, 50)) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	int r = connect(c->fd, (struct sockaddr *)&t->addr, sizeof t->addr);
	FAIL_IF(r != 0 && errno != EINPROGRESS, "connect: %s", strerror(errno));
	struct sockaddr_in me;
	socklen_t ml = sizeof me;
	getsockname(c->fd, (struct sockaddr *)&me, &ml);
	c->lport = ntohs(me.sin_port);
	c->state = C_CONNECTING;
	c->interest = EPOLLOUT;
	c->last_progress = now_ms();
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	FAIL_IF(epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0, "epoll_ctl: %s", strerror(errno));
	t->st.opened++;
	return c;
}

static void *lthread_main(void *arg) {
	struct lthread *t = arg;
	const struct load_config *cfg = t->cfg;
	struct rng tr = { t->seed };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	FAIL_IF(ep < 0, "epoll_create1: %s", strerror(errno));
	struct cconn **conns = calloc((size_t)t->target, sizeof *conns);
	FAIL_IF(!conns, "calloc");
	int64_t stall_ms = (int64_t)(30000 * cfg->scale);
	int winding = 0, live = 0;
	int64_t last_scan = 0, last_report = now_ms();
	struct epoll_event evs[256];
	for (;;) {
		int64_t now = now_ms();
		if (!winding && now >= t->deadline) t->winding = winding = 1;
		/* Keep `target` connections open until the round's deadline; ramp up gradually so
		 * the listen backlog never overflows. */
		for (int i = 0, opened = 0; !winding && i < t->target && opened < 64; i++) {
			if (conns[i]) continue;
			conns[i] = conn_open(t, ep, &tr);
			live++;
			opened++;
		}
		if (winding && live == 0) break;
		if (cfg->verbose && now - last_report >= 1000) {
			last_report = now;
			stress_log("thread %d: %d live, %llu opened, %llu done%s", t->index, live,
				(unsigned long long)t->st.opened, (unsigned long long)t->st.done, winding ? ", winding down" : "");
		}
		int n = epoll_wait(ep, evs, 256, 5);
		FAIL_IF(n < 0 && errno != EINTR, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;
			if (c->state == C_DONE) continue;
			if (c->state == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof err;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) CFAIL(c, "connect to the harness listener failed: %s", strerror(err));
				if (!(evs[i].events & EPOLLOUT)) continue;
				c->state = C_ACTIVE;
				c->last_progress = now_ms();
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) pump_read(t, c, ep);
			pump_write(t, c, ep, winding);
			update_interest(c, ep);
		}
		now = now_ms();
		if (now - last_scan >= 5) {
			last_scan = now;
			for (int i = 0; i < t->target; i++) {
				struct cconn *c = conns[i];
				if (!c) continue;
				if (c->state == C_DONE) {
					free(c->frames);
					free(c->pend);
					free(c);
					conns[i] = NULL;
					live--;
					continue;
				}
				if (c->read_pause_until && now >= c->read_pause_until) {
					c->read_pause_until = 0;
					pump_read(t, c, ep);
				}
				if (c->state == C_ACTIVE) pump_write(t, c, ep, winding);
				update_interest(c, ep);
				if (c->state != C_DONE && !c->read_pause_until && now - c->last_progress > stall_ms) {
					if (stall_dump(c) && c->state == C_WAIT_PREFIX) {
						/* The server's RST never took effect here: as good as the reset
						 * this ending allows for. */
						t->st.lost_resets++;
						conn_done(t, c, ep);
						continue;
					}
					CFAIL(c, "no progress for %lld ms", (long long)(now - c->last_progress));
				}
			}
		}
	}
	free(conns);
	close(ep);
	scratch_free(&tbuf);
	return NULL;
}

int load_main(int ctl, const struct load_config *cfg) {
	char line[256];
	int port = 0;
	ctl_fd = ctl;
	if (ctl_recv(ctl, line, sizeof line, -1) <= 0 || sscanf(line, "PORT %d", &port) != 1)
		stress_fail("bad or missing PORT line from the server process");
	struct rng seeds = { cfg->seed ^ 0x10adULL };
	for (;;) {
		int n = ctl_recv(ctl, line, sizeof line, -1);
		if (n <= 0) stress_fail("server process went away");
		if (strcmp(line, "QUIT") == 0) return 0;
		int round = 0;
		long ms = 0;
		if (sscanf(line, "ROUND %d %ld", &round, &ms) != 2) stress_fail("bad control line '%s'", line);
		int nt = cfg->threads;
		struct lthread *ts = calloc((size_t)nt, sizeof *ts);
		FAIL_IF(!ts, "calloc");
		int64_t deadline = now_ms() + ms;
		for (int i = 0; i < nt; i++) {
			struct lthread *t = &ts[i];
			t->index = i;
			t->target = cfg->conns / nt + (i < cfg->conns % nt);
			t->seed = rng_next(&seeds);
			t->deadline = deadline;
			t->cfg = cfg;
			t->addr.sin_family = AF_INET;
			t->addr.sin_port = htons((uint16_t)port);
			t->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			FAIL_IF(pthread_create(&t->tid, NULL, lthread_main, t) != 0, "pthread_create");
		}
		struct lstats sum = { 0 };
		for (int i = 0; i < nt; i++) {
			pthread_join(ts[i].tid, NULL);
			sum.opened += ts[i].st.opened;
			sum.done += ts[i].st.done;
			sum.bytes_sent += ts[i].st.bytes_sent;
			sum.bytes_echoed += ts[i].st.bytes_echoed;
			sum.echo_frames += ts[i].st.echo_frames;
			for (int e = 0; e < END__N; e++) sum.ends[e] += ts[i].st.ends[e];
			sum.lost_resets += ts[i].st.lost_resets;
		}
		free(ts);
		ctl_send(ctl, "DONE %d conns=%llu sent=%lluMiB echoed=%lluMiB echo_frames=%llu "
			"ends(close/half/shutdown/reset/vanish)=%llu/%llu/%llu/%llu/%llu lost-server-resets=%llu", round,
			(unsigned long long)sum.done, (unsigned long long)(sum.bytes_sent >> 20),
			(unsigned long long)(sum.bytes_echoed >> 20), (unsigned long long)sum.echo_frames,
			(unsigned long long)sum.ends[0], (unsigned long long)sum.ends[1],
			(unsigned long long)sum.ends[2], (unsigned long long)sum.ends[3],
			(unsigned long long)sum.ends[4], (unsigned long long)sum.lost_resets);
	}
}
