/* Where the library must do better than upstream (SPEC 12 and the defect list of SPEC 14).
   Upstream fails or crashes here; see README.md for the reason of each test. */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define LOWNER ((uintptr_t)0x4004)

static void
send_before_connect_is_processed_is_delivered_after_open(void) {
	struct fixture f;
	fixture_init_nopoll(&f); /* nothing is processed until the poll thread starts */
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	int id = socket_server_connect(f.ss, OWNER, "127.0.0.1", port);
	CHECK(id > 0);
	CHECK_INT(send_str(f.ss, id, "early"), 0);
	CHECK_INT(send_mem_low(f.ss, id, "-low", 4), 0);
	fixture_start_poll(&f);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "127.0.0.1");
	int p = peer_accept(lfd, T_EVENT);
	struct bytes b = { 0 };
	peer_read(p, &b, 9, T_EVENT, NULL);
	CHECK(b.n == 9 && memcmp(b.p, "early-low", 9) == 0);
	bytes_free(&b);
	close(p);
	close(lfd);
	fixture_finish(&f);
}

static void
null_server_and_null_arguments_are_refused(void) {
	struct socket_message m;
	int more;
	CHECK_INT(socket_server_poll(NULL, &m, &more), -1);
	socket_server_release(NULL);
	socket_server_updatetime(NULL, 1);
	socket_server_exit(NULL);
	socket_server_close(NULL, OWNER, 1);
	socket_server_shutdown(NULL, OWNER, 1);
	socket_server_start(NULL, OWNER, 1);
	socket_server_pause(NULL, OWNER, 1);
	socket_server_nodelay(NULL, 1);
	socket_server_userobject(NULL, &test_soi);
	CHECK(socket_server_info(NULL) == NULL);
	CHECK_INT(socket_server_listen(NULL, OWNER, "127.0.0.1", 0, 8), -1);
	CHECK_INT(socket_server_connect(NULL, OWNER, "127.0.0.1", 9), -1);
	CHECK_INT(socket_server_bind(NULL, OWNER, 0), -1);
	CHECK_INT(socket_server_udp(NULL, OWNER, "127.0.0.1", 0), -1);
	CHECK_INT(socket_server_udp_listen(NULL, OWNER, "127.0.0.1", 9), -1);
	CHECK_INT(socket_server_udp_dial(NULL, OWNER, "127.0.0.1", 9), -1);
	CHECK_INT(socket_server_udp_connect(NULL, 1, "127.0.0.1", 9), -1);
	CHECK(socket_server_udp_address(NULL, NULL, NULL) == NULL);
	{
		/* (RAWPOINTER: whether a NULL server takes ownership of a MEMORY payload is open) */
		char raw[4] = "raw";
		struct socket_sendbuffer b = { 1, SOCKET_BUFFER_RAWPOINTER, raw, 3 };
		CHECK_INT(socket_server_send(NULL, &b), -1);
		CHECK_INT(socket_server_send_lowpriority(NULL, &b), -1);
		CHECK_INT(socket_server_udp_send(NULL, NULL, &b), -1);
	}

	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	CHECK_INT(socket_server_send(f.ss, NULL), -1);
	CHECK_INT(socket_server_send_lowpriority(f.ss, NULL), -1);
	CHECK_INT(socket_server_connect(f.ss, OWNER, NULL, 9), -1);
	int sz = 777;
	CHECK(socket_server_udp_address(f.ss, NULL, &sz) == NULL);
	CHECK_INT(sz, 777);
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	{
		char *mem = malloc(4);
		memcpy(mem, "null", 4);
		struct socket_sendbuffer b = { u, SOCKET_BUFFER_MEMORY, mem, 4 };
		CHECK_INT(socket_server_udp_send(f.ss, NULL, &b), -1);
		CHECK_INT(socket_server_udp_send(f.ss, NULL, NULL), -1);
	}
	/* the server is unharmed */
	CHECK_INT(send_str(f.ss, id, "fine"), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 4, T_EVENT, NULL);
	CHECK(b.n == 4 && memcmp(b.p, "fine", 4) == 0);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
unknown_buffer_type_is_refused(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	/* the library cannot know how to free an unknown kind: a stack buffer must be left alone */
	char stack[8] = "bogus";
	struct socket_sendbuffer b = { id, 99, stack, 5 };
	CHECK_INT(socket_server_send(f.ss, &b), -1);
	CHECK_INT(socket_server_send_lowpriority(f.ss, &b), -1);
	b.type = -1;
	CHECK_INT(socket_server_send(f.ss, &b), -1);
	CHECK(peer_silent(peer, quiet(100)));
	CHECK_INT(send_str(f.ss, id, "fine"), 0);
	struct bytes got = { 0 };
	peer_read(peer, &got, 4, T_EVENT, NULL);
	CHECK(got.n == 4 && memcmp(got.p, "fine", 4) == 0);
	bytes_free(&got);
	close(peer);
	fixture_finish(&f);
}

static void
udp_info_name_is_empty_without_a_destination(void) {
	struct fixture f;
	fixture_init(&f);
	/* a named socket listed before the UDP one (upstream leaks its name into the next entry) */
	int lid = socket_server_listen(f.ss, LOWNER, "127.0.0.1", 0, 8);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, ANY_UD, ANY_DATA);
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int u = socket_server_udp(f.ss, OWNER, NULL, 0);
	int u2 = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	CHECK(info_wait(f.ss, u2, 1, T_EVENT));
	struct socket_info si;
	CHECK(info_find(f.ss, u, &si) && si.type == SOCKET_INFO_UDP);
	CHECK_STR(si.name, "");
	CHECK(info_find(f.ss, u2, &si) && si.type == SOCKET_INFO_UDP);
	CHECK_STR(si.name, "");
	fixture_finish(&f);
}

static void
host_names_longer_than_256_bytes_work(void) {
	struct fixture f;
	fixture_init(&f);
	int port;
	int lfd = peer_listen("127.0.0.1", &port, 0);
	/* a numeric address in inet_aton's octal form: 300 leading zeros, no name lookup */
	char host[400];
	memset(host, '0', 300);
	strcpy(host + 300, "177.0.0.1");
	int id = socket_server_connect(f.ss, OWNER, host, port);
	CHECK(id > 0);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "127.0.0.1");
	int p = peer_accept(lfd, T_EVENT);
	CHECK(p >= 0);
	if (p >= 0)
		close(p);
	close(lfd);
	fixture_finish(&f);
}

static void
sigpipe_cannot_kill_a_host_that_does_not_ignore_it(void) {
	signal(SIGPIPE, SIG_DFL);
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	/* while the poll thread is parked: the peer closes, a first write draws its RST, the
	   second write's error (ECONNRESET) is consumed in the caller, the third is queued; the
	   poll thread then writes into a reset socket (EPIPE) */
	int lib_fd = library_fd_of(peer);
	CHECK(lib_fd >= 0);
	CHECK(fixture_hold(&f, OWNER, id));
	close(peer);
	CHECK_INT(send_str(f.ss, id, "x"), 0);
	/* wait for the RST: poll() reports POLLERR/POLLHUP without consuming the error */
	struct pollfd pf = { lib_fd, 0, 0 };
	CHECK(poll(&pf, 1, T_EVENT) == 1 && (pf.revents & POLLERR));
	CHECK_INT(send_str(f.ss, id, "y"), 0);
	CHECK_INT(send_str(f.ss, id, "z"), 0);
	fixture_release_hold(&f);
	int counts[8];
	drain_events(&f, id, quiet(300), counts);
	CHECK_INT(counts[SOCKET_CLOSE], 1);
	CHECK(counts[SOCKET_ERR] <= 1);
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	fixture_finish(&f);
}

static int
fd_is_open(int fd) {
	return fcntl(fd, F_GETFD) != -1;
}

static void
every_library_descriptor_is_close_on_exec(void) {
	static char before[4096];
	for (int fd = 0; fd < 4096; fd++)
		before[fd] = (char)fd_is_open(fd);
	struct fixture f;
	fixture_init(&f);
	int lid, peer, peer2;
	accepted_pair(&f, LOWNER, OWNER, &lid, &peer);
	connected_pair(&f, OWNER, "127.0.0.1", 0, &peer2);
	int pport;
	int up = udp_peer("127.0.0.1", &pport);
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	int d = socket_server_udp_dial(f.ss, OWNER, "127.0.0.1", pport);
	int l6 = socket_server_listen(f.ss, OWNER, "::1", 0, 8);
	EXPECT(&f, SOCKET_OPEN, l6, OWNER, ANY_UD, "::1");
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	CHECK(info_wait(f.ss, d, 1, T_EVENT));
	/* the harness's own descriptors are all close-on-exec */
	int checked = 0;
	for (int fd = 0; fd < 4096; fd++) {
		if (before[fd] || !fd_is_open(fd))
			continue;
		checked++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			check_fail_at(__FILE__, __LINE__, "descriptor %d is not close-on-exec", fd);
	}
	CHECK(checked >= 6);
	close(up);
	close(peer);
	close(peer2);
	fixture_finish(&f);
}

static void
udp_dial_socket_writes_directly(void) {
	struct fixture f;
	fixture_init(&f);
	int tpeer;
	int tid = connected_pair(&f, OWNER, "127.0.0.1", 0, &tpeer);
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	int d = socket_server_udp_dial(f.ss, OWNER, "127.0.0.1", pport);
	CHECK(info_wait(f.ss, d, 1, T_EVENT));
	/* with the poll thread parked, only a direct write can deliver */
	CHECK(fixture_hold(&f, OWNER, tid));
	CHECK_INT(send_str(f.ss, d, "direct"), 0);
	char buf[64];
	CHECK_INT(udp_peer_recv(p, buf, sizeof(buf), tmo(1000), NULL), 6);
	fixture_release_hold(&f);
	close(p);
	close(tpeer);
	fixture_finish(&f);
}

static void
udp_socket_writes_directly_after_a_failed_udp_connect(void) {
	struct fixture f;
	fixture_init(&f);
	int tpeer;
	int tid = connected_pair(&f, OWNER, "127.0.0.1", 0, &tpeer);
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	CHECK_INT(socket_server_udp_connect(f.ss, u, "::1", 9), 0);
	EXPECT(&f, SOCKET_ERR, u, OWNER, 0, "protocol mismatch");
	CHECK_INT(socket_server_udp_connect(f.ss, u, "127.0.0.1", pport), 0);
	fixture_sync(&f);
	CHECK(fixture_hold(&f, OWNER, tid));
	CHECK_INT(send_str(f.ss, u, "direct"), 0);
	char buf[64];
	CHECK_INT(udp_peer_recv(p, buf, sizeof(buf), tmo(1000), NULL), 6);
	fixture_release_hold(&f);
	close(p);
	close(tpeer);
	fixture_finish(&f);
}

static void
udp_dial_without_a_free_slot_leaks_nothing(void) {
	struct fixture f;
	struct exhausted x;
	slots_exhaust(&f, &x);
	CHECK_INT(x.count, MAX_SOCKETS);
	int n0 = count_open_fds();
	for (int i = 0; i < 8; i++)
		CHECK_INT(socket_server_udp_dial(f.ss, OWNER, "127.0.0.1", 9), -1);
	CHECK_INT(count_open_fds(), n0); /* and valgrind checks memory */
	CHECK_INT(slots_drain(&f, &x), MAX_SOCKETS);
	fixture_finish(&f);
	slots_cleanup(&x);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(send_before_connect_is_processed_is_delivered_after_open),
		TEST(null_server_and_null_arguments_are_refused),
		TEST(unknown_buffer_type_is_refused),
		TEST(udp_info_name_is_empty_without_a_destination),
		TEST(host_names_longer_than_256_bytes_work),
		TEST(sigpipe_cannot_kill_a_host_that_does_not_ignore_it),
		TEST(every_library_descriptor_is_close_on_exec),
		TEST(udp_dial_socket_writes_directly),
		TEST(udp_socket_writes_directly_after_a_failed_udp_connect),
		TEST(udp_dial_without_a_free_slot_leaks_nothing),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
