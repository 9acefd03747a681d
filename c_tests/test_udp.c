/* UDP (SPEC 8): round trips with exact address bytes, dial/listen/connect, family checks. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define OWNER2 ((uintptr_t)0x2002)

/* The library's address encoding: protocol byte, port (network order), address bytes. */
static size_t
make_udp_addr(uint8_t *out, const char *ip, int port) {
	uint16_t p = htons((uint16_t)port);
	if (strchr(ip, ':')) {
		out[0] = 2;
		memcpy(out + 1, &p, 2);
		inet_pton(AF_INET6, ip, out + 3);
		return 19;
	}
	out[0] = 1;
	memcpy(out + 1, &p, 2);
	inet_pton(AF_INET, ip, out + 3);
	return 7;
}

static int
udp_send_str(struct socket_server *ss, int id, const uint8_t *addr, const char *s) {
	size_t n = strlen(s);
	char *m = malloc(n);
	memcpy(m, s, n);
	struct socket_sendbuffer b = { id, SOCKET_BUFFER_MEMORY, m, n };
	return socket_server_udp_send(ss, (const struct socket_udp_address *)addr, &b);
}

static void
check_peer_gets_at(int line, int fd, const char *want, int *from_port) {
	char buf[256];
	int n = udp_peer_recv(fd, buf, sizeof(buf), T_EVENT, from_port);
	if (n != (int)strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		check_fail_at(__FILE__, line, "peer expected datagram \"%s\", got %d bytes", want, n);
}
#define CHECK_PEER_GETS(fd, want, from) check_peer_gets_at(__LINE__, (fd), (want), (from))

/* A UDP result: payload, then exactly the sender's address bytes. */
static void
check_udp_result_at(int line, struct fixture *f, struct ev *e, const char *payload,
	const char *from_ip, int from_port) {
	if (e == NULL || e->type != SOCKET_UDP) {
		check_fail_at(__FILE__, line, "no UDP result");
		return;
	}
	uint8_t want[19];
	size_t wn = make_udp_addr(want, from_ip, from_port);
	size_t pn = strlen(payload);
	if ((size_t)e->ud != pn || memcmp(e->data, payload, pn) != 0)
		check_fail_at(__FILE__, line, "UDP payload mismatch (ud %d)", e->ud);
	if (memcmp(e->data + pn, want, wn) != 0)
		check_fail_at(__FILE__, line, "UDP sender address bytes mismatch");
	struct socket_message m = ev_msg(e);
	int sz = -1;
	const struct socket_udp_address *a = socket_server_udp_address(f->ss, &m, &sz);
	if ((const char *)a != e->data + e->ud || sz != (int)wn)
		check_fail_at(__FILE__, line, "socket_server_udp_address gave %p size %d, want %p size %zu",
			(const void *)a, sz, (void *)(e->data + e->ud), wn);
}
#define CHECK_UDP_RESULT(f, e, payload, ip, port) \
	check_udp_result_at(__LINE__, (f), (e), (payload), (ip), (port))

static void
round_trip(const char *ip) {
	struct fixture f;
	fixture_init(&f);
	int pport;
	int p = udp_peer(ip, &pport);
	CHECK(p >= 0);
	int u = socket_server_udp(f.ss, OWNER, ip, 0);
	CHECK(u > 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	EXPECT_NO_EVENT(&f, u, quiet(50)); /* no OPEN for UDP */
	CHECK_INT(socket_server_udp_connect(f.ss, u, ip, pport), 0);
	CHECK_INT(send_str(f.ss, u, "ping"), 0);
	int uport = -1;
	CHECK_PEER_GETS(p, "ping", &uport);
	/* the socket reads without start */
	CHECK(udp_peer_sendto(p, ip, uport, "pong", 4) == 4);
	struct ev *e = EXPECT(&f, SOCKET_UDP, u, OWNER, 4, "pong");
	CHECK_UDP_RESULT(&f, e, "pong", ip, pport);
	/* reply to the address the result carries */
	if (e && e->type == SOCKET_UDP) {
		struct socket_message m = ev_msg(e);
		int sz;
		const struct socket_udp_address *a = socket_server_udp_address(f.ss, &m, &sz);
		CHECK_INT(udp_send_str(f.ss, u, (const uint8_t *)a, "again"), 0);
		CHECK_PEER_GETS(p, "again", NULL);
	}
	struct socket_info si;
	char name[64];
	snprintf(name, sizeof(name), "%s:%d", ip, pport);
	if (CHECK(info_find(f.ss, u, &si))) {
		CHECK_INT(si.type, SOCKET_INFO_UDP);
		CHECK_STR(si.name, name);
		CHECK_INT(si.opaque, OWNER);
		CHECK_INT(si.read, 4);
		CHECK_INT(si.write, 9);
	}
	socket_server_close(f.ss, OWNER2, u);
	EXPECT(&f, SOCKET_CLOSE, u, OWNER, 0, NULL);
	close(p);
	fixture_finish(&f);
}

static void
udp_v4_round_trip_with_exact_address_bytes(void) {
	round_trip("127.0.0.1");
}

static void
udp_v6_round_trip_with_exact_address_bytes(void) {
	round_trip("::1");
}

static void
udp_large_datagrams_round_trip(void) {
	struct fixture f;
	fixture_init(&f);
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	int u = socket_server_udp_dial(f.ss, OWNER, "127.0.0.1", pport);
	CHECK(u > 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	size_t n = 60000;
	unsigned char *m = malloc(n);
	fill_pattern(m, n, 5, 0);
	CHECK_INT(send_raw(f.ss, u, m, n), 0);
	unsigned char *buf = malloc(65536);
	int uport = -1;
	int got = udp_peer_recv(p, buf, 65536, T_EVENT, &uport);
	CHECK_INT(got, (int)n);
	CHECK(got == (int)n && memcmp(buf, m, n) == 0);
	fill_pattern(m, n, 6, 0);
	CHECK(udp_peer_sendto(p, "127.0.0.1", uport, m, n) == (int)n);
	struct ev *e = EXPECT(&f, SOCKET_UDP, u, OWNER, (int)n, ANY_DATA);
	CHECK(e && e->type == SOCKET_UDP && memcmp(e->data, m, n) == 0);
	free(m);
	free(buf);
	close(p);
	fixture_finish(&f);
}

static void
udp_dial_sends_to_its_default_destination(void) {
	struct fixture f;
	fixture_init(&f);
	const char *ips[2] = { "127.0.0.1", "::1" };
	for (int i = 0; i < 2; i++) {
		int pport;
		int p = udp_peer(ips[i], &pport);
		int d = socket_server_udp_dial(f.ss, OWNER, ips[i], pport);
		CHECK(d > 0);
		/* (a send before the dial is processed is test_beyond_upstream's business) */
		CHECK(info_wait(f.ss, d, 1, T_EVENT));
		CHECK_INT(send_str(f.ss, d, "dial"), 0);
		int dport = -1;
		CHECK_PEER_GETS(p, "dial", &dport);
		CHECK(udp_peer_sendto(p, ips[i], dport, "back", 4) == 4);
		struct ev *e = EXPECT(&f, SOCKET_UDP, d, OWNER, 4, "back");
		CHECK_UDP_RESULT(&f, e, "back", ips[i], pport);
		struct socket_info si;
		char name[64];
		snprintf(name, sizeof(name), "%s:%d", ips[i], pport);
		CHECK(info_find(f.ss, d, &si) && si.type == SOCKET_INFO_UDP);
		CHECK_STR(si.name, name);
		close(p);
	}
	fixture_finish(&f);
}

static void
udp_listen_refuses_port_0_and_receives_on_a_fixed_port(void) {
	struct fixture f;
	fixture_init(&f);
	CHECK_INT(socket_server_udp_listen(f.ss, OWNER, "127.0.0.1", 0), -1);
	/* a port that was free a moment ago */
	int port;
	int tmp = udp_peer("127.0.0.1", &port);
	close(tmp);
	int u = socket_server_udp_listen(f.ss, OWNER, "127.0.0.1", port);
	CHECK(u > 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	CHECK(udp_peer_sendto(p, "127.0.0.1", port, "hello", 5) == 5);
	struct ev *e = EXPECT(&f, SOCKET_UDP, u, OWNER, 5, "hello");
	CHECK_UDP_RESULT(&f, e, "hello", "127.0.0.1", pport);
	close(p);
	fixture_finish(&f);
}

static void
unbound_udp_socket_sends_to_a_built_address_and_gets_replies(void) {
	struct fixture f;
	fixture_init(&f);
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	int u = socket_server_udp(f.ss, OWNER, NULL, 0);
	CHECK(u > 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	uint8_t addr[19];
	make_udp_addr(addr, "127.0.0.1", pport);
	CHECK_INT(udp_send_str(f.ss, u, addr, "first"), 0);
	int uport = -1;
	CHECK_PEER_GETS(p, "first", &uport);
	CHECK(udp_peer_sendto(p, "127.0.0.1", uport, "reply", 5) == 5);
	struct ev *e = EXPECT(&f, SOCKET_UDP, u, OWNER, 5, "reply");
	CHECK_UDP_RESULT(&f, e, "reply", "127.0.0.1", pport);
	close(p);
	fixture_finish(&f);
}

static void
udp_send_with_an_address_of_the_other_family_returns_minus_1(void) {
	struct fixture f;
	fixture_init(&f);
	int p4port, p6port;
	int p4 = udp_peer("127.0.0.1", &p4port);
	int p6 = udp_peer("::1", &p6port);
	int u4 = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	int u6 = socket_server_udp(f.ss, OWNER, "::1", 0);
	CHECK(info_wait(f.ss, u4, 1, T_EVENT));
	CHECK(info_wait(f.ss, u6, 1, T_EVENT));
	uint8_t a4[19], a6[19];
	make_udp_addr(a4, "127.0.0.1", p4port);
	make_udp_addr(a6, "::1", p6port);
	CHECK_INT(udp_send_str(f.ss, u4, a6, "wrong"), -1);
	CHECK_INT(udp_send_str(f.ss, u6, a4, "wrong"), -1);
	/* an unknown protocol byte too */
	uint8_t bad[19];
	memcpy(bad, a4, sizeof(bad));
	bad[0] = 9;
	CHECK_INT(udp_send_str(f.ss, u4, bad, "wrong"), -1);
	/* the right family works */
	CHECK_INT(udp_send_str(f.ss, u4, a4, "right4"), 0);
	CHECK_INT(udp_send_str(f.ss, u6, a6, "right6"), 0);
	CHECK_PEER_GETS(p4, "right4", NULL);
	CHECK_PEER_GETS(p6, "right6", NULL);
	CHECK(peer_silent(p4, quiet(50)) && peer_silent(p6, quiet(50)));
	close(p4);
	close(p6);
	fixture_finish(&f);
}

static void
send_on_a_udp_socket_without_destination_returns_minus_1_and_logs(void) {
	struct fixture f;
	fixture_init(&f);
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	log_clear();
	CHECK_INT(send_str(f.ss, u, "nowhere"), -1);
	CHECK(log_wait("", T_EVENT));
	EXPECT_NO_EVENT(&f, u, quiet(50));
	fixture_finish(&f);
}

static void
udp_connect_of_the_other_family_reports_protocol_mismatch(void) {
	struct fixture f;
	fixture_init(&f);
	int pport;
	int p = udp_peer("127.0.0.1", &pport);
	int u = socket_server_udp(f.ss, OWNER, "127.0.0.1", 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	CHECK_INT(socket_server_udp_connect(f.ss, u, "::1", 9), 0);
	EXPECT(&f, SOCKET_ERR, u, OWNER, 0, "protocol mismatch");
	/* the socket is still usable */
	CHECK_INT(socket_server_udp_connect(f.ss, u, "127.0.0.1", pport), 0);
	CHECK_INT(send_str(f.ss, u, "still"), 0);
	CHECK_PEER_GETS(p, "still", NULL);
	close(p);
	fixture_finish(&f);
}

static void
udp_address_with_an_unknown_protocol_is_null_and_keeps_size(void) {
	struct fixture f;
	fixture_init(&f);
	char data[32] = "ab";
	struct socket_message m = { 7, OWNER, 2, data };
	int sz = 12345;
	data[2] = 9;
	CHECK(socket_server_udp_address(f.ss, &m, &sz) == NULL);
	CHECK_INT(sz, 12345);
	data[2] = 0;
	CHECK(socket_server_udp_address(f.ss, &m, &sz) == NULL);
	CHECK_INT(sz, 12345);
	/* it uses only data and ud: a message built by hand works */
	data[2] = 1;
	CHECK((const char *)socket_server_udp_address(f.ss, &m, &sz) == data + 2);
	CHECK_INT(sz, 7);
	data[2] = 2;
	CHECK((const char *)socket_server_udp_address(f.ss, &m, &sz) == data + 2);
	CHECK_INT(sz, 19);
	fixture_finish(&f);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(udp_v4_round_trip_with_exact_address_bytes),
		TEST(udp_v6_round_trip_with_exact_address_bytes),
		TEST(udp_large_datagrams_round_trip),
		TEST(udp_dial_sends_to_its_default_destination),
		TEST(udp_listen_refuses_port_0_and_receives_on_a_fixed_port),
		TEST(unbound_udp_socket_sends_to_a_built_address_and_gets_replies),
		TEST(udp_send_with_an_address_of_the_other_family_returns_minus_1),
		TEST(send_on_a_udp_socket_without_destination_returns_minus_1_and_logs),
		TEST(udp_connect_of_the_other_family_reports_protocol_mismatch),
		TEST(udp_address_with_an_unknown_protocol_is_null_and_keeps_size),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
