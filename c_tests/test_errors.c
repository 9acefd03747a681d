/* Stale ids in every call (SPEC 3), exit and release, poll with a NULL `more`. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define OWNER2 ((uintptr_t)0x2002)

/* Every call that takes an id, with a bad one: nothing may crash or touch a live socket. */
static void
exercise_bad_id(struct fixture *f, int bad) {
	struct socket_server *ss = f->ss;
	struct tobj o, lo;
	tobj_init(&o, "obj", 3);
	tobj_init(&lo, "low", 3);
	CHECK_INT(send_str(ss, bad, "mem"), -1);
	CHECK_INT(send_mem_low(ss, bad, "low", 3), -1);
	CHECK_INT(send_raw(ss, bad, "raw", 3), -1);
	CHECK_INT(send_obj(ss, bad, &o), -1);
	CHECK_INT(send_obj_low(ss, bad, &lo), -1);
	socket_server_close(ss, OWNER, bad);
	socket_server_shutdown(ss, OWNER, bad);
	socket_server_pause(ss, OWNER, bad);
	socket_server_nodelay(ss, bad);
	CHECK_INT(socket_server_udp_connect(ss, bad, "127.0.0.1", 9), -1);
	uint8_t addr[7] = { 1, 0, 9, 127, 0, 0, 1 };
	char *m = malloc(3);
	memcpy(m, "udp", 3);
	struct socket_sendbuffer b = { bad, SOCKET_BUFFER_MEMORY, m, 3 };
	CHECK_INT(socket_server_udp_send(ss, (const struct socket_udp_address *)addr, &b), -1);
	socket_server_start(ss, OWNER2, bad);
	EXPECT(f, SOCKET_ERR, bad, OWNER2, 0, "invalid socket");
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	CHECK_INT(tobj_wait_frees(&lo, 1, T_EVENT), 1);
	EXPECT_NO_EVENT(f, bad, quiet(20));
}

/* The live TCP socket and UDP socket still work exactly as before. */
static void
check_live(struct fixture *f, int id, int peer, int u, int p1, int p2) {
	struct socket_info si;
	if (CHECK(info_find(f->ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_TCP);
		CHECK_INT(si.opaque, OWNER);
		CHECK_INT(si.reading, 1);
	}
	peer_write_all(peer, "still", 5);
	EXPECT(f, SOCKET_DATA, id, OWNER, 5, "still");
	CHECK_INT(send_str(f->ss, id, "alive"), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 5, T_EVENT, NULL);
	CHECK(b.n == 5 && memcmp(b.p, "alive", 5) == 0);
	bytes_free(&b);
	CHECK_INT(send_str(f->ss, u, "udp-alive"), 0);
	char buf[64];
	CHECK_INT(udp_peer_recv(p1, buf, sizeof(buf), T_EVENT, NULL), 9);
	CHECK(peer_silent(p2, quiet(30)));
	EXPECT_NO_EVENT(f, id, quiet(50));
	EXPECT_NO_EVENT(f, u, 0);
}

static void
setup_live(struct fixture *f, int *id, int *peer, int *u, int *p1, int *p2) {
	*id = connected_pair(f, OWNER, "127.0.0.1", 0, peer);
	int port1, port2;
	*p1 = udp_peer("127.0.0.1", &port1);
	*p2 = udp_peer("127.0.0.1", &port2);
	*u = socket_server_udp(f->ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f->ss, *u, 1, T_EVENT));
	CHECK_INT(socket_server_udp_connect(f->ss, *u, "127.0.0.1", port1), 0);
	/* a udp_connect on the same slot under another id must not redirect the live socket */
	CHECK_INT(socket_server_udp_connect(f->ss, *u + 65536, "127.0.0.1", port2), -1);
}

static void
closed_ids_and_same_slot_ids_are_harmless_in_every_call(void) {
	struct fixture f;
	fixture_init(&f);
	/* a closed TCP id, a closed UDP id, a closed listener id */
	int dead_peer;
	int dead = connected_pair(&f, OWNER, "127.0.0.1", 0, &dead_peer);
	socket_server_close(f.ss, OWNER, dead);
	EXPECT(&f, SOCKET_CLOSE, dead, OWNER, 0, NULL);
	close(dead_peer);
	int dead_udp = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, dead_udp, 1, T_EVENT));
	socket_server_close(f.ss, OWNER, dead_udp);
	EXPECT(&f, SOCKET_CLOSE, dead_udp, OWNER, 0, NULL);
	int dead_listen = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 8);
	EXPECT(&f, SOCKET_OPEN, dead_listen, OWNER, ANY_UD, ANY_DATA);
	socket_server_close(f.ss, OWNER, dead_listen);
	EXPECT(&f, SOCKET_CLOSE, dead_listen, OWNER, 0, NULL);

	int id, peer, u, p1, p2;
	setup_live(&f, &id, &peer, &u, &p1, &p2);
	int bad[] = { dead, dead_udp, dead_listen, id + 65536, u + 65536, id + 2 * 65536 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		exercise_bad_id(&f, bad[i]);
	check_live(&f, id, peer, u, p1, p2);
	close(peer);
	close(p1);
	close(p2);
	fixture_finish(&f);
}

static void
never_issued_negative_and_zero_ids_are_harmless_in_every_call(void) {
	struct fixture f;
	fixture_init(&f);
	int id, peer, u, p1, p2;
	setup_live(&f, &id, &peer, &u, &p1, &p2);
	int bad[] = { 0, -1, -65536, INT_MIN, INT_MAX, 4242, 65536 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		exercise_bad_id(&f, bad[i]);
	check_live(&f, id, peer, u, p1, p2);
	close(peer);
	close(p1);
	close(p2);
	fixture_finish(&f);
}

static void
exit_reports_exit_with_id_0_and_no_data(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	(void)id;
	socket_server_exit(f.ss);
	EXPECT(&f, SOCKET_EXIT, 0, 0, 0, NULL);
	/* release after EXIT closes every socket */
	fixture_finish(&f);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, T_EVENT, &err));
	CHECK_INT(b.n, 0);
	bytes_free(&b);
	close(peer);
}

static void
release_frees_queued_memory_and_closes_listeners(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * 1024 * 1024, 65536, 1, &off), 0);
	CHECK_INT(send_mem_low(f.ss, id, "low", 3), 0);
	int lid = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 8);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, OWNER, ANY_UD, ANY_DATA);
	int port = e ? e->ud : 0;
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	fixture_finish(&f); /* valgrind checks that the queued MEMORY buffers were freed */
	int c = peer_connect("127.0.0.1", port, 0);
	CHECK(c < 0);
	if (c >= 0)
		close(c);
	close(peer);
}

static void
poll_accepts_a_null_more_pointer(void) {
	struct fixture f;
	fixture_init_nopoll(&f);
	/* this thread is the poll thread here */
	int id = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 8);
	struct socket_message m;
	memset(&m, 0, sizeof(m));
	CHECK_INT(socket_server_poll(f.ss, &m, NULL), SOCKET_OPEN);
	CHECK_INT(m.id, id);
	CHECK(m.data && strcmp(m.data, "127.0.0.1") == 0);
	int more = 1;
	socket_server_exit(f.ss);
	CHECK_INT(socket_server_poll(f.ss, &m, &more), SOCKET_EXIT);
	CHECK_INT(m.id, 0);
	CHECK(m.data == NULL);
	fixture_finish(&f);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(closed_ids_and_same_slot_ids_are_harmless_in_every_call),
		TEST(never_issued_negative_and_zero_ids_are_harmless_in_every_call),
		TEST(exit_reports_exit_with_id_0_and_no_data),
		TEST(release_frees_queued_memory_and_closes_listeners),
		TEST(poll_accepts_a_null_more_pointer),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
