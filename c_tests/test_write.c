/* The write path (SPEC 7): buffer kinds, direct writes, priorities, warnings, drops, and the
   OBJECT free callback running exactly once on every path. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OWNER ((uintptr_t)0x1001)
#define LOWNER ((uintptr_t)0x4004)

#define MiB (1024 * 1024)

static void
memory_rawpointer_and_object_buffers_arrive_in_order(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	struct tobj o;
	tobj_init(&o, "three", 5);
	char raw[8] = "two";
	CHECK_INT(send_mem(f.ss, id, "one", 3), 0);
	CHECK_INT(send_raw(f.ss, id, raw, 3), 0);
	memcpy(raw, "XXX", 3); /* RAWPOINTER: the caller keeps its buffer */
	CHECK_INT(send_mem(f.ss, id, "", 0), 0);
	CHECK_INT(send_obj(f.ss, id, &o), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 11, T_EVENT, NULL);
	CHECK(b.n == 11 && memcmp(b.p, "onetwothree", 11) == 0);
	CHECK(peer_silent(peer, quiet(50)));
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	struct socket_info si;
	CHECK(info_find(f.ss, id, &si) && si.write == 11 && si.wbuffer == 0);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
}

static void
send_on_an_idle_socket_is_written_by_the_calling_thread(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	/* with the poll thread parked, only a direct write can deliver */
	CHECK(fixture_hold(&f, OWNER, id));
	CHECK_INT(send_str(f.ss, id, "direct"), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 6, T_EVENT, NULL);
	CHECK(b.n == 6 && memcmp(b.p, "direct", 6) == 0);
	fixture_release_hold(&f);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
rawpointer_rest_is_copied_when_the_write_is_partial(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t n = 2 * MiB;
	unsigned char *raw = malloc(n);
	fill_pattern(raw, n, 21, 0);
	CHECK_INT(send_raw(f.ss, id, raw, n), 0);
	memset(raw, 0xEE, n);
	free(raw);
	struct bytes b = { 0 };
	peer_read(peer, &b, n, tmo(10000), NULL);
	CHECK_INT(b.n, n);
	CHECK(check_pattern(b.p, b.n, 21, 0) == (size_t)-1);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

/* ---- OBJECT: the free callback runs exactly once on every path */

static void
object_freed_once_when_sent_directly(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	struct tobj o;
	tobj_init(&o, "object-direct", 13);
	CHECK_INT(send_obj(f.ss, id, &o), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 13, T_EVENT, NULL);
	CHECK(b.n == 13 && memcmp(b.p, "object-direct", 13) == 0);
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
}

static void
object_freed_once_when_queued_then_sent(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * MiB, 65536, 5, &off), 0);
	struct tobj o;
	tobj_init(&o, "tail-object", 11);
	CHECK_INT(send_obj(f.ss, id, &o), 0);
	fixture_sync(&f);
	CHECK_INT(atomic_load(&o.frees), 0); /* still queued: the peer reads nothing */
	struct bytes b = { 0 };
	peer_read(peer, &b, 2 * MiB + 11, tmo(10000), NULL);
	CHECK_INT(b.n, 2 * MiB + 11);
	CHECK(b.n == 2 * MiB + 11 && check_pattern(b.p, 2 * MiB, 5, 0) == (size_t)-1 &&
		memcmp(b.p + 2 * MiB, "tail-object", 11) == 0);
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
}

static void
object_freed_once_when_partly_written_directly(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t n = 2 * MiB;
	unsigned char *big = malloc(n);
	fill_pattern(big, n, 17, 0);
	struct tobj o;
	tobj_init(&o, (const char *)big, n);
	CHECK_INT(send_obj(f.ss, id, &o), 0);
	CHECK_INT(atomic_load(&o.frees), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, n, tmo(10000), NULL);
	CHECK_INT(b.n, n);
	CHECK(check_pattern(b.p, b.n, 17, 0) == (size_t)-1);
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
	free(big);
}

static void
object_freed_once_when_the_id_is_invalid(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 0, &peer);
	socket_server_close(f.ss, OWNER, id);
	EXPECT(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct tobj o, o2;
	tobj_init(&o, "x", 1);
	tobj_init(&o2, "y", 1);
	CHECK_INT(send_obj(f.ss, id, &o), -1);
	CHECK_INT(send_obj_low(f.ss, id, &o2), -1);
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	CHECK_INT(tobj_wait_frees(&o2, 1, T_EVENT), 1);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
	CHECK_INT(atomic_load(&o2.frees), 1);
}

static void
object_freed_once_when_dropped_by_shutdown(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * MiB, 65536, 5, &off), 0);
	struct tobj o, lo;
	tobj_init(&o, "queued-high", 11);
	tobj_init(&lo, "queued-low", 10);
	CHECK_INT(send_obj(f.ss, id, &o), 0);
	CHECK_INT(send_obj_low(f.ss, id, &lo), 0);
	socket_server_shutdown(f.ss, OWNER, id);
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	CHECK_INT(tobj_wait_frees(&o, 1, T_EVENT), 1);
	CHECK_INT(tobj_wait_frees(&lo, 1, T_EVENT), 1);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&o.frees), 1);
	CHECK_INT(atomic_load(&lo.frees), 1);
}

static void
object_freed_once_when_dropped_at_server_release(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	/* the first object is partly written directly, the second one is queued behind it */
	size_t n = 2 * MiB;
	unsigned char *big = malloc(n);
	fill_pattern(big, n, 3, 0);
	struct tobj first, second;
	tobj_init(&first, (const char *)big, n);
	tobj_init(&second, "queued", 6);
	CHECK_INT(send_obj(f.ss, id, &first), 0);
	CHECK_INT(send_obj(f.ss, id, &second), 0);
	fixture_sync(&f);
	CHECK_INT(atomic_load(&first.frees), 0);
	CHECK_INT(atomic_load(&second.frees), 0);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&first.frees), 1);
	CHECK_INT(atomic_load(&second.frees), 1);
	close(peer);
	free(big);
}

static void
object_freed_once_when_sent_to_a_closing_socket(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * MiB, 65536, 8, &off), 0);
	socket_server_close(f.ss, OWNER, id);
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	struct tobj hi, lo;
	tobj_init(&hi, "high", 4);
	tobj_init(&lo, "low", 3);
	CHECK_INT(send_obj(f.ss, id, &hi), -1);
	CHECK_INT(send_obj_low(f.ss, id, &lo), 0); /* accepted, then dropped */
	CHECK_INT(tobj_wait_frees(&hi, 1, T_EVENT), 1);
	CHECK_INT(tobj_wait_frees(&lo, 1, T_EVENT), 1);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, tmo(10000), &err));
	CHECK_INT(b.n, 2 * MiB);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
	CHECK_INT(atomic_load(&hi.frees), 1);
	CHECK_INT(atomic_load(&lo.frees), 1);
}

/* ---- priorities */

struct run {
	char c;
	size_t n;
};

static void
check_runs_at(int line, const struct bytes *b, const struct run *want, int nwant) {
	struct run got[32];
	int ng = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (ng > 0 && got[ng - 1].c == (char)b->p[i]) {
			got[ng - 1].n++;
		} else if (ng < 32) {
			got[ng].c = (char)b->p[i];
			got[ng].n = 1;
			ng++;
		} else {
			break;
		}
	}
	int ok = ng == nwant;
	for (int i = 0; ok && i < nwant; i++)
		ok = got[i].c == want[i].c && got[i].n == want[i].n;
	if (!ok) {
		char buf[600];
		int k = snprintf(buf, sizeof(buf), "byte runs: got");
		for (int i = 0; i < ng && k < 500; i++)
			k += snprintf(buf + k, sizeof(buf) - k, " %c*%zu", got[i].c, got[i].n);
		k += snprintf(buf + k, sizeof(buf) - k, "; want");
		for (int i = 0; i < nwant && k < 580; i++)
			k += snprintf(buf + k, sizeof(buf) - k, " %c*%zu", want[i].c, want[i].n);
		check_fail_at(__FILE__, line, "%s", buf);
	}
}

static int
send_fill(struct socket_server *ss, int id, char c, size_t n, int low) {
	char *m = malloc(n);
	memset(m, c, n);
	struct socket_sendbuffer b = { id, SOCKET_BUFFER_MEMORY, m, n };
	return low ? socket_server_send_lowpriority(ss, &b) : socket_server_send(ss, &b);
}

/*
 * Upstream (send_socket, send_buffer_, raise_uncomplete):
 * - 'A' (1 MiB, high) on an idle socket is written directly, partly; its rest waits for the
 *   poll thread and is not "queued" for the next sends;
 * - 'a' (low) finds both queues empty, so it goes to the high queue;
 * - 'b' (4 MiB, low) goes to the low queue; 'h' (high) to the high queue after 'a';
 *   so low, low, high arrive as a, h, b (SPEC 14);
 * - once the peer has seen the first byte of 'b', 'b' was partly written and moved to the
 *   high queue, so a later high 'H' goes after all of 'b', and a later low 'z' after 'H'.
 */
static void
low_low_high_into_a_congested_socket_arrive_low_high_low(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	/* the poll thread is parked while the four sends are issued, so it applies them all before
	   it handles any write event (as upstream does with pending commands) */
	CHECK(fixture_hold(&f, OWNER, id));
	CHECK_INT(send_fill(f.ss, id, 'A', 1 * MiB, 0), 0);
	CHECK_INT(send_fill(f.ss, id, 'a', 1000, 1), 0);
	CHECK_INT(send_fill(f.ss, id, 'b', 4 * MiB, 1), 0);
	CHECK_INT(send_fill(f.ss, id, 'h', 1000, 0), 0);
	fixture_release_hold(&f);
	struct bytes b = { 0 };
	peer_read(peer, &b, 1 * MiB + 2000 + 1, tmo(10000), NULL);
	CHECK_INT(b.n, 1 * MiB + 2001);
	CHECK_INT(send_fill(f.ss, id, 'H', 1000, 0), 0);
	CHECK_INT(send_fill(f.ss, id, 'z', 1000, 1), 0);
	size_t total = 5 * MiB + 4000;
	peer_read(peer, &b, total, tmo(10000), NULL);
	CHECK_INT(b.n, total);
	static const struct run want[] = {
		{ 'A', 1 * MiB }, { 'a', 1000 }, { 'h', 1000 }, { 'b', 4 * MiB }, { 'H', 1000 },
		{ 'z', 1000 },
	};
	check_runs_at(__LINE__, &b, want, 6);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
high_sends_overtake_queued_low_sends(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	/* 'A' is partly written directly, 'B' queued (high) behind its rest */
	CHECK_INT(send_fill(f.ss, id, 'A', 1 * MiB, 0), 0);
	CHECK_INT(send_fill(f.ss, id, 'B', 1 * MiB, 0), 0);
	fixture_sync(&f);
	/* with data queued, low goes to the low queue and high to the high queue */
	CHECK_INT(send_fill(f.ss, id, 'l', 1000, 1), 0);
	CHECK_INT(send_fill(f.ss, id, 'm', 1000, 1), 0);
	CHECK_INT(send_fill(f.ss, id, 'h', 1000, 0), 0);
	struct bytes b = { 0 };
	size_t total = 2 * MiB + 3000;
	peer_read(peer, &b, total, tmo(10000), NULL);
	CHECK_INT(b.n, total);
	static const struct run want[] = {
		{ 'A', 1 * MiB }, { 'B', 1 * MiB }, { 'h', 1000 }, { 'l', 1000 }, { 'm', 1000 },
	};
	check_runs_at(__LINE__, &b, want, 5);
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

/* ---- warnings */

static void
warnings_double_from_1mib_then_report_0_after_drain(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	/* the first 64 KiB chunk is written directly (partly); the others are queued chunk by chunk
	   while the poll thread is parked, so the unwritten rest of the first one is not yet queued
	   when the thresholds are checked (upstream: it joins the queue on the next write event) */
	CHECK(fixture_hold(&f, OWNER, id));
	CHECK_INT(send_pattern(f.ss, id, 9 * MiB, 65536, 1, &off), 0);
	fixture_release_hold(&f);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 1024, NULL);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 2048, NULL);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 4096, NULL);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 8192, NULL);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	struct bytes b = { 0 };
	peer_read(peer, &b, 9 * MiB, tmo(20000), NULL);
	CHECK_INT(b.n, 9 * MiB);
	CHECK(check_pattern(b.p, b.n, 1, 0) == (size_t)-1);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 0, NULL);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
single_large_send_raises_no_warning(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 4 * MiB, 4 * MiB, 2, &off), 0);
	struct bytes b = { 0 };
	peer_read(peer, &b, 4 * MiB, tmo(10000), NULL);
	CHECK_INT(b.n, 4 * MiB);
	CHECK(check_pattern(b.p, b.n, 2, 0) == (size_t)-1);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

static void
single_large_low_priority_send_warns(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	/* a low priority send is never written by the caller: the poll thread queues it (writing
	   what the kernel takes at once), so 4 MiB queued there warn, then drain to 0 */
	unsigned char *p = malloc(4 * MiB);
	fill_pattern(p, 4 * MiB, 3, 0);
	CHECK_INT(send_raw_low(f.ss, id, p, 4 * MiB), 0);
	free(p);
	struct ev *e = take_event(&f, id, T_EVENT);
	CHECK(e && e->type == SOCKET_WARNING && e->ud >= 2048);
	struct bytes b = { 0 };
	peer_read(peer, &b, 4 * MiB, tmo(10000), NULL);
	CHECK_INT(b.n, 4 * MiB);
	CHECK(check_pattern(b.p, b.n, 3, 0) == (size_t)-1);
	EXPECT(&f, SOCKET_WARNING, id, OWNER, 0, NULL);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

/* ---- sends that return 0 and are dropped */

static void
send_to_a_listener_is_dropped_and_logged(void) {
	struct fixture f;
	fixture_init(&f);
	log_clear();
	int lid = socket_server_listen(f.ss, LOWNER, "127.0.0.1", 0, 32);
	struct ev *e = EXPECT(&f, SOCKET_OPEN, lid, LOWNER, ANY_UD, "127.0.0.1");
	int port = e ? e->ud : 0;
	char line[96];
	snprintf(line, sizeof(line), "socket-server error: write to listen fd %d.", lid);
	CHECK_INT(send_str(f.ss, lid, "to-plisten"), 0);
	CHECK(log_wait(line, T_EVENT));
	socket_server_start(f.ss, LOWNER, lid);
	EXPECT(&f, SOCKET_OPEN, lid, LOWNER, 0, "start");
	CHECK_INT(send_str(f.ss, lid, "to-listen"), 0);
	fixture_sync(&f);
	CHECK_INT(log_count(line), 2);
	/* the listener still works */
	int c = peer_connect("127.0.0.1", port, 0);
	EXPECT(&f, SOCKET_ACCEPT, lid, LOWNER, ANY_UD, ANY_DATA);
	CHECK(peer_silent(c, quiet(50)));
	close(c);
	fixture_finish(&f);
}

static void
send_to_an_accepted_socket_before_start_is_dropped(void) {
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
	CHECK_INT(send_str(f.ss, nid, "lost"), 0);
	CHECK_INT(send_mem_low(f.ss, nid, "LOST", 4), 0);
	socket_server_start(f.ss, OWNER, nid);
	EXPECT(&f, SOCKET_OPEN, nid, OWNER, 0, "start");
	CHECK_INT(send_str(f.ss, nid, "kept"), 0);
	struct bytes b = { 0 };
	peer_read(c, &b, 4, T_EVENT, NULL);
	CHECK(b.n == 4 && memcmp(b.p, "kept", 4) == 0);
	CHECK(peer_silent(c, quiet(100)));
	bytes_free(&b);
	close(c);
	fixture_finish(&f);
}

static void
low_priority_send_to_a_closing_socket_is_dropped(void) {
	struct fixture f;
	fixture_init(&f);
	int peer;
	int id = connected_pair(&f, OWNER, "127.0.0.1", 4096, &peer);
	size_t off = 0;
	CHECK_INT(send_pattern(f.ss, id, 2 * MiB, 65536, 4, &off), 0);
	socket_server_close(f.ss, OWNER, id);
	EXPECT_AFTER_WARNINGS(&f, SOCKET_CLOSE, id, OWNER, 0, NULL);
	CHECK_INT(send_mem_low(f.ss, id, "zzz", 3), 0);
	CHECK_INT(send_str(f.ss, id, "yyy"), -1);
	struct bytes b = { 0 };
	int err;
	CHECK(peer_read_to_eof(peer, &b, tmo(10000), &err));
	CHECK_INT(b.n, 2 * MiB);
	CHECK(check_pattern(b.p, b.n, 4, 0) == (size_t)-1);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	bytes_free(&b);
	close(peer);
	fixture_finish(&f);
}

int
main(void) {
	static const struct test tests[] = {
		TEST(memory_rawpointer_and_object_buffers_arrive_in_order),
		TEST(send_on_an_idle_socket_is_written_by_the_calling_thread),
		TEST(rawpointer_rest_is_copied_when_the_write_is_partial),
		TEST(object_freed_once_when_sent_directly),
		TEST(object_freed_once_when_queued_then_sent),
		TEST(object_freed_once_when_partly_written_directly),
		TEST(object_freed_once_when_the_id_is_invalid),
		TEST(object_freed_once_when_dropped_by_shutdown),
		TEST(object_freed_once_when_dropped_at_server_release),
		TEST(object_freed_once_when_sent_to_a_closing_socket),
		TEST(low_low_high_into_a_congested_socket_arrive_low_high_low),
		TEST(high_sends_overtake_queued_low_sends),
		TEST(warnings_double_from_1mib_then_report_0_after_drain),
		TEST(single_large_send_raises_no_warning),
		TEST(single_large_low_priority_send_warns),
		TEST(send_to_a_listener_is_dropped_and_logged),
		TEST(send_to_an_accepted_socket_before_start_is_dropped),
		TEST(low_priority_send_to_a_closing_socket_is_dropped),
	};
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
