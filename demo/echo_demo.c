/*
 * echo_demo: the library driven the way skynet drives it, through include/socket_server.h only.
 *
 * One thread polls and forwards every result into a queue, as skynet's socket thread does;
 * the main thread plays the services: the server echoes every DATA back to its sender, and
 * three clients opened with socket_server_connect on the same server check their echoes. A
 * fourth client is a plain blocking socket in its own thread, so the library also talks to a
 * peer it does not manage. Everything is closed, the poll thread is stopped with
 * socket_server_exit, and the server is released.
 *
 * Every wait is bounded by one overall deadline; nothing sleeps to synchronise. Exit status is
 * 0 only when every line came back intact and every socket reported its CLOSE.
 *
 * No skynet_error here on purpose: the library's weak fallback prints its log lines to stderr.
 */
#include "socket_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_SECONDS 10
#define LIBRARY_CLIENTS 3
#define LINES_PER_CLIENT 3
#define ALL_CLIENTS (LIBRARY_CLIENTS + 1)
#define LINE_MAX_BYTES 64

/* Owners, as skynet would pass service handles: the server service and the client service. */
#define OWNER_SERVER ((uintptr_t)1)
#define OWNER_CLIENT ((uintptr_t)2)

/* A queue entry that is not a poll result: the plain client's thread has finished. */
#define EVENT_PLAIN_DONE 100

struct event {
	struct event *next;
	int type;
	int id;
	uintptr_t opaque;
	int ud;
	char *data; /* DATA: the library's malloc'ed buffer; otherwise our own copy, or NULL */
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct event *head;
	struct event *tail;
};

struct client {
	int id;
	int lines_done;
	size_t rx_len;
	char rx[LINE_MAX_BYTES * 2];
	int closed;
};

struct demo {
	struct socket_server *ss;
	struct queue queue;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	struct timespec started;
	int port;
	int listen_id;
	int listen_closed;
	struct client clients[LIBRARY_CLIENTS];
	struct {
		int id;
		int closed;
	} accepted[ALL_CLIENTS];
	int accepted_count;
	int accepted_closed;
	int plain_done;
	int lines_echoed;
	long bytes_echoed;
	int sockets_closed;
};

__attribute__((format(printf, 1, 2))) static void
say(const char *fmt, ...) {
	va_list ap;
	/* Two threads log; one locked call per line keeps the lines whole and in order. */
	flockfile(stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
}

__attribute__((noreturn, format(printf, 1, 2))) static void
fail(const char *fmt, ...) {
	va_list ap;
	flockfile(stdout);
	fputs("FAILED: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
	/*
	 * The poll thread may be blocked inside the library; tearing the server down under it
	 * would be a use after free, so leave without cleanup.
	 */
	_exit(1);
}

static long
ms_between(const struct timespec *from, const struct timespec *to) {
	return (to->tv_sec - from->tv_sec) * 1000 + (to->tv_nsec - from->tv_nsec) / 1000000;
}

static void
format_line(char *buf, size_t size, const char *who, int line) {
	static const char *const templates[LINES_PER_CLIENT] = {
		"hello from %s", "%s sends line 2", "goodbye from %s",
	};
	snprintf(buf, size, templates[line], who);
}

/* ---- The queue between the poll thread and the main thread ---- */

static void
queue_init(struct queue *q) {
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	/* The deadline is monotonic so a clock change cannot stretch or cut it. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->ready, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
}

static void
queue_push(struct queue *q, struct event *e) {
	e->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	pthread_cond_signal(&q->ready);
	pthread_mutex_unlock(&q->lock);
}

/* Returns the next event, or NULL once the deadline has passed. */
static struct event *
queue_pop(struct queue *q, const struct timespec *deadline) {
	struct event *e;
	pthread_mutex_lock(&q->lock);
	while (q->head == NULL) {
		if (pthread_cond_timedwait(&q->ready, &q->lock, deadline) == ETIMEDOUT && q->head == NULL) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
	}
	e = q->head;
	q->head = e->next;
	if (q->head == NULL)
		q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return e;
}

static void
event_free(struct event *e) {
	free(e->data);
	free(e);
}

/* ---- The poll thread: skynet's socket thread, minus the services ---- */

static void *
poll_thread(void *arg) {
	struct demo *d = arg;
	for (;;) {
		struct socket_message msg;
		int more = 1;
		int type = socket_server_poll(d->ss, &msg, &more);
		struct event *e = calloc(1, sizeof(*e));
		if (e == NULL)
			fail("out of memory in the poll thread");
		e->type = type;
		e->id = msg.id;
		e->opaque = msg.opaque;
		e->ud = msg.ud;
		switch (type) {
		case SOCKET_DATA:
			/* The buffer is ours now; it travels by pointer, as in skynet_socket.c. */
			e->data = msg.data;
			break;
		case SOCKET_OPEN:
		case SOCKET_ERR:
		case SOCKET_ACCEPT:
			/* These strings live only until the next poll; skynet copies at most 128 bytes. */
			e->data = msg.data ? strndup(msg.data, 128) : NULL;
			break;
		default:
			break;
		}
		queue_push(&d->queue, e);
		if (type == SOCKET_EXIT)
			return NULL;
	}
}

/* ---- The plain client: a blocking socket the library does not own ---- */

static int
set_timeouts(int fd, const struct timespec *deadline) {
	struct timespec now;
	struct timeval tv;
	long ms;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = ms_between(&now, deadline);
	if (ms <= 0)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	/* SO_SNDTIMEO also bounds connect on Linux, so no call below can outlive the deadline. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		return -1;
	return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Reads until one whole line (ending in '\n') is in buf; returns its length or -1. */
static int
read_line(int fd, char *buf, size_t size) {
	size_t len = 0;
	while (len == 0 || buf[len - 1] != '\n') {
		ssize_t n;
		if (len == size - 1)
			return -1;
		n = recv(fd, buf + len, size - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (int)len;
}

static int
plain_client_run(struct demo *d) {
	struct sockaddr_in addr;
	socklen_t addrlen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int line;
	if (fd < 0) {
		say("plain client: socket: %s", strerror(errno));
		return 0;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)d->port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (set_timeouts(fd, &d->deadline) != 0
		|| connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		say("plain client: connect: %s", strerror(errno));
		close(fd);
		return 0;
	}
	getsockname(fd, (struct sockaddr *)&addr, &addrlen);
	say("plain client connected from port %d", ntohs(addr.sin_port));
	for (line = 0; line < LINES_PER_CLIENT; line++) {
		char sent[LINE_MAX_BYTES], got[LINE_MAX_BYTES * 2];
		size_t len;
		format_line(sent, sizeof(sent) - 1, "the plain client", line);
		len = strlen(sent);
		sent[len++] = '\n';
		sent[len] = '\0';
		/* Under the deadline a short write cannot happen for a few bytes on loopback. */
		if (send(fd, sent, len, MSG_NOSIGNAL) != (ssize_t)len) {
			say("plain client: send: %s", strerror(errno));
			close(fd);
			return 0;
		}
		if (read_line(fd, got, sizeof(got)) < 0 || strcmp(got, sent) != 0) {
			say("plain client: no intact echo of line %d", line + 1);
			close(fd);
			return 0;
		}
		got[len - 1] = '\0';
		say("plain client got back '%s'", got);
	}
	close(fd);
	say("plain client closed its socket");
	return 1;
}

static void *
plain_client_thread(void *arg) {
	struct demo *d = arg;
	struct event *e = calloc(1, sizeof(*e));
	int ok = plain_client_run(d);
	if (e == NULL)
		fail("out of memory in the plain client");
	e->type = EVENT_PLAIN_DONE;
	e->ud = ok;
	queue_push(&d->queue, e);
	return NULL;
}

/* ---- The services, run on the main thread ---- */

/* Hands a malloc'ed copy of the bytes to the library, which frees it whatever happens. */
static void
send_copy(struct demo *d, int id, const char *bytes, size_t len) {
	struct socket_sendbuffer buf;
	char *copy = malloc(len);
	if (copy == NULL)
		fail("out of memory");
	memcpy(copy, bytes, len);
	buf.id = id;
	buf.type = SOCKET_BUFFER_MEMORY;
	buf.buffer = copy;
	buf.sz = len;
	if (socket_server_send(d->ss, &buf) != 0)
		fail("socket_server_send to %d refused", id);
}

static struct client *
find_client(struct demo *d, int id) {
	int i;
	for (i = 0; i < LIBRARY_CLIENTS; i++)
		if (d->clients[i].id == id)
			return &d->clients[i];
	return NULL;
}

/* The server's side of a connection, by id, or -1. */
static int
find_accepted(struct demo *d, int id) {
	int i;
	for (i = 0; i < d->accepted_count; i++)
		if (d->accepted[i].id == id)
			return i;
	return -1;
}

static void
client_send_line(struct demo *d, struct client *c) {
	char who[32], line[LINE_MAX_BYTES];
	size_t len;
	snprintf(who, sizeof(who), "client %d", c->id);
	format_line(line, sizeof(line) - 1, who, c->lines_done);
	len = strlen(line);
	line[len++] = '\n';
	send_copy(d, c->id, line, len);
}

static void
start_clients(struct demo *d) {
	pthread_t plain;
	int i;
	for (i = 0; i < LIBRARY_CLIENTS; i++) {
		struct client *c = &d->clients[i];
		c->id = socket_server_connect(d->ss, OWNER_CLIENT, "127.0.0.1", d->port);
		if (c->id < 0)
			fail("socket_server_connect returned %d", c->id);
		say("client %d connecting to 127.0.0.1:%d", c->id, d->port);
	}
	if (pthread_create(&plain, NULL, plain_client_thread, d) != 0)
		fail("cannot start the plain client thread");
	pthread_detach(plain);
}

/* Echoed bytes for a library client: check every complete line, then send the next or close. */
static void
client_data(struct demo *d, struct client *c, const char *data, int size) {
	char *nl;
	if ((size_t)size > sizeof(c->rx) - 1 - c->rx_len)
		fail("client %d got %d unexpected bytes", c->id, size);
	memcpy(c->rx + c->rx_len, data, (size_t)size);
	c->rx_len += (size_t)size;
	c->rx[c->rx_len] = '\0';
	while ((nl = memchr(c->rx, '\n', c->rx_len)) != NULL) {
		char who[32], want[LINE_MAX_BYTES];
		size_t len = (size_t)(nl - c->rx);
		*nl = '\0';
		snprintf(who, sizeof(who), "client %d", c->id);
		if (c->lines_done >= LINES_PER_CLIENT)
			fail("client %d got back an extra line '%s'", c->id, c->rx);
		format_line(want, sizeof(want), who, c->lines_done);
		if (strcmp(c->rx, want) != 0)
			fail("client %d got back '%s', expected '%s'", c->id, c->rx, want);
		say("client %d got back '%s'", c->id, c->rx);
		c->lines_done++;
		memmove(c->rx, nl + 1, c->rx_len - len - 1);
		c->rx_len -= len + 1;
		if (c->lines_done < LINES_PER_CLIENT) {
			client_send_line(d, c);
		} else {
			say("client %d closing", c->id);
			socket_server_close(d->ss, OWNER_CLIENT, c->id);
		}
	}
}

static int
all_clients_finished(struct demo *d) {
	int i;
	for (i = 0; i < LIBRARY_CLIENTS; i++)
		if (!d->clients[i].closed)
			return 0;
	return d->plain_done && d->accepted_count == ALL_CLIENTS
		&& d->accepted_closed == ALL_CLIENTS;
}

static void
handle(struct demo *d, struct event *e) {
	struct client *c;
	int a = find_accepted(d, e->id);
	switch (e->type) {
	case SOCKET_OPEN:
		if (e->id == d->listen_id && d->port == 0) {
			/* The listen itself reports the bound address and the port the kernel chose. */
			d->port = e->ud;
			say("listening on %s:%d (id %d)", e->data ? e->data : "?", d->port, e->id);
			socket_server_start(d->ss, OWNER_SERVER, d->listen_id);
		} else if (e->id == d->listen_id) {
			say("listener %d started (%s), accepting", e->id, e->data ? e->data : "");
			start_clients(d);
		} else if ((c = find_client(d, e->id)) != NULL) {
			say("client %d connected to %s", c->id, e->data ? e->data : "?");
			client_send_line(d, c);
		} else if (a >= 0) {
			say("server connection %d started (%s)", e->id, e->data ? e->data : "");
		} else {
			fail("OPEN for unknown id %d", e->id);
		}
		break;
	case SOCKET_ACCEPT:
		if (e->id != d->listen_id || e->opaque != OWNER_SERVER)
			fail("ACCEPT on %d, owner %lu", e->id, (unsigned long)e->opaque);
		if (d->accepted_count == ALL_CLIENTS)
			fail("unexpected extra connection %d", e->ud);
		d->accepted[d->accepted_count].id = e->ud;
		d->accepted[d->accepted_count++].closed = 0;
		say("server accepted %d from %s", e->ud, e->data ? e->data : "?");
		socket_server_start(d->ss, OWNER_SERVER, e->ud);
		break;
	case SOCKET_DATA:
		if (a >= 0) {
			struct socket_sendbuffer buf;
			buf.id = e->id;
			buf.type = SOCKET_BUFFER_MEMORY;
			buf.buffer = e->data;
			buf.sz = (size_t)e->ud;
			/* The received buffer goes straight back: the library frees it once sent. */
			e->data = NULL;
			if (socket_server_send(d->ss, &buf) != 0)
				fail("echo to %d refused", e->id);
			say("server echoed %d bytes to %d", e->ud, e->id);
			d->bytes_echoed += e->ud;
		} else if ((c = find_client(d, e->id)) != NULL) {
			client_data(d, c, e->data, e->ud);
		} else {
			fail("DATA for unknown id %d", e->id);
		}
		break;
	case SOCKET_CLOSE:
		d->sockets_closed++;
		if (e->id == d->listen_id) {
			say("closed %d (listener)", e->id);
			d->listen_closed = 1;
		} else if ((c = find_client(d, e->id)) != NULL) {
			if (c->closed)
				fail("second CLOSE for client %d", c->id);
			if (c->lines_done != LINES_PER_CLIENT)
				fail("client %d closed after %d lines", c->id, c->lines_done);
			c->closed = 1;
			say("closed %d (client)", e->id);
		} else if (a >= 0) {
			if (d->accepted[a].closed)
				fail("second CLOSE for server connection %d", e->id);
			d->accepted[a].closed = 1;
			/*
			 * The peer is gone and reading has stopped; the owner's close releases the
			 * socket and, by SPEC section 6, reports no second CLOSE.
			 */
			say("closed %d (server side: the peer hung up)", e->id);
			socket_server_close(d->ss, OWNER_SERVER, e->id);
			d->accepted_closed++;
		} else {
			fail("CLOSE for unknown id %d", e->id);
		}
		break;
	case SOCKET_ERR:
		fail("error on %d: %s", e->id, e->data ? e->data : "(no text)");
		break;
	case SOCKET_WARNING:
		say("warning on %d: %d KiB queued", e->id, e->ud);
		break;
	case EVENT_PLAIN_DONE:
		if (!e->ud)
			fail("the plain client did not get its lines back");
		d->plain_done = 1;
		break;
	default:
		fail("unexpected poll result %d on %d", e->type, e->id);
	}
}

/* Handles events until done() holds; fails with what it was waiting for at the deadline. */
static void
run_until(struct demo *d, int (*done)(struct demo *), const char *waiting_for) {
	while (!done(d)) {
		struct event *e = queue_pop(&d->queue, &d->deadline);
		if (e == NULL)
			fail("no progress within %d s while waiting for %s", DEADLINE_SECONDS, waiting_for);
		handle(d, e);
		event_free(e);
	}
}

static int
listener_closed(struct demo *d) {
	return d->listen_closed;
}

int
main(void) {
	static struct demo demo;
	struct demo *d = &demo;
	struct timespec finished;
	pthread_t poller;
	struct event *e;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &d->started);
	d->deadline = d->started;
	d->deadline.tv_sec += DEADLINE_SECONDS;
	queue_init(&d->queue);

	d->ss = socket_server_create(0);
	if (d->ss == NULL)
		fail("socket_server_create returned NULL");
	if (pthread_create(&poller, NULL, poll_thread, d) != 0)
		fail("cannot start the poll thread");

	d->listen_id = socket_server_listen(d->ss, OWNER_SERVER, "127.0.0.1", 0, 32);
	if (d->listen_id < 0)
		fail("socket_server_listen returned %d", d->listen_id);

	/* Listen, start and the clients follow one another from handle(); see SOCKET_OPEN. */
	run_until(d, all_clients_finished, "the clients to finish");

	socket_server_close(d->ss, OWNER_SERVER, d->listen_id);
	run_until(d, listener_closed, "the listener's CLOSE");

	socket_server_exit(d->ss);
	for (;;) {
		e = queue_pop(&d->queue, &d->deadline);
		if (e == NULL)
			fail("no EXIT within %d s", DEADLINE_SECONDS);
		if (e->type == SOCKET_EXIT) {
			event_free(e);
			break;
		}
		/* Nothing else is expected now; a stray result is reported, not ignored. */
		handle(d, e);
		event_free(e);
	}
	pthread_join(poller, NULL);
	socket_server_release(d->ss);
	say("poll thread exited, server released");

	for (i = 0; i < LIBRARY_CLIENTS; i++)
		d->lines_echoed += d->clients[i].lines_done;
	d->lines_echoed += LINES_PER_CLIENT; /* the plain client checked its own */
	clock_gettime(CLOCK_MONOTONIC, &finished);
	say("summary: %d clients (%d via socket_server_connect, 1 plain), %d lines / %ld bytes echoed, "
	    "%d CLOSE results, %ld ms: OK",
	    ALL_CLIENTS, LIBRARY_CLIENTS, d->lines_echoed, d->bytes_echoed, d->sockets_closed,
	    ms_between(&d->started, &finished));
	return 0;
}
