/* socket_server_info (SPEC 9): kinds, names, counters, flags, and which sockets are listed. */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define OWNER2 ((uintptr_t)0x2002)
#define LOWNER ((uintptr_t)0x4004)

#define MiB (1024 * 1024)

static void
info_of_an_empty_server_is_null(void) {
	struct fixture f;
	fixture_init(&f);
	struct socket_info *si = socket_server_info(f.ss);
	CHECK(si == NULL);
	socket_info_release(si);
	fixture_finish(&f);
}

static void
socket_info_create_and_release_build_a_list(void) {
	struct socket_info *a = socket_info_create(NULL);
	CHECK(a != NULL && a->next == NULL && a->id == 0 && a->type == 0 && a->name[0] == 0);
	struct socket_info *b = socket_info_create(a);
	CHECK(b != NULL && b->next == a);
	socket_info_release(b);
	socket_info_release(NULL);
}

static void
listener_is_listed_once_started_with_local_name_and_accept_count(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, OWNER, ANY_UD, "127.0.0.1");
	int port = e ? e->ud : 0;
	CHECK(!info_find(f.ss, lid, NULL)); /* not started */
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int c1 = peer_connect("127.0.0.1", port, 0);
	int c2 = peer_connect("127.0.0.1", port, 0);
	struct ev *a1 = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	struct ev *a2 = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	struct socket_info si;
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", port);
	if (CHECK(info_find(f.ss, lid, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_LISTEN);
		CHECK_STR(si.name, name);
		CHECK_INT(si.opaque, LOWNER);
		CHECK_INT(si.read, 2);
		CHECK_INT(si.wbuffer, 0);
	}
	/* accepted but not started: not listed */
	if (a1 && a2) {
		CHECK(!info_find(f.ss, a1->ud, NULL));
		CHECK(!info_find(f.ss, a2->ud, NULL));
		socket_server_start(f.ss, OWNER, a1->ud);
		EXPECT(&f, SOCKET_OPEN, a1->ud, OWNER, 0, "start");
		CHECK(info_find(f.ss, a1->ud, NULL));
		CHECK(!info_find(f.ss, a2->ud, NULL));
	}
	close(c1);
	close(c2);
	fixture_finish(&f);
}

static void
tcp_socket_shows_peer_name_counters_times_and_owner(void) {
	struct fixture f;
	fixture_init(&f);
	int lid, peer;
	int id = accepted_pair(&f, LOWNER, OWNER, &lid, &peer);
	socket_server_updatetime(f.ss, 4242);
	peer_write_all(peer, "0123456789", 10);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 10, "0123456789");
	CHECK_INT(send_str(f.ss, id, "abcdefg"), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 7, T_EVENT, NULL);
	CHECK_INT(b.n, 7);
	struct socket_info si;
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(peer));
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_TCP);
		CHECK_STR(si.name, name);
		CHECK_INT(si.opaque, OWNER);
		CHECK_INT(si.read, 10);
		CHECK_INT(si.write, 7);
		CHECK_INT(si.rtime, 4242);
		CHECK_INT(si.wtime, 4242);
		CHECK_INT(si.reading, 1);
		CHECK_INT(si.writing, 0);
		CHECK_INT(si.wbuffer, 0);
	}
	socket_server_updatetime(f.ss, 5000);
	peer_write_all(peer, "xy", 2);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 2, "xy");
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.read, 12);
		CHECK_INT(si.rtime, 5000);
		CHECK_INT(si.wtime, 4242);
	}
	/* a transfer changes the listed owner */
	socket_server_start(f.ss, OWNER2, id);
	EXPECT(&f, SOCKET_OPEN, id, OWNER2, 0, "transfer");
	CHECK(info_find(f.ss, id, &si) && si.opaque == OWNER2);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
connected_socket_is_named_after_the_peer(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("::1", &port, 0);
	int id = socket_server_connect(f.ss, OWNER, "::1", port);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "::1");
	int p = peer_accept(lfd, T_EVENT);
	struct socket_info si;
	char name[64];
	snprintf(name, sizeof(name), "::1:%d", port);
	CHECK(info_find(f.ss, id, &si) && si.type == SOCKET_INFO_TCP);
	CHECK_STR(si.name, name);
	close(p);
	close(lfd);
	fixture_finish(&f);
}

static int
drained(void *arg) {
	void **a = arg;
	struct socket_info si;
	return info_find(a[0], *(int *)a[1], &si) && si.wbuffer == 0 && si.writing == 0;
}

static void
paused_and_congested_flags_and_wbuffer(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	socket_server_pause(f.ss, OWNER, id);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * MiB, 65536, 1, &off), 0);
	fixture_sync(&f);
	struct socket_info si;
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.reading, 0);
		CHECK_INT(si.writing, 1);
		/* every chunk after the first is queued */
		CHECK(si.wbuffer >= 2 * MiB - 2 * 65536 && si.wbuffer <= 2 * MiB);
	}
	struct bytes b = { 0 };
	peer_read(peer, &b, 2 * MiB, tmo(10000), NULL);
	CHECK_INT(b.n, 2 * MiB);
	void *arg[2] = { f.ss, &id };
	CHECK(wait_until(drained, arg, T_EVENT));
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.write, 2 * MiB);
		CHECK_INT(si.reading, 0);
	}
	socket_server_start(f.ss, OWNER, id);
	EXPECT_AFTER_WARNINGS(&f, SOCKET_OPEN, id, OWNER, 0, "transfer");
	CHECK(info_find(f.ss, id, &si) && si.reading == 1);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
half_closed_socket_is_listed_as_closing(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(peer));
	shutdown(peer, SHUT_WR);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct socket_info si;
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_CLOSING);
		CHECK_STR(si.name, name);
		CHECK_INT(si.reading, 0);
	}
	socket_server_close(f.ss, OWNER, id);
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	close(peer);
	fixture_finish(&f);
}

static void
bound_fd_is_listed_as_bind_with_empty_name(void) {
	struct fixture f;
	fixture_init(&f);
	int p[2];
	CHECK(pipe(p) == 0);
	int id = socket_server_bind(f.ss, OWNER, p[0]);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "binding");
	struct socket_info si;
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_BIND);
		CHECK_STR(si.name, "");
		CHECK_INT(si.opaque, OWNER);
	}
	socket_server_close(f.ss, OWNER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	CHECK(!info_find(f.ss, id, NULL));
	fixture_finish(&f);
	close(p[0]);
	close(p[1]);
}

static void
bound_tcp_descriptor_is_named_after_its_peer_once_eof_was_read(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	int c = peer_connect("127.0.0.1", port, 0);
	int s = peer_accept(lfd, T_EVENT);
	CHECK(c >= 0 && s >= 0);
	int id = socket_server_bind(f.ss, OWNER, s);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "binding");
	struct socket_info si;
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_BIND);
		CHECK_STR(si.name, "");
	}
	/* once its peer's EOF moved it on, it is listed as any half-closed connection */
	shutdown(c, SHUT_WR);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	char name[64];
	snprintf(name, sizeof(name), "127.0.0.1:%d", sock_port(c));
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_CLOSING);
		CHECK_STR(si.name, name);
	}
	socket_server_close(f.ss, OWNER, id);
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	fixture_finish(&f);
	/* the library closed it: its state had moved on from "bound" (SPEC 4) */
	CHECK(fcntl(s, F_GETFD) == -1);
	close(c);
	close(lfd);
}

/* ---- info from another thread while sockets come and go */

struct info_reader {
	struct socket_server *ss;
	atomic_int stop;
	int rounds;
	int bad;
};

static void *
info_reader_main(void *arg) {
	struct info_reader *r = arg;
	while (!atomic_load(&r->stop)) {
		struct socket_info *list = socket_server_info(r->ss);
		for (struct socket_info *i = list; i; i = i->next) {
			if (i->id <= 0 || i->type < SOCKET_INFO_LISTEN || i->type > SOCKET_INFO_CLOSING ||
				memchr(i->name, 0, sizeof(i->name)) == NULL)
				r->bad++;
		}
		socket_info_release(list);
		r->rounds++;
	}
	return NULL;
}

static void
info_is_safe_while_sockets_come_and_go(void) {
	struct fixture f;
	fixture_init(&f);
	struct info_reader r = { f.ss, 0, 0, 0 };
	atomic_init(&r.stop, 0);
	pthread_t th;
	pthread_create(&th, NULL, info_reader_main, &r);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	for (int i = 0; i < 50; i++) {
		int id = socket_server_connect(f.ss, OWNER, "127.0.0.1", port);
		EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "127.0.0.1");
		int p = peer_accept(lfd, T_EVENT);
		/* dialled, so it always has a name (see test_beyond_upstream for one without) */
		int u = socket_server_udp_dial(f.ss, OWNER, "127.0.0.1", port);
		CHECK_INT(send_str(f.ss, id, "x"), 0);
		if (i % 2) {
			socket_server_close(f.ss, OWNER, id);
			EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
		} else {
			struct bytes b = { 0 };
			peer_read(p, &b, 1, T_EVENT, NULL);
			CHECK_INT(b.n, 1);
			bytes_free(&b);
			close(p);
			p = -1;
			EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
			socket_server_close(f.ss, OWNER, id);
		}
		socket_server_close(f.ss, OWNER, u);
		EXPECT(&f, SOCKET_CLOSE, u, OWNER, 0, NULL);
		if (p >= 0)
			close(p);
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	CHECK_INT(r.bad, 0);
	CHECK(r.rounds > 0);
	close(lfd);
	fixture_finish(&f);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(info_of_an_empty_server_is_null),
		TEST(socket_info_create_and_release_build_a_list),
		TEST(listener_is_listed_once_started_with_local_name_and_accept_count),
		TEST(tcp_socket_shows_peer_name_counters_times_and_owner),
		TEST(connected_socket_is_named_after_the_peer),
		TEST(paused_and_congested_flags_and_wbuffer),
		TEST(half_closed_socket_is_listed_as_closing),
		TEST(bound_fd_is_listed_as_bind_with_empty_name),
		TEST(bound_tcp_descriptor_is_named_after_its_peer_once_eof_was_read),
		TEST(info_is_safe_while_sockets_come_and_go),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
