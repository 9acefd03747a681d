/*
 * The floor: the same workloads and control lines as server.c, served by one thread with raw
 * epoll and read/write, no library, no command queue, no worker threads. What is left between
 * this and an implementation of the ABI is the cost of the library plus skynet's threading.
 *
 *   floor WORKLOAD
 *
 * Sends try a direct write first; what the kernel does not take is queued per connection
 * (small sends coalesced into 64 KiB blocks, MEMORY-like 64 KiB chunks kept as they are) and
 * flushed with writev when the socket is writable, so it does what a lean library could.
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
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 70000
#define COPY_BLOCK (64 * 1024)
#define READ_BUF (256 * 1024)
#define TAG_LISTEN ((uint64_t)-1)
#define TAG_UDP ((uint64_t)-2)
#define TAG_CONTROL ((uint64_t)-3)

struct chunk {
	struct chunk *next;
	unsigned char *p;
	size_t off, len, cap;
	int copy; /* a coalescing block of copied small sends */
};

struct conn {
	int fd;
	int want_out;
	struct chunk *head, *tail;
	unsigned char rec[8];
	int rec_len;
	int have_quota;
	uint64_t quota, sent, acked, recvd, next_ack;
};

static int workload, ep, listen_fd = -1, udp_fd = -1;
static struct conn *conns[MAX_FD];
static unsigned char *pattern;
static unsigned char rbuf[READ_BUF];
static long live, accepted, errors, verify_fail;
static int flood_done, pending_flood, pending_settle, quitting;
static uint64_t flood_send_ns, settle_deadline, flood_deadline;

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
set_events(struct conn *c, int out) {
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = (uint64_t)c->fd };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

static void
conn_close(struct conn *c) {
	while (c->head) {
		struct chunk *k = c->head;
		c->head = k->next;
		free(k->p);
		free(k);
	}
	close(c->fd);
	conns[c->fd] = NULL;
	free(c);
	live--;
}

/* Writes as much of the queue as the kernel takes. Returns -1 if the connection was closed. */
static int
flush(struct conn *c) {
	while (c->head) {
		struct iovec iov[64];
		int n = 0;
		for (struct chunk *k = c->head; k && n < 64; k = k->next, n++) {
			iov[n].iov_base = k->p + k->off;
			iov[n].iov_len = k->len - k->off;
		}
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			errors++;
			conn_close(c);
			return -1;
		}
		while (w > 0) {
			struct chunk *k = c->head;
			size_t left = k->len - k->off;
			if ((size_t)w < left) {
				k->off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			c->head = k->next;
			if (c->head == NULL)
				c->tail = NULL;
			free(k->p);
			free(k);
		}
	}
	if ((c->head != NULL) != c->want_out)
		set_events(c, c->head != NULL);
	return 0;
}

static void
enqueue(struct conn *c, struct chunk *k) {
	k->next = NULL;
	if (c->tail)
		c->tail->next = k;
	else
		c->head = k;
	c->tail = k;
}

/* Sends p[0..n): written now if nothing is queued, else queued. `owned` is a malloc'ed buffer
 * the call takes over (MEMORY-like); otherwise the bytes are copied when they must wait. */
static int
send_bytes(struct conn *c, const unsigned char *p, size_t n, unsigned char *owned) {
	if (c->head == NULL) {
		ssize_t w = write(c->fd, p, n);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			free(owned);
			errors++;
			conn_close(c);
			return -1;
		}
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
		if (n == 0) {
			free(owned);
			return 0;
		}
	}
	if (owned) {
		struct chunk *k = malloc(sizeof(*k));
		k->p = owned;
		k->off = (size_t)(p - owned);
		k->len = k->off + n;
		k->cap = k->len;
		k->copy = 0;
		enqueue(c, k);
	} else {
		while (n > 0) {
			struct chunk *k = c->tail;
			if (k == NULL || !k->copy || k->len == k->cap) {
				k = malloc(sizeof(*k));
				k->p = malloc(COPY_BLOCK);
				k->off = k->len = 0;
				k->cap = COPY_BLOCK;
				k->copy = 1;
				enqueue(c, k);
			}
			size_t take = k->cap - k->len < n ? k->cap - k->len : n;
			memcpy(k->p + k->len, p, take);
			k->len += take;
			p += take;
			n -= take;
		}
	}
	if (!c->want_out)
		set_events(c, 1);
	return 0;
}

static int
push_pump(struct conn *c) {
	while (c->sent < c->quota && c->sent - c->acked < PUSH_WINDOW) {
		size_t n = c->quota - c->sent < PUSH_CHUNK ? (size_t)(c->quota - c->sent) : PUSH_CHUNK;
		unsigned char *buf = malloc(n);
		memcpy(buf, pattern + c->sent % PATTERN_PERIOD, n);
		c->sent += n;
		if (send_bytes(c, buf, n, buf) < 0)
			return -1;
	}
	return 0;
}

static int
on_record(struct conn *c, uint64_t v) {
	if (workload == W_PUSH) {
		if (!c->have_quota) {
			c->have_quota = 1;
			c->quota = v;
		} else if (v > c->acked) {
			c->acked = v;
		}
		return push_pump(c);
	}
	if (workload == W_FLOOD && !c->have_quota) {
		unsigned char m[FLOOD_MSG];
		uint64_t t0 = now_ns();
		c->have_quota = 1;
		for (uint64_t i = 0; i < v; i++) {
			flood_msg_fill(m, i);
			if (send_bytes(c, m, sizeof(m), NULL) < 0)
				return -1;
		}
		flood_done = 1;
		flood_send_ns = now_ns() - t0;
	}
	return 0;
}

/* Returns -1 if the connection was closed. */
static int
on_data(struct conn *c, unsigned char *data, size_t n) {
	switch (workload) {
	case W_PINGPONG:
	case W_ECHO:
		return send_bytes(c, data, n, NULL);
	case W_RECV: {
		uint64_t o = c->recvd;
		for (size_t i = 0; i < n; i += 4096)
			if (data[i] != (unsigned char)((o + i) % PATTERN_PERIOD))
				verify_fail++;
		if (data[n - 1] != (unsigned char)((o + n - 1) % PATTERN_PERIOD))
			verify_fail++;
		c->recvd += n;
		while (c->recvd >= c->next_ack + ACK_STEP) {
			unsigned char ack[8];
			c->next_ack += ACK_STEP;
			put_u64(ack, c->next_ack);
			if (send_bytes(c, ack, sizeof(ack), NULL) < 0)
				return -1;
		}
		return 0;
	}
	case W_PUSH:
	case W_FLOOD:
		for (size_t i = 0; i < n; i++) {
			c->rec[c->rec_len++] = data[i];
			if (c->rec_len == 8) {
				c->rec_len = 0;
				if (on_record(c, get_u64(c->rec)) < 0)
					return -1;
			}
		}
		return 0;
	default:
		verify_fail++;
		return 0;
	}
}

static void
on_conn_event(struct conn *c, uint32_t events) {
	if (events & EPOLLOUT) {
		if (flush(c) < 0)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = read(c->fd, rbuf, sizeof(rbuf));
		if (n > 0) {
			on_data(c, rbuf, (size_t)n);
		} else if (n == 0) {
			conn_close(c);
		} else if (errno != EAGAIN && errno != EINTR) {
			errors++;
			conn_close(c);
		}
	}
}

static void
on_accept(void) {
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				errors++;
			return;
		}
		if (fd >= MAX_FD) {
			close(fd);
			errors++;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		c->fd = fd;
		conns[fd] = c;
		live++;
		accepted++;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)fd };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		unsigned char g = GREETING;
		send_bytes(c, &g, 1, NULL);
	}
}

static void
on_udp(void) {
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(udp_fd, rbuf, 65536, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			return;
		sendto(udp_fd, rbuf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
}

static long rss_start;

static void
on_command(const char *line) {
	if (strcmp(line, "mark") == 0) {
		reply("ok cpu_ns=%llu rss_kb=%ld hwm_kb=%ld", (unsigned long long)process_cpu_ns(), proc_status_kb("VmRSS"),
			proc_status_kb("VmHWM"));
	} else if (strcmp(line, "settle") == 0) {
		pending_settle = 1;
		settle_deadline = now_ns() + 20ull * 1000000000u;
	} else if (strcmp(line, "wait-flood") == 0) {
		pending_flood = 1;
		flood_deadline = now_ns() + 120ull * 1000000000u;
	} else if (strcmp(line, "info") == 0) {
		/* No library, no socket_info: -1 marks it as not applicable. */
		reply("ok info_ns=-1 info_min_ns=-1 entries=%ld rss_kb=%ld hwm_kb=%ld", live, proc_status_kb("VmRSS"),
			proc_status_kb("VmHWM"));
	} else if (strcmp(line, "rss") == 0) {
		reply("ok rss_kb=%ld hwm_kb=%ld create_kb=%ld", proc_status_kb("VmRSS"), proc_status_kb("VmHWM"),
			proc_status_kb("VmRSS") - rss_start);
	} else if (strcmp(line, "quit") == 0) {
		quitting = 1;
	} else {
		reply("error unknown command");
	}
}

static void
on_control(void) {
	static char buf[1024];
	static size_t len;
	ssize_t n = read(0, buf + len, sizeof(buf) - 1 - len);
	if (n <= 0) {
		quitting = 1;
		return;
	}
	len += (size_t)n;
	char *nl;
	while ((nl = memchr(buf, '\n', len)) != NULL) {
		*nl = '\0';
		on_command(buf);
		size_t used = (size_t)(nl - buf) + 1;
		memmove(buf, buf + used, len - used);
		len -= used;
	}
}

static void
check_pending(void) {
	if (pending_settle && (live == 0 || now_ns() > settle_deadline)) {
		pending_settle = 0;
		reply("%s live=%ld", live == 0 ? "ok" : "timeout", live);
	}
	if (pending_flood && (flood_done || now_ns() > flood_deadline)) {
		pending_flood = 0;
		reply("%s send_ns=%llu", flood_done ? "ok" : "timeout", (unsigned long long)flood_send_ns);
	}
}

int
main(int argc, char **argv) {
	if (argc < 2 || (workload = workload_parse(argv[1])) < 0) {
		fprintf(stderr, "usage: %s pingpong|echo|push|recv|flood|storm|udp|idle|empty\n", argv[0]);
		return 2;
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	pattern = pattern_make(PUSH_CHUNK);
	rss_start = proc_status_kb("VmRSS");
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_CONTROL };
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);

	int tcp_port = 0, udp_port = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (workload != W_EMPTY) {
		int one = 1;
		listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(listen_fd, 4096) != 0 ||
			getsockname(listen_fd, (struct sockaddr *)&a, &alen) != 0) {
			perror("listen");
			return 1;
		}
		tcp_port = ntohs(a.sin_port);
		ev.data.u64 = TAG_LISTEN;
		epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
	}
	if (workload == W_UDP) {
		struct sockaddr_in u = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		alen = sizeof(u);
		udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (bind(udp_fd, (struct sockaddr *)&u, sizeof(u)) != 0 ||
			getsockname(udp_fd, (struct sockaddr *)&u, &alen) != 0) {
			perror("udp");
			return 1;
		}
		udp_port = ntohs(u.sin_port);
		ev.data.u64 = TAG_UDP;
		epoll_ctl(ep, EPOLL_CTL_ADD, udp_fd, &ev);
	}
	reply("ready tcp=%d udp=%d", tcp_port, udp_port);

	struct epoll_event evs[64];
	while (!quitting) {
		int timeout = pending_settle || pending_flood ? 1 : -1;
		int n = epoll_wait(ep, evs, 64, timeout);
		for (int i = 0; i < n && !quitting; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_CONTROL)
				on_control();
			else if (tag == TAG_LISTEN)
				on_accept();
			else if (tag == TAG_UDP)
				on_udp();
			else if (tag < MAX_FD && conns[tag] != NULL)
				on_conn_event(conns[tag], evs[i].events);
		}
		check_pending();
	}
	long hwm = proc_status_kb("VmHWM");
	for (int fd = 0; fd < MAX_FD; fd++)
		if (conns[fd])
			conn_close(conns[fd]);
	free(pattern);
	reply("bye accepted=%ld errors=%ld warnings=-1 warn_max_kb=-1 logs=-1 results=-1 verify_fail=%ld hwm_kb=%ld", accepted,
		errors, verify_fail, hwm);
	return verify_fail == 0 ? 0 : 3;
}
