/* Failed name lookups (SPEC 4, 14). Runs inside `unshare -n` (a private network namespace, so
   no query leaves the machine); refuses to run where other interfaces than lo exist. */
#define _GNU_SOURCE
#include "harness.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OWNER ((uintptr_t)0x1001)

static const char *BADNAME = "nosuchhost.invalid";

/* The text getaddrinfo gives for `name` here, with upstream's hints. */
static const char *
gai_text(const char *name, int socktype, int protocol) {
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_protocol = protocol;
	int code = getaddrinfo(name, "80", &hints, &res);
	if (code == 0) {
		freeaddrinfo(res);
		return NULL;
	}
	return gai_strerror(code);
}

static int
isolated(void) {
	FILE *f = fopen("/proc/net/dev", "r");
	if (f == NULL)
		return 0;
	char line[512];
	int others = 0;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = 0;
		char *name = line;
		while (*name == ' ')
			name++;
		if (strcmp(name, "lo") != 0)
			others++;
	}
	fclose(f);
	return others == 0;
}

static void
connect_to_an_unresolvable_name_reports_gai_strerror(void) {
	const char *want = gai_text(BADNAME, SOCK_STREAM, IPPROTO_TCP);
	if (!CHECK(want != NULL))
		return;
	fprintf(stderr, "    (getaddrinfo says \"%s\")\n", want);
	struct fixture f;
	fixture_init(&f);
	int id = socket_server_connect(f.ss, OWNER, BADNAME, 80);
	CHECK(id > 0);
	EXPECT(&f, SOCKET_ERR, id, OWNER, 0, want);
	CHECK_INT(send_str(f.ss, id, "x"), -1);
	EXPECT_NO_EVENT(&f, id, quiet(100));
	fixture_finish(&f);
}

static void
udp_and_listen_calls_with_an_unresolvable_name_return_minus_1(void) {
	struct fixture f;
	fixture_init(&f);
	int u = socket_server_udp(f.ss, OWNER, NULL, 0);
	CHECK(u > 0);
	CHECK(info_wait(f.ss, u, 1, T_EVENT));
	CHECK_INT(socket_server_udp_connect(f.ss, u, BADNAME, 9), -1);
	CHECK_INT(socket_server_udp_dial(f.ss, OWNER, BADNAME, 9), -1);
	CHECK_INT(socket_server_udp(f.ss, OWNER, BADNAME, 9), -1);
	CHECK_INT(socket_server_udp_listen(f.ss, OWNER, BADNAME, 9), -1);
	CHECK_INT(socket_server_listen(f.ss, OWNER, BADNAME, 9, 8), -1);
	EXPECT_NO_EVENT(&f, ANY_ID, quiet(100));
	fixture_finish(&f);
}

static void
long_unresolvable_name_reports_gai_strerror(void) {
	/* SPEC 12: no host-name length limit (upstream refuses > ~230 bytes with -1) */
	char name[400];
	memset(name, 'a', 300);
	strcpy(name + 300, ".invalid");
	const char *want = gai_text(name, SOCK_STREAM, IPPROTO_TCP);
	if (!CHECK(want != NULL))
		return;
	struct fixture f;
	fixture_init(&f);
	int id = socket_server_connect(f.ss, OWNER, name, 80);
	CHECK(id > 0);
	EXPECT(&f, SOCKET_ERR, id, OWNER, 0, want);
	fixture_finish(&f);
}

static void
not_isolated(void) {
	CHECK(!"test_lookup must run in a private network namespace (unshare -n)");
}

int
main(void) {
	static const struct test tests[] = {
		TEST(connect_to_an_unresolvable_name_reports_gai_strerror),
		TEST(udp_and_listen_calls_with_an_unresolvable_name_return_minus_1),
		TEST(long_unresolvable_name_reports_gai_strerror),
	};
	if (!isolated()) {
		static const struct test refuse[] = { TEST(not_isolated) };
		return run_tests(refuse, 1);
	}
	return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
