/*
 * Echo load for a skynet echo service: N connections to 127.0.0.1:PORT, DEPTH 64-byte
 * messages in flight on each, every echoed byte checked; prints messages/s over SECONDS after
 * a one-second warm-up.
 *
 *   echoload PORT CONNS DEPTH SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define MAX_DEPTH 16

struct conn {
	int fd;
	unsigned long sent, received;
};

static double
now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The byte at stream offset `off` of connection `fd`. */
static unsigned char
pattern(unsigned long off, int fd) {
	return (unsigned char)(off * 31 + (unsigned long)fd);
}

static int
send_pattern(struct conn *c, unsigned long len) {
	static unsigned char out[65536];
	for (unsigned long i = 0; i < len; i++)
		out[i] = pattern(c->sent + i, c->fd);
	if (write(c->fd, out, len) != (ssize_t)len) {
		perror("write");
		return -1;
	}
	c->sent += len;
	return 0;
}

int
main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s PORT CONNS DEPTH SECONDS\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]), depth = atoi(argv[3]);
	double seconds = atof(argv[4]);
	if (n < 1 || depth < 1 || depth > MAX_DEPTH || seconds <= 0) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	int ep = epoll_create1(0);
	struct conn *conns = calloc((size_t)n, sizeof(*conns));
	if (ep < 0 || conns == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			perror("connect");
			return 1;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[i].fd = fd;
		if (send_pattern(&conns[i], (unsigned long)MSG * (unsigned long)depth) != 0)
			return 1;
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	double start = now() + 1.0, end = start + seconds;
	unsigned long total = 0, at_start = 0;
	int measuring = 0;
	struct epoll_event events[256];
	static unsigned char in[65536];
	while (now() < end) {
		if (!measuring && now() >= start) {
			measuring = 1;
			at_start = total;
		}
		int k = epoll_wait(ep, events, 256, 100);
		for (int e = 0; e < k; e++) {
			struct conn *c = &conns[events[e].data.u32];
			ssize_t r = read(c->fd, in, sizeof(in));
			if (r <= 0) {
				fprintf(stderr, "read: %s\n", r == 0 ? "closed by the server" : strerror(errno));
				return 1;
			}
			for (ssize_t j = 0; j < r; j++) {
				if (in[j] != pattern(c->received + (unsigned long)j, c->fd)) {
					fprintf(stderr, "wrong byte at offset %lu\n", c->received + (unsigned long)j);
					return 1;
				}
			}
			unsigned long before = c->received / MSG;
			c->received += (unsigned long)r;
			unsigned long done = c->received / MSG - before;
			total += done;
			if (done > 0 && send_pattern(c, done * MSG) != 0)
				return 1;
		}
	}
	printf("msgs_per_s %.0f conns %d depth %d\n", (double)(total - at_start) / seconds, n, depth);
	return 0;
}
