/* The close state machine (SPEC 6): close, shutdown, peer FIN, peer RST, bound descriptors. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define OTHER ((uintptr_t)0x2002)
#define LOWNER ((uintptr_t)0x4004)

#define MiB (1024 * 1024)

static void
close_idle_socket_reports_one_close_and_peer_sees_eof(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	/* the opaque passed to close is not used */
	socket_server_close(f.ss, OTHER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, T_EVENT, &err));
	CHECK_INT(b.n, 0);
	CHECK_INT(err, 0);
	/* a second close, and sends, on the closed id do nothing */
	socket_server_close(f.ss, OWNER, id);
	CHECK_INT(send_str(f.ss, id, "late"), -1);
	EXPECT_NO_EVENT(&f, id, quiet(150));
	CHECK(!info_find(f.ss, id, NULL));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
shutdown_idle_socket_reports_one_close(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	socket_server_shutdown(f.ss, OTHER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	socket_server_shutdown(f.ss, OWNER, id);
	socket_server_close(f.ss, OWNER, id);
	EXPECT_NO_EVENT(&f, id, quiet(150));
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, T_EVENT, &err));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
close_listener_reports_close_started_or_not(void) {
	struct fixture f;
	fixture_init(&f);
	int a = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	int b = socket_server_listen(f.ss, OWNER, "127.0.0.1", 0, 32);
	struct ev *ea = EXPECT(&f, SOCKET_OPEN, a, OWNER, ANY_UD, "127.0.0.1");
	EXPECT(&f, SOCKET_OPEN, b, OWNER, ANY_UD, "127.0.0.1");
	socket_server_start(f.ss, LOWNER, b);
	EXPECT(&f, SOCKET_OPEN, b, LOWNER, 0, "start");
	socket_server_close(f.ss, OWNER, a);
	EXPECT(&f, SOCKET_CLOSE, a, OWNER, 0, NULL);
	socket_server_close(f.ss, OWNER, b);
	EXPECT(&f, SOCKET_CLOSE, b, LOWNER, 0, NULL);
	/* the port is free again */
	if (ea) {
		int c = peer_connect("127.0.0.1", ea->ud, 0);
		CHECK(c < 0);
		if (c >= 0)
			close(c);
	}
	EXPECT_NO_EVENT(&f, ANY_ID, quiet(100));
	fixture_finish(&f);
}

static void
close_with_8mib_queued_delivers_every_byte_then_nothing(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 8 * MiB, 65536, 7, &off), 0);
	socket_server_close(f.ss, OWNER, id);
	/* CLOSE at once, before the data is flushed */
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	/* a closing socket refuses high-priority sends */
	CHECK_INT(send_str(f.ss, id, "refused"), -1);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, tmo(20000), &err));
	CHECK_INT(err, 0);
	CHECK_INT(b.n, 8 * MiB);
	CHECK(check_pattern(b.p, b.n, 7, 0) == (size_t)-1);
	/* flushed, then closed silently */
	EXPECT_NO_EVENT(&f, id, quiet(200));
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
shutdown_drops_queued_data_and_reports_one_close(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 8 * MiB, 65536, 9, &off), 0);
	socket_server_shutdown(f.ss, OWNER, id);
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, tmo(10000), &err));
	CHECK(b.n < 8 * MiB);
	CHECK(check_pattern(b.p, b.n, 9, 0) == (size_t)-1);
	EXPECT_NO_EVENT(&f, id, quiet(200));
	CHECK(!info_find(f.ss, id, NULL));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
peer_fin_reports_close_and_later_writes_still_arrive(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	shutdown(peer, SHUT_WR);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct socket_info si;
	CHECK(info_find(f.ss, id, &si) && si.type == SOCKET_INFO_CLOSING);
	/* half closed: the owner can still write */
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 3 * MiB, 65536, 11, &off), 0);
	struct bytes b = { 0 };
	int err;
	peer_read(peer, &b, 3 * MiB, tmo(10000), &err);
	CHECK_INT(b.n, 3 * MiB);
	CHECK(check_pattern(b.p, b.n, 11, 0) == (size_t)-1);
	/* the owner's close reports nothing more */
	socket_server_close(f.ss, OWNER, id);
	CHECK(peer_read_to_eof(peer, &b, T_EVENT, &err));
	CHECK_INT(b.n, 3 * MiB);
	int counts[8];
	drain_events(&f, id, quiet(200), counts);
	CHECK_INT(counts[SOCKET_CLOSE], 0);
	CHECK_INT(counts[SOCKET_ERR], 0);
	CHECK_INT(counts[SOCKET_DATA], 0);
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static int
is_reset_text(const char *s) {
	/* ENOTCONN: the write saw the reset first, and shutting the write side failed */
	return s && (strcmp(s, strerror(ECONNRESET)) == 0 || strcmp(s, strerror(EPIPE)) == 0 ||
		strcmp(s, strerror(ENOTCONN)) == 0);
}

static void
peer_rst_during_queued_write_reports_one_err_then_one_close(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 4 * MiB, 65536, 13, &off), 0);
	/* the data is queued in the library once WARNING reports it */
	struct ev *w = take_event_type(&f, id, SOCKET_WARNING, T_EVENT);
	CHECK(w != NULL);
	peer_rst_close(peer);
	struct ev *e = EXPECT_AFTER_WARNINGS(&f, SOCKET_ERR, id, OWNER, 0, ANY_DATA);
	if (e && !is_reset_text(e->data))
		check_fail_at(__FILE__, __LINE__, "ERR text \"%s\" is not ECONNRESET/EPIPE",
			e->data ? e->data : "(null)");
	/* later sends are dropped (0 while the socket lingers half closed, -1 once it is gone) */
	int r = send_str(f.ss, id, "dropped");
	CHECK(r == 0 || r == -1);
	socket_server_shutdown(f.ss, OWNER, id);
	int counts[8];
	drain_events(&f, id, quiet(300), counts);
	CHECK_INT(counts[SOCKET_CLOSE], 1);
	CHECK_INT(counts[SOCKET_ERR], 0);
	CHECK_INT(counts[SOCKET_DATA], 0);
	CHECK(info_wait(f.ss, id, 0, T_EVENT));
	fixture_finish(&f);
}

static void
peer_rst_on_a_paused_socket_with_queued_data_reports_the_shutdowns_error(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	socket_server_pause(f.ss, OWNER, id);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 4 * MiB, 65536, 17, &off), 0);
	struct ev *w = take_event_type(&f, id, SOCKET_WARNING, T_EVENT);
	CHECK(w != NULL);
	peer_rst_close(peer);
	/* Paused, so no read sees the reset: the write does, and the write side is shut. That
	   shutdown fails on a reset connection, and upstream reports its error, not the write's. */
	EXPECT_AFTER_WARNINGS(&f, SOCKET_ERR, id, OWNER, 0, strerror(ENOTCONN));
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	socket_server_close(f.ss, OWNER, id);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	fixture_finish(&f);
}

static void
reset_before_start_reports_err_then_close_to_listener_owner(void) {
	struct fixture f;
	fixture_init(&f);
	int lid = socket_server_listen(f.ss, LOWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, LOWNER, ANY_UD, "127.0.0.1");
	int port = e ? e->ud : 0;
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	int c = peer_connect("127.0.0.1", port, 0);
	e = EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	int nid = e ? e->ud : -1;
	peer_rst_close(c);
	EXPECT(&f, SOCKET_ERR, nid, LOWNER, 0, "Connection reset by peer");
	EXPECT(&f, SOCKET_CLOSE, nid, LOWNER, 0, NULL);
	socket_server_start(f.ss, OWNER, nid);
	EXPECT(&f, SOCKET_ERR, nid, OWNER, 0, "invalid socket");
	EXPECT_NO_EVENT(&f, ANY_ID, quiet(100));
	fixture_finish(&f);
}

static void
start_after_peer_eof_reports_socket_closed(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	shutdown(peer, SHUT_WR);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	socket_server_start(f.ss, OTHER, id);
	EXPECT(&f, SOCKET_ERR, id, OTHER, 0, "socket closed");
	socket_server_close(f.ss, OWNER, id);
	EXPECT_NO_EVENT(&f, id, quiet(150));
	close(peer);
	fixture_finish(&f);
}

/* A pipe whose read end the library wraps with socket_server_bind (OPEN "binding" seen). */
static int
bind_pipe_read_end(struct fixture *f, int p[2]) {
	CHECK(pipe(p) == 0);
	int id = socket_server_bind(f->ss, OWNER, p[0]);
	CHECK(id > 0);
	EXPECT(f, SOCKET_OPEN, id, OWNER, 0, "binding");
	return id;
}

static void
bind_pipe_reads_data_and_reports_hangup_as_close(void) {
	struct fixture f;
	fixture_init(&f);
	int p[2];
	int id = bind_pipe_read_end(&f, p);
	CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	CHECK(write(p[1], "hello", 5) == 5);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 5, "hello");
	struct socket_info si;
	CHECK(info_find(f.ss, id, &si) && si.type == SOCKET_INFO_BIND && si.name[0] == 0 &&
		si.read == 5);
	close(p[1]);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	fixture_finish(&f);
	if (fcntl(p[0], F_GETFD) != -1)
		close(p[0]);
}

static void
bind_plain_close_keeps_the_fd_open(void) {
	struct fixture f;
	fixture_init(&f);
	int p[2];
	int id = bind_pipe_read_end(&f, p);
	socket_server_close(f.ss, OTHER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	CHECK(fcntl(p[0], F_GETFD) != -1);
	/* still the same pipe, and nobody reads it any more */
	CHECK(write(p[1], "x", 1) == 1);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	char c = 0;
	CHECK(read(p[0], &c, 1) == 1 && c == 'x');
	fixture_finish(&f);
	close(p[0]);
	close(p[1]);
}

static void
bind_socketpair_reads_and_writes(void) {
	struct fixture f;
	fixture_init(&f);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int id = socket_server_bind(f.ss, OWNER, sv[0]);
	EXPECT(&f, SOCKET_OPEN, id, OWNER, 0, "binding");
	CHECK(write(sv[1], "ping", 4) == 4);
	EXPECT(&f, SOCKET_DATA, id, OWNER, 4, "ping");
	CHECK_INT(send_str(f.ss, id, "pong"), 0);
	struct bytes b = { 0 };
	peer_read(sv[1], &b, 4, T_EVENT, NULL);
	CHECK(b.n == 4 && memcmp(b.p, "pong", 4) == 0);
	bytes_free(&b);
	socket_server_close(f.ss, OWNER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	CHECK(fcntl(sv[0], F_GETFD) != -1);
	fixture_finish(&f);
	close(sv[0]);
	close(sv[1]);
}

static void
bind_pipe_read_end_keeps_sends_queued_and_the_fd_open(void) {
	struct fixture f;
	fixture_init(&f);
	int p[2];
	int id = bind_pipe_read_end(&f, p);
	/* A read end never becomes writable: the data waits, nothing fails, and the descriptor,
	   which is the caller's, stays open through the server's release. */
	CHECK_INT(send_str(f.ss, id, "abc"), 0);
	CHECK_INT(send_mem_low(f.ss, id, "de", 2), 0);
	EXPECT_NO_EVENT(&f, id, quiet(150));
	struct socket_info si;
	if (CHECK(info_find(f.ss, id, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_BIND);
		CHECK_INT(si.wbuffer, 5);
	}
	CHECK(fcntl(p[0], F_GETFD) != -1);
	fixture_finish(&f);
	CHECK(fcntl(p[0], F_GETFD) != -1);
	close(p[0]);
	close(p[1]);
}

static void
bind_dev_null_reports_socket_number_limit(void) {
	struct fixture f;
	fixture_init(&f);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	int id = socket_server_bind(f.ss, OWNER, fd);
	CHECK(id > 0);
	/* epoll refuses regular files; upstream reports it with this fixed text */
	EXPECT(&f, SOCKET_ERR, id, OWNER, 0, "reach skynet socket number limit");
	CHECK_INT(send_str(f.ss, id, "x"), -1);
	CHECK(!info_find(f.ss, id, NULL));
	EXPECT_NO_EVENT(&f, id, quiet(100));
	fixture_finish(&f);
	close(fd);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(close_idle_socket_reports_one_close_and_peer_sees_eof),
		TEST(shutdown_idle_socket_reports_one_close),
		TEST(close_listener_reports_close_started_or_not),
		TEST(close_with_8mib_queued_delivers_every_byte_then_nothing),
		TEST(shutdown_drops_queued_data_and_reports_one_close),
		TEST(peer_fin_reports_close_and_later_writes_still_arrive),
		TEST(peer_rst_during_queued_write_reports_one_err_then_one_close),
		TEST(peer_rst_on_a_paused_socket_with_queued_data_reports_the_shutdowns_error),
		TEST(reset_before_start_reports_err_then_close_to_listener_owner),
		TEST(start_after_peer_eof_reports_socket_closed),
		TEST(bind_pipe_reads_data_and_reports_hangup_as_close),
		TEST(bind_plain_close_keeps_the_fd_open),
		TEST(bind_socketpair_reads_and_writes),
		TEST(bind_pipe_read_end_keeps_sends_queued_and_the_fd_open),
		TEST(bind_dev_null_reports_socket_number_limit),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
