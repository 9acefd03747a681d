/* TCP sockets: every OPEN flavour, ACCEPT, connect results, pause/start/transfer, read sizes,
   commands from several threads. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define OWNER2 ((uintptr_t)0x2002)
#define OWNER3 ((uintptr_t)0x3003)
#define LOWNER ((uintptr_t)0x4004)

static void
listen_on_port_0_reports_bound_ip_and_real_port(void) {
	struct fixture f;
	fixture_init(&f);
	int id = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	CHECK(id > 0);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, id, OWNER, ANY_UD, "127.0.0.1");
	if (CHECK(e != NULL)) {
		CHECK(e->ud > 0 && e->ud < 65536);
		/* ud is the real port: a plain client can connect to it */
		int c = peer_connect("127.0.0.1", e->ud, 0);
		CHECK(c >= 0);
		if (c >= 0)
			close(c);
	}
	EXPECT_NO_EVENT(&f, id, quiet(100)); /* not started: no ACCEPT */
	fixture_finish(&f);
}

static void
listen_with_null_or_empty_host_binds_0_0_0_0(void) {
	struct fixture f;
	fixture_init(&f);
	int a = socket_server_listen(f.ss, OWNER, NULL, 0, 32);
	int b = socket_server_listen(f.ss, OWNER2, "", 0, 32);
	CHECK(a > 0 && b > 0 && a != b);
	struct ev *ea = EXPECT(&f, SOCKET_OPEN, a, OWNER, ANY_UD, "0.0.0.0");
	struct ev *eb = EXPECT(&f, SOCKET_OPEN, b, OWNER2, ANY_UD, "0.0.0.0");
	CHECK(ea && ea->ud > 0);
	CHECK(eb && eb->ud > 0 && (!ea || eb->ud != ea->ud));
	fixture_finish(&f);
}

static void
listen_on_ipv6_reports_the_v6_address(void) {
	struct fixture f;
	fixture_init(&f);
	int a = socket_server_listen(f.ss, OWNER, "::1", 0, 32);
	int b = socket_server_listen(f.ss, OWNER, "::", 0, 32);
	CHECK(a > 0 && b > 0);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, a, OWNER, ANY_UD, "::1");
	CHECK(e && e->ud > 0);
	e = EXPECT(&f, SOCKET_OPEN, b, OWNER, ANY_UD, "::");
	CHECK(e && e->ud > 0);
	fixture_finish(&f);
}

static void
listen_on_busy_port_or_bad_host_returns_minus_1(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	/* SO_REUSEADDR does not allow two listeners on one port */
	CHECK_INT(socket_server_listen(f.ss, OWNER, "127.0.0.1", port, 32), -1);
	/* a numeric address this host does not have (TEST-NET-1) */
	CHECK_INT(socket_server_listen(f.ss, OWNER, "192.0.2.1", 0, 32), -1);
	EXPECT_NO_EVENT(&f, ANY_ID, quiet(100));
	close(lfd);
	fixture_finish(&f);
}

static void
start_on_listener_reports_start_and_a_second_start_changes_nothing(void) {
	struct fixture f;
	fixture_init(&f);
	int id = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, id, OWNER, ANY_UD, "127.0.0.1");
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, LOWNER, id);
	EXPECT(&f, SOCKET_OPEN, id, LOWNER, 0, "start");
	/* a started listener: start yields nothing and keeps its owner */
	socket_server_start(f.ss, OWNER3, id);
	EXPECT_NO_EVENT(&f, id, quiet(150));
	int c = peer_connect("127.0.0.1", port, 0);
	CHECK(c >= 0);
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(c));
	EXPECT(&f, SOCKET_ACCEPT, id, LOWNER, ANY_UD, name);
	close(c);
	fixture_finish(&f);
}

static void
accept_v4_reports_peer_ip_port_and_listener_owner(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, OWNER, ANY_UD, "127.0.0.1");
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int c = peer_connect("127.0.0.1", port, 0);
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(c));
	e = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, name);
	int nid = e ? e->ud : -1;
	CHECK(nid > 0 && nid != lid);
	/* the new socket belongs to the listener's owner until started */
	socket_server_start(f.ss, OWNER2, nid);
	EXPECT(&f, SOCKET_OPEN, nid, OWNER2, 0, "start");
	peer_write_all(c, "hi", 2);
	EXPECT(&f, SOCKET_DATA, nid, OWNER2, 2, "hi");
	close(c);
	EXPECT(&f, SOCKET_CLOSE, nid, OWNER2, 0, NULL);
	fixture_finish(&f);
}

static void
accept_v6_reports_address_without_brackets(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, OWNER, "::1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, OWNER, ANY_UD, "::1");
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, OWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, OWNER, 0, "start");
	int c = peer_connect("::1", port, 0);
	CHECK(c >= 0);
	char name[64];
	snprintf(name, sizeof(name), "::1:%d", sock_port(c));
	e = EXPECT(&f, SOCKET_ACCEPT, lid, OWNER, ANY_UD, name);
	int nid = e ? e->ud : -1;
	socket_server_start(f.ss, OWNER2, nid);
	EXPECT(&f, SOCKET_OPEN, nid, OWNER2, 0, "start");
	close(c);
	fixture_finish(&f);
}

static void
accepted_socket_reads_nothing_until_started(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, LOWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, LOWNER, ANY_UD, ANY_DATA);
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int c = peer_connect("127.0.0.1", port, 0);
	e = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	int nid = e ? e->ud : -1;
	peer_write_all(c, "early", 5);
	EXPECT_NO_EVENT(&f, nid, quiet(200));
	socket_server_start(f.ss, OWNER, nid);
	EXPECT(&f, SOCKET_OPEN, nid, OWNER, 0, "start");
	EXPECT(&f, SOCKET_DATA, nid, OWNER, 5, "early");
	close(c);
	fixture_finish(&f);
}

static void
connect_v4_reports_peer_ip_only_and_reads_at_once(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	int id = socket_server_connect(f.ss, OWNER, "127.0.0.1", port);
	CHECK(id > 0);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "127.0.0.1");
	int p = peer_accept(lfd, T_EVENT);
	CHECK(p >= 0);
	/* a connected socket reads without start */
	peer_write_all(p, "hello", 5);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 5, "hello");
	CHECK_INT(send_str(f.ss, id, "world"), 0);
	struct bytes b = { 0 };
	peer_read(p, &b, 5, T_EVENT, NULL);
	CHECK(b.n == 5 && memcmp(b.p, "world", 5) == 0);
	bytes_free(&b);
	close(p);
	close(lfd);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	fixture_finish(&f);
}

static void
connect_v6_reports_peer_ip_only(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "::1", 0, &peer);
	CHECK(id > 0);
	peer_write_all(peer, "v6", 2);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 2, "v6");
	close(peer);
	fixture_finish(&f);
}

static int
sockopt(int fd, int level, int name) {
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, name, &v, &len) != 0)
		return -1;
	return v;
}

static void
connected_and_accepted_sockets_have_keepalive_and_nodelay_sets_tcp_nodelay(void) {
	struct fixture f;
	fixture_init(&f);
	int lid, apeer, cpeer;
	int aid = accepted_pair(&f, LOWNER, OWNER, &lid, &apeer);
	int cid = connected_pair(&f, OWNER, "127.0.0.1", 0, &cpeer);
	int afd = library_fd_of(apeer), cfd = library_fd_of(cpeer);
	CHECK(afd >= 0 && cfd >= 0);
	CHECK(sockopt(afd, SOL_SOCKET, SO_KEEPALIVE) > 0);
	CHECK(sockopt(cfd, SOL_SOCKET, SO_KEEPALIVE) > 0);
	CHECK_INT(sockopt(afd, IPPROTO_TCP, TCP_NODELAY), 0);
	socket_server_nodelay(f.ss, aid);
	socket_server_nodelay(f.ss, cid);
	fixture_sync(&f);
	CHECK(sockopt(afd, IPPROTO_TCP, TCP_NODELAY) > 0);
	CHECK(sockopt(cfd, IPPROTO_TCP, TCP_NODELAY) > 0);
	EXPECT_NO_EVENT(&f, aid, 0);
	EXPECT_NO_EVENT(&f, cid, 0);
	close(apeer);
	close(cpeer);
	fixture_finish(&f);
}

static void
connect_to_localhost_resolves_the_name(void) {
	struct fixture f;
	fixture_init(&f);
	/* listen on the same port on both loopbacks: localhost may resolve to either first */
	int port = 0, l4 = -1, l6 = -1;
	for (int tries = 0; tries < 20 && l6 < 0; tries++) {
		if (l4 >= 0)
			close(l4);
		l4 = peer_listen("127.0.0.1", &port, 0);
		int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		struct sockaddr_in6 a = { 0 };
		a.sin6_family = AF_INET6;
		a.sin6_port = htons((uint16_t)port);
		a.sin6_addr = in6addr_loopback;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0)
			l6 = fd;
		else
			close(fd);
	}
	CHECK(l4 >= 0 && l6 >= 0);
	int id = socket_server_connect(f.ss, OWNER, "localhost", port);
	CHECK(id > 0);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, ANY_DATA);
	CHECK(e && e->data && (strcmp(e->data, "127.0.0.1") == 0 || strcmp(e->data, "::1") == 0));
	int p = -1;
	if (e && e->data)
		p = peer_accept(strcmp(e->data, "::1") == 0 ? l6 : l4, T_EVENT);
	CHECK(p >= 0);
	if (p >= 0)
		close(p);
	close(l4);
	close(l6);
	fixture_finish(&f);
}

static void
connect_refused_reports_err_connection_refused(void) {
	struct fixture f;
	fixture_init(&f);
	int holder;
	int port = refused_port("127.0.0.1", &holder);
	int id = socket_server_connect(f.ss, OWNER, "127.0.0.1", port);
	CHECK(id > 0);
	EXPECT(&f, SOCKET_ERR, id, OWNER, 0, "Connection refused");
	/* the id is dead afterwards */
	CHECK_INT(send_str(f.ss, id, "x"), -1);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	close(holder);
	fixture_finish(&f);
}

/* Pauses `id`, writes `text` from the peer and checks nothing is read, then starts the
   socket for `to`, which gets the transfer OPEN and the text. */
static void
pause_then_transfer(struct fixture *f, int id, int peer, uintptr_t from, uintptr_t to, const char *text) {
	size_t len = strlen(text);
	socket_server_pause(f->ss, from, id);
	/* commands of one thread apply in order: once a later command has been processed, the
	   pause has been too */
	fixture_sync(f);
	peer_write_all(peer, text, len);
	EXPECT_NO_EVENT(f, id, quiet(250));
	socket_server_start(f->ss, to, id);
	EXPECT(f, SOCKET_OPEN, id, to, 0, "transfer");
	EXPECT(f, SOCKET_DATA, id, to, (int)len, text);
}

static void
pause_stops_data_and_start_resumes_with_transfer(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	pause_then_transfer(&f, id, peer, OWNER, OWNER2, "abc");
	close(peer);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER2, 0, NULL);
	fixture_finish(&f);
}

/* The poll thread reads a started socket without its lock once it has read it; transfer and
   pause must still take effect from the next read on. */
static void
transfer_and_pause_apply_to_a_socket_already_being_read(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	peer_write_all(peer, "one", 3);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 3, "one");
	socket_server_start(f.ss, OWNER2, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER2, 0, "transfer");
	peer_write_all(peer, "two", 3);
	EXPECT(&f, SOCKET_DATA, id, OWNER2, 3, "two");
	pause_then_transfer(&f, id, peer, OWNER2, OWNER3, "three");
	close(peer);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER3, 0, NULL);
	fixture_finish(&f);
}

static void
start_on_connected_socket_transfers_every_time(void) {
	struct fixture f;
	fixture_init(&f);
	int lid, peer;
	int id = accepted_pair(&f, LOWNER, OWNER, &lid, &peer);
	socket_server_start(f.ss, OWNER2, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER2, 0, "transfer");
	socket_server_start(f.ss, OWNER3, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER3, 0, "transfer");
	socket_server_start(f.ss, OWNER3, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER3, 0, "transfer");
	peer_write_all(peer, "x", 1);
	EXPECT(&f, SOCKET_DATA, id, OWNER3, 1, "x");
	/* the opaque given to close is not used: CLOSE carries the current owner */
	socket_server_close(f.ss, OWNER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER3, 0, NULL);
	close(peer);
	fixture_finish(&f);
}

static void
read_buffer_grows_from_64_and_adapts(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, LOWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, LOWNER, ANY_UD, ANY_DATA);
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int c = peer_connect("127.0.0.1", port, 0);
	e = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	int id = e ? e->ud : -1;
	/* 32 KiB waits in the kernel before the socket is started */
	const size_t total = 32768;
	unsigned char *src = malloc(total);
	fill_pattern(src, total, 3, 0);
	peer_write_all(c, src, total);
	socket_server_start(f.ss, OWNER, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "start");
	struct bytes got = { 0 }, sizes = { 0 };
	collect_data(&f, id, &got, total, T_EVENT, &sizes);
	CHECK_INT(got.n, total);
	CHECK(got.n == total && check_pattern(got.p, got.n, 3, 0) == (size_t)-1);
	int n = (int)(sizes.n / sizeof(int));
	int *ud = (int *)sizes.p;
	CHECK(n >= 8);
	/* upstream's rule: start at 64; a read that filled the buffer doubles it, one that filled
	   less than half halves it (never below 64) */
	int size = 64, max = 0;
	for (int i = 0; i < n; i++) {
		if (ud[i] > size)
			check_fail_at(__FILE__, __LINE__, "DATA #%d has %d bytes, buffer is %d", i, ud[i],
				size);
		if (ud[i] > max)
			max = ud[i];
		if (ud[i] == size)
			size *= 2;
		else if (size > 64 && ud[i] * 2 < size)
			size /= 2;
	}
	CHECK(n > 0 && ud[0] == 64);
	CHECK(n > 2 && ud[1] == 128 && ud[2] == 256);
	CHECK(max >= 8192);
	free(src);
	bytes_free(&got);
	bytes_free(&sizes);
	close(c);
	fixture_finish(&f);
}

/* ---- commands from several threads */

struct conn_worker {
	struct fixture *f;
	int port;
	int index;
	int id;
	int ok;
};

#define MSGS 200
#define MSG_LEN 16

static void *
conn_worker_main(void *arg) {
	struct conn_worker *w = arg;
	uintptr_t owner = 0x100 + (uintptr_t)w->index;
	w->id = socket_server_connect(w->f->ss, owner, "127.0.0.1", w->port);
	struct ev *e = take_event(w->f, w->id, T_EVENT);
	w->ok = e && e->type == SOCKET_OPEN && e->opaque == owner;
	if (!w->ok)
		return NULL;
	socket_server_nodelay(w->f->ss, w->id);
	for (int k = 0; k < MSGS; k++) {
		char m[32];
		snprintf(m, sizeof(m), "T%d-%012d", w->index, k);
		if (k % 2)
			w->ok &= send_mem(w->f->ss, w->id, m, MSG_LEN) == 0;
		else
			w->ok &= send_raw(w->f->ss, w->id, m, MSG_LEN) == 0;
	}
	socket_server_close(w->f->ss, owner, w->id);
	e = take_event(w->f, w->id, T_EVENT);
	w->ok &= e && e->type == SOCKET_CLOSE && e->opaque == owner;
	return NULL;
}

static void
commands_from_four_threads_all_take_effect(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	struct conn_worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct conn_worker){ &f, port, i, -1, 0 };
		pthread_create(&th[i], NULL, conn_worker_main, &w[i]);
	}
	int seen[4] = { 0 };
	for (int i = 0; i < 4; i++) {
		int p = peer_accept(lfd, T_EVENT);
		if (!CHECK(p >= 0))
			break;
		struct bytes b = { 0 };
		int err;
		CHECK(peer_read_to_eof(p, &b, tmo(10000), &err));
		CHECK_INT(b.n, MSGS * MSG_LEN);
		int who = b.n > 1 ? b.p[1] - '0' : -1;
		if (CHECK(who >= 0 && who < 4))
			seen[who]++;
		for (int k = 0; k < MSGS && (size_t)(k + 1) * MSG_LEN <= b.n; k++) {
			char m[32];
			snprintf(m, sizeof(m), "T%d-%012d", who, k);
			if (memcmp(b.p + k * MSG_LEN, m, MSG_LEN) != 0) {
				check_fail_at(__FILE__, __LINE__, "connection of thread %d: message %d is wrong",
					who, k);
				break;
			}
		}
		bytes_free(&b);
		close(p);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].ok);
		CHECK_INT(seen[i], 1);
	}
	close(lfd);
	fixture_finish(&f);
}

struct send_worker {
	struct fixture *f;
	int id;
	int index;
	int ok;
};

static void *
send_worker_main(void *arg) {
	struct send_worker *w = arg;
	w->ok = 1;
	for (int k = 0; k < 500; k++) {
		char m[32];
		snprintf(m, sizeof(m), "W%d-%012d", w->index, k);
		int r;
		if (k % 3 == 0)
			r = send_raw(w->f->ss, w->id, m, MSG_LEN);
		else if (k % 3 == 1)
			r = send_mem(w->f->ss, w->id, m, MSG_LEN);
		else
			r = send_mem_low(w->f->ss, w->id, m, MSG_LEN);
		w->ok &= r == 0;
	}
	return NULL;
}

static void
concurrent_sends_on_one_socket_keep_each_threads_order(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	struct send_worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct send_worker){ &f, id, i, 0 };
		pthread_create(&th[i], NULL, send_worker_main, &w[i]);
	}
	struct bytes b = { 0 };
	int err;
	peer_read(peer, &b, 4 * 500 * MSG_LEN, tmo(10000), &err);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].ok);
	}
	CHECK_INT(b.n, 4 * 500 * MSG_LEN);
	/* low priority sends may be overtaken by high ones, so check that every message arrives
	   intact exactly once and that each thread's high and low messages keep their own order */
	int count[4] = { 0 };
	int last_high[4] = { -1, -1, -1, -1 };
	int last_low[4] = { -1, -1, -1, -1 };
	for (size_t off = 0; off + MSG_LEN <= b.n; off += MSG_LEN) {
		int who, k;
		char m[32];
		memcpy(m, b.p + off, MSG_LEN);
		m[MSG_LEN] = 0;
		if (sscanf(m, "W%d-%d", &who, &k) != 2 || who < 0 || who > 3 || k < 0 || k >= 500) {
			check_fail_at(__FILE__, __LINE__, "garbled message at offset %zu: %s", off, m);
			break;
		}
		count[who]++;
		int *last = k % 3 != 2 ? &last_high[who] : &last_low[who];
		if (k <= *last)
			check_fail_at(__FILE__, __LINE__, "thread %d: message %d after %d", who, k, *last);
		*last = k;
	}
	for (int i = 0; i < 4; i++)
		CHECK_INT(count[i], 500);
	bytes_free(&b);
	EXPECT_NO_EVENT(&f, id, quiet(50));
	close(peer);
	fixture_finish(&f);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(listen_on_port_0_reports_bound_ip_and_real_port),
		TEST(listen_with_null_or_empty_host_binds_0_0_0_0),
		TEST(listen_on_ipv6_reports_the_v6_address),
		TEST(listen_on_busy_port_or_bad_host_returns_minus_1),
		TEST(start_on_listener_reports_start_and_a_second_start_changes_nothing),
		TEST(accept_v4_reports_peer_ip_port_and_listener_owner),
		TEST(accept_v6_reports_address_without_brackets),
		TEST(accepted_socket_reads_nothing_until_started),
		TEST(connect_v4_reports_peer_ip_only_and_reads_at_once),
		TEST(connect_v6_reports_peer_ip_only),
		TEST(connect_to_localhost_resolves_the_name),
		TEST(connected_and_accepted_sockets_have_keepalive_and_nodelay_sets_tcp_nodelay),
		TEST(connect_refused_reports_err_connection_refused),
		TEST(pause_stops_data_and_start_resumes_with_transfer),
		TEST(transfer_and_pause_apply_to_a_socket_already_being_read),
		TEST(start_on_connected_socket_transfers_every_time),
		TEST(read_buffer_grows_from_64_and_adapts),
		TEST(commands_from_four_threads_all_take_effect),
		TEST(concurrent_sends_on_one_socket_keep_each_threads_order),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
