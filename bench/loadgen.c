/*
 * The load generator: a separate process with plain epoll sockets on 127.0.0.1, checking every
 * byte it gets back. The bench driver starts it (pinned to one CPU when taskset exists).
 *
 *   loadgen WORKLOAD TCP_PORT UDP_PORT [key=value ...]
 *     keys: seconds (timed workloads), conns, depth (echo messages in flight per connection),
 *           bytes (bulk total), count (flood, udp), concurrency (storm, idle connects in flight),
 *           window (udp datagrams in flight), limit (seconds before a phase counts as hung)
 *
 * Talks to the server through the driver: prints "srv CMD" and reads the server's one-line
 * answer on stdin ("srv mark" brackets the measured part). Ends with one line
 * "result ops=N secs=S [key=value ...]" and status 0, or "fail REASON" and status 1.
 */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (256 * 1024)
#define MAX_EVENTS 256

struct conn {
	int fd;
	uint32_t idx;
	int greeted;
	int closed;
	/* echo */
	uint32_t next_send, next_recv;
	unsigned char part[ECHO_MSG];
	int part_len;
	/* bytes waiting for the socket to be writable (echo messages, acks) */
	unsigned char *out;
	size_t out_len, out_cap;
	int want_out;
	/* bulk */
	uint64_t quota, sent, acked, recvd, last_ack;
	unsigned char rec[8];
	int rec_len;
};

static struct {
	int workload;
	int tcp_port, udp_port;
	double seconds;
	long conns, depth, concurrency, window;
	uint64_t bytes, count;
	double limit;
	int ep;
	struct conn *c;
	unsigned char *pattern;
	unsigned char rbuf[READ_BUF];
} G;

__attribute__((noreturn, format(printf, 1, 2))) static void
die(const char *fmt, ...) {
	va_list ap;
	char msg[512];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "loadgen: %s\n", msg);
	printf("fail %s\n", msg);
	fflush(stdout);
	exit(1);
}

/* One request to the server through the driver; returns its answer (static storage). */
static const char *
srv(const char *cmd) {
	static char line[512];
	printf("srv %s\n", cmd);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		die("no answer to '%s'", cmd);
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "ok", 2) != 0)
		die("server answered '%s' to '%s'", line, cmd);
	return line;
}

static uint64_t
deadline_after(double seconds) {
	return now_ns() + (uint64_t)(seconds * 1e9);
}

static double
secs_between(uint64_t a, uint64_t b) {
	return (double)(b - a) / 1e9;
}

static void
set_events(struct conn *c, uint32_t events) {
	struct epoll_event ev = { .events = events, .data.u64 = c->idx };
	if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void
conn_close(struct conn *c) {
	if (!c->closed) {
		close(c->fd);
		c->closed = 1;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_cap = 0;
}

static void
close_all(long n) {
	for (long i = 0; i < n; i++)
		conn_close(&G.c[i]);
}

/* Writes what it can, keeps the rest for EPOLLOUT (level-triggered connections only). */
static void
send_or_keep(struct conn *c, const void *p, size_t n) {
	if (c->out_len == 0) {
		ssize_t w = write(c->fd, p, n);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			die("write on connection %u: %s", c->idx, strerror(errno));
		if (w > 0) {
			p = (const unsigned char *)p + w;
			n -= (size_t)w;
		}
		if (n == 0)
			return;
	}
	if (c->out_len + n > c->out_cap) {
		c->out_cap = (c->out_len + n) * 2;
		c->out = realloc(c->out, c->out_cap);
		if (c->out == NULL)
			die("out of memory");
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	if (!c->want_out) {
		c->want_out = 1;
		set_events(c, EPOLLIN | EPOLLOUT);
	}
}

static void
flush_out(struct conn *c) {
	if (c->out_len > 0) {
		ssize_t w = write(c->fd, c->out, c->out_len);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			die("write on connection %u: %s", c->idx, strerror(errno));
		if (w > 0) {
			memmove(c->out, c->out + w, c->out_len - (size_t)w);
			c->out_len -= (size_t)w;
		}
	}
	if (c->out_len == 0 && c->want_out) {
		c->want_out = 0;
		set_events(c, EPOLLIN);
	}
}

static const char *
socket_error_text(int fd) {
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	return err ? strerror(err) : "hang-up";
}

static int
open_tcp(uint32_t idx) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)G.tcp_port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)
		die("connect %u: %s", idx, strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = idx };
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl add: %s", strerror(errno));
	return fd;
}

/*
 * Opens `total` connections, at most `inflight` of them waiting for the server's greeting at
 * a time. With `storm`, each one is closed as soon as its greeting arrives.
 */
static void
connect_phase(long total, long inflight, int storm) {
	struct epoll_event evs[MAX_EVENTS];
	long opened = 0, done = 0;
	uint64_t deadline = deadline_after(G.limit);
	while (done < total) {
		while (opened < total && opened - done < inflight) {
			struct conn *c = &G.c[opened];
			memset(c, 0, sizeof(*c));
			c->idx = (uint32_t)opened;
			c->fd = open_tcp(c->idx);
			opened++;
		}
		int n = epoll_wait(G.ep, evs, MAX_EVENTS, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct conn *c = &G.c[evs[i].data.u64];
			if (c->greeted || c->closed)
				continue;
			if (evs[i].events & EPOLLERR)
				die("connection %u: %s", c->idx, socket_error_text(c->fd));
			char g[16];
			ssize_t r = read(c->fd, g, sizeof(g));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0)
				die("connection %u ended before its greeting: %s", c->idx,
					r == 0 ? "EOF" : strerror(errno));
			if (r != 1 || g[0] != GREETING)
				die("connection %u: bad greeting", c->idx);
			c->greeted = 1;
			done++;
			if (storm)
				conn_close(c);
		}
		if (now_ns() > deadline)
			die("connect phase hung: %ld of %ld greeted", done, total);
	}
}

/* ---- workloads ---- */

static int
cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
run_pingpong(void) {
	connect_phase(1, 1, 0);
	struct conn *c = &G.c[0];
	/* One connection: a blocking socket waits with the least overhead. */
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = { 5, 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t cap = 1 << 20, n = 0;
	uint64_t *lat = malloc(cap * sizeof(uint64_t));
	unsigned char m[ECHO_MSG], back[ECHO_MSG];
	srv("mark");
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(G.seconds * 1e9), t = t0;
	while (t < end) {
		echo_msg_fill(m, 0, (uint32_t)n);
		if (write(c->fd, m, sizeof(m)) != (ssize_t)sizeof(m))
			die("pingpong write: %s", strerror(errno));
		size_t got = 0;
		while (got < sizeof(back)) {
			ssize_t r = read(c->fd, back + got, sizeof(back) - got);
			if (r <= 0)
				die("pingpong read: %s", r == 0 ? "EOF" : strerror(errno));
			got += (size_t)r;
		}
		if (memcmp(m, back, sizeof(m)) != 0)
			die("pingpong: echo %zu differs", n);
		uint64_t t1 = now_ns();
		if (n == cap) {
			cap *= 2;
			lat = realloc(lat, cap * sizeof(uint64_t));
			if (lat == NULL)
				die("out of memory");
		}
		lat[n++] = t1 - t;
		t = t1;
	}
	srv("mark");
	conn_close(c);
	srv("settle");
	qsort(lat, n, sizeof(uint64_t), cmp_u64);
	printf("result ops=%zu secs=%.6f p50_us=%.2f p99_us=%.2f p999_us=%.2f\n", n, secs_between(t0, t),
		(double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3, (double)lat[n * 999 / 1000] / 1e3);
	free(lat);
}

static void
echo_send(struct conn *c, long k) {
	unsigned char buf[ECHO_MSG * 16];
	while (k > 0) {
		long batch = k < 16 ? k : 16;
		for (long i = 0; i < batch; i++)
			echo_msg_fill(buf + i * ECHO_MSG, c->idx, c->next_send++);
		send_or_keep(c, buf, (size_t)batch * ECHO_MSG);
		k -= batch;
	}
}

static void
run_echo(void) {
	connect_phase(G.conns, 256, 0);
	struct epoll_event evs[MAX_EVENTS];
	unsigned char expect[ECHO_MSG];
	uint64_t received = 0, outstanding = 0;
	int stopping = 0;
	srv("mark");
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(G.seconds * 1e9), drain_deadline = 0;
	for (long i = 0; i < G.conns; i++) {
		echo_send(&G.c[i], G.depth);
		outstanding += (uint64_t)G.depth;
	}
	for (;;) {
		int n = epoll_wait(G.ep, evs, MAX_EVENTS, 10);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct conn *c = &G.c[evs[i].data.u64];
			if (evs[i].events & EPOLLOUT)
				flush_out(c);
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = read(c->fd, G.rbuf, READ_BUF);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0)
				die("echo connection %u: %s", c->idx, r == 0 ? "EOF" : strerror(errno));
			long msgs = 0;
			for (ssize_t k = 0; k < r;) {
				size_t take = (size_t)(ECHO_MSG - c->part_len) < (size_t)(r - k) ? (size_t)(ECHO_MSG - c->part_len)
												   : (size_t)(r - k);
				memcpy(c->part + c->part_len, G.rbuf + k, take);
				c->part_len += (int)take;
				k += (ssize_t)take;
				if (c->part_len == ECHO_MSG) {
					c->part_len = 0;
					if (c->next_recv == c->next_send)
						die("echo connection %u: more bytes than were sent", c->idx);
					echo_msg_fill(expect, c->idx, c->next_recv++);
					if (memcmp(expect, c->part, ECHO_MSG) != 0)
						die("echo connection %u: message %u differs", c->idx, c->next_recv - 1);
					msgs++;
				}
			}
			received += (uint64_t)msgs;
			outstanding -= (uint64_t)msgs;
			if (!stopping && msgs > 0) {
				echo_send(c, msgs);
				outstanding += (uint64_t)msgs;
			}
		}
		uint64_t now = now_ns();
		if (!stopping && now >= end) {
			stopping = 1;
			drain_deadline = now + (uint64_t)(G.limit * 1e9);
		}
		if (stopping && outstanding == 0)
			break;
		if (stopping && now > drain_deadline)
			die("echo: %llu messages never came back", (unsigned long long)outstanding);
	}
	uint64_t t1 = now_ns();
	srv("mark");
	close_all(G.conns);
	srv("settle");
	printf("result ops=%llu secs=%.6f\n", (unsigned long long)received, secs_between(t0, t1));
}

static void
run_push(void) {
	connect_phase(G.conns, 256, 0);
	struct epoll_event evs[MAX_EVENTS];
	uint64_t quota = G.bytes / (uint64_t)G.conns;
	long done = 0;
	srv("mark");
	uint64_t t0 = now_ns(), deadline = deadline_after(G.limit);
	for (long i = 0; i < G.conns; i++) {
		unsigned char q[8];
		G.c[i].quota = quota;
		put_u64(q, quota);
		send_or_keep(&G.c[i], q, sizeof(q));
	}
	while (done < G.conns) {
		int n = epoll_wait(G.ep, evs, MAX_EVENTS, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct conn *c = &G.c[evs[i].data.u64];
			if (evs[i].events & EPOLLOUT)
				flush_out(c);
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = read(c->fd, G.rbuf, READ_BUF);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0)
				die("push connection %u: %s after %llu bytes", c->idx, r == 0 ? "EOF" : strerror(errno),
					(unsigned long long)c->recvd);
			if (c->recvd + (uint64_t)r > c->quota)
				die("push connection %u: more bytes than asked for", c->idx);
			if (memcmp(G.rbuf, G.pattern + c->recvd % PATTERN_PERIOD, (size_t)r) != 0)
				die("push connection %u: wrong bytes near offset %llu", c->idx, (unsigned long long)c->recvd);
			c->recvd += (uint64_t)r;
			if (c->recvd - c->last_ack >= ACK_STEP || c->recvd == c->quota) {
				unsigned char a[8];
				c->last_ack = c->recvd;
				put_u64(a, c->recvd);
				send_or_keep(c, a, sizeof(a));
			}
			if (c->recvd == c->quota)
				done++;
		}
		if (now_ns() > deadline)
			die("push hung: %ld of %ld connections complete", done, G.conns);
	}
	uint64_t t1 = now_ns();
	srv("mark");
	close_all(G.conns);
	srv("settle");
	printf("result ops=%llu secs=%.6f\n", (unsigned long long)(quota * (uint64_t)G.conns), secs_between(t0, t1));
}

/* Edge-triggered: writes until the kernel or the window says stop. */
static void
recv_pump(struct conn *c) {
	while (c->sent < c->quota && c->sent - c->acked < PUSH_WINDOW) {
		uint64_t n = c->quota - c->sent;
		if (n > PUSH_WINDOW - (c->sent - c->acked))
			n = PUSH_WINDOW - (c->sent - c->acked);
		if (n > READ_BUF)
			n = READ_BUF;
		ssize_t w = write(c->fd, G.pattern + c->sent % PATTERN_PERIOD, (size_t)n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("recv connection %u: write: %s", c->idx, strerror(errno));
		}
		c->sent += (uint64_t)w;
	}
}

static void
run_recv(void) {
	connect_phase(G.conns, 256, 0);
	struct epoll_event evs[MAX_EVENTS];
	uint64_t quota = G.bytes / (uint64_t)G.conns / ACK_STEP * ACK_STEP;
	if (quota == 0)
		die("recv: fewer than %d bytes per connection", ACK_STEP);
	long done = 0;
	for (long i = 0; i < G.conns; i++) {
		G.c[i].quota = quota;
		set_events(&G.c[i], EPOLLIN | EPOLLOUT | EPOLLET);
	}
	srv("mark");
	uint64_t t0 = now_ns(), deadline = deadline_after(G.limit);
	for (long i = 0; i < G.conns; i++)
		recv_pump(&G.c[i]);
	while (done < G.conns) {
		int n = epoll_wait(G.ep, evs, MAX_EVENTS, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct conn *c = &G.c[evs[i].data.u64];
			for (;;) {
				ssize_t r = read(c->fd, G.rbuf, READ_BUF);
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r <= 0)
					die("recv connection %u: %s", c->idx, r == 0 ? "EOF" : strerror(errno));
				for (ssize_t k = 0; k < r; k++) {
					c->rec[c->rec_len++] = G.rbuf[k];
					if (c->rec_len < 8)
						continue;
					c->rec_len = 0;
					uint64_t v = get_u64(c->rec);
					if (v > c->sent || v <= c->acked)
						die("recv connection %u: bad ack %llu", c->idx, (unsigned long long)v);
					c->acked = v;
					if (v == c->quota)
						done++;
				}
			}
			recv_pump(c);
		}
		if (now_ns() > deadline)
			die("recv hung: %ld of %ld connections acknowledged", done, G.conns);
	}
	uint64_t t1 = now_ns();
	srv("mark");
	close_all(G.conns);
	srv("settle");
	printf("result ops=%llu secs=%.6f\n", (unsigned long long)(quota * (uint64_t)G.conns), secs_between(t0, t1));
}

static void
run_flood(void) {
	connect_phase(1, 1, 0);
	struct conn *c = &G.c[0];
	unsigned char q[8], expect[FLOOD_MSG], part[FLOOD_MSG];
	int part_len = 0;
	uint64_t got = 0;
	srv("mark");
	uint64_t t0 = now_ns();
	put_u64(q, G.count);
	send_or_keep(c, q, sizeof(q));
	/* Not reading until every send is issued keeps the socket congested throughout. */
	const char *ans = srv("wait-flood");
	const char *ns = strstr(ans, "send_ns=");
	double send_ms = ns ? strtod(ns + 8, NULL) / 1e6 : -1;
	uint64_t deadline = deadline_after(G.limit);
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = { 2, 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < G.count) {
		ssize_t r = read(c->fd, G.rbuf, READ_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN && now_ns() < deadline)
			continue;
		if (r <= 0)
			die("flood: %s after %llu messages", r == 0 ? "EOF" : strerror(errno), (unsigned long long)got);
		for (ssize_t k = 0; k < r; k++) {
			part[part_len++] = G.rbuf[k];
			if (part_len < FLOOD_MSG)
				continue;
			part_len = 0;
			if (got == G.count)
				die("flood: more bytes than sent");
			flood_msg_fill(expect, got);
			if (memcmp(expect, part, FLOOD_MSG) != 0)
				die("flood: message %llu differs", (unsigned long long)got);
			got++;
		}
		if (now_ns() > deadline)
			die("flood drain hung after %llu messages", (unsigned long long)got);
	}
	uint64_t t1 = now_ns();
	srv("mark");
	conn_close(c);
	srv("settle");
	printf("result ops=%llu secs=%.6f send_ms=%.1f\n", (unsigned long long)G.count, secs_between(t0, t1), send_ms);
}

static void
run_storm(void) {
	srv("mark");
	uint64_t t0 = now_ns();
	connect_phase(G.conns, G.concurrency, 1);
	srv("settle");
	uint64_t t1 = now_ns();
	srv("mark");
	printf("result ops=%ld secs=%.6f\n", G.conns, secs_between(t0, t1));
}

static void
run_idle(void) {
	uint64_t t0 = now_ns();
	connect_phase(G.conns, G.concurrency, 0);
	uint64_t t1 = now_ns();
	const char *ans = srv("info");
	const char *e = strstr(ans, "entries=");
	long entries = e ? strtol(e + 8, NULL, 10) : -1;
	/* The listener is one more entry for a library; the floor counts connections only. */
	if (entries < G.conns)
		die("idle: info listed %ld sockets for %ld connections", entries, G.conns);
	close_all(G.conns);
	srv("settle");
	printf("result ops=%ld secs=%.6f entries=%ld\n", G.conns, secs_between(t0, t1), entries);
}

static void
run_empty(void) {
	srv("rss");
	printf("result ops=1 secs=0\n");
}

static void
run_udp(void) {
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)G.udp_port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("udp connect: %s", strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 }, evs[4];
	epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev);
	unsigned char *seen = calloc(G.count, 1);
	unsigned char m[UDP_MSG], expect[UDP_MSG];
	uint64_t sent = 0, received = 0, inflight = 0, last_progress;
	srv("mark");
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(G.seconds * 1e9);
	last_progress = t0;
	for (;;) {
		while (inflight < (uint64_t)G.window && sent < G.count && now_ns() < end) {
			udp_msg_fill(m, sent);
			if (send(fd, m, sizeof(m), 0) < 0) {
				if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED)
					break;
				die("udp send: %s", strerror(errno));
			}
			sent++;
			inflight++;
		}
		int n = epoll_wait(G.ep, evs, 4, 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		uint64_t now = now_ns();
		for (;;) {
			ssize_t r = recv(fd, G.rbuf, READ_BUF, 0);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
					break;
				die("udp recv: %s", strerror(errno));
			}
			if (r != UDP_MSG)
				die("udp: a datagram of %zd bytes", r);
			uint64_t seq = get_u64(G.rbuf);
			if (seq >= sent || seen[seq])
				die("udp: unexpected or repeated datagram %llu", (unsigned long long)seq);
			udp_msg_fill(expect, seq);
			if (memcmp(expect, G.rbuf, UDP_MSG) != 0)
				die("udp: datagram %llu differs", (unsigned long long)seq);
			seen[seq] = 1;
			received++;
			if (inflight > 0)
				inflight--;
			last_progress = now;
		}
		/* Lost datagrams must not stall the window: forget them after a quiet spell. */
		if (inflight > 0 && now - last_progress > 20 * 1000000ull) {
			inflight = 0;
			last_progress = now;
		}
		if ((sent == G.count || now >= end) && (inflight == 0 || now - last_progress > 10 * 1000000ull))
			break;
	}
	uint64_t t1 = now_ns();
	srv("mark");
	close(fd);
	free(seen);
	if (received * 2 < sent)
		die("udp: %llu of %llu datagrams came back", (unsigned long long)received, (unsigned long long)sent);
	printf("result ops=%llu secs=%.6f sent=%llu lost=%llu\n", (unsigned long long)received, secs_between(t0, t1),
		(unsigned long long)sent, (unsigned long long)(sent - received));
}

int
main(int argc, char **argv) {
	if (argc < 4 || (G.workload = workload_parse(argv[1])) < 0)
		die("usage: loadgen WORKLOAD TCP_PORT UDP_PORT [key=value ...]");
	G.tcp_port = atoi(argv[2]);
	G.udp_port = atoi(argv[3]);
	G.seconds = 1;
	G.conns = 1;
	G.depth = 4;
	G.concurrency = 64;
	G.window = 256;
	G.bytes = 64u << 20;
	G.count = 100000;
	G.limit = 30;
	for (int i = 4; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL)
			die("bad argument %s", argv[i]);
		*eq = '\0';
		const char *k = argv[i], *v = eq + 1;
		if (strcmp(k, "seconds") == 0)
			G.seconds = atof(v);
		else if (strcmp(k, "conns") == 0)
			G.conns = atol(v);
		else if (strcmp(k, "depth") == 0)
			G.depth = atol(v);
		else if (strcmp(k, "bytes") == 0)
			G.bytes = strtoull(v, NULL, 10);
		else if (strcmp(k, "count") == 0)
			G.count = strtoull(v, NULL, 10);
		else if (strcmp(k, "concurrency") == 0)
			G.concurrency = atol(v);
		else if (strcmp(k, "window") == 0)
			G.window = atol(v);
		else if (strcmp(k, "limit") == 0)
			G.limit = atof(v);
		else
			die("unknown key %s", k);
	}
	if (G.conns < 1 || G.depth < 1 || G.concurrency < 1 || G.window < 1 || G.count < 1)
		die("bad parameters");
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	G.ep = epoll_create1(EPOLL_CLOEXEC);
	G.pattern = pattern_make(READ_BUF);
	G.c = calloc((size_t)G.conns, sizeof(struct conn));
	if (G.c == NULL)
		die("out of memory");
	switch (G.workload) {
	case W_PINGPONG:
		run_pingpong();
		break;
	case W_ECHO:
		run_echo();
		break;
	case W_PUSH:
		run_push();
		break;
	case W_RECV:
		run_recv();
		break;
	case W_FLOOD:
		run_flood();
		break;
	case W_STORM:
		run_storm();
		break;
	case W_UDP:
		run_udp();
		break;
	case W_IDLE:
		run_idle();
		break;
	case W_EMPTY:
		run_empty();
		break;
	}
	fflush(stdout);
	return 0;
}
