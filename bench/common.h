/*
 * Shared by the bench programs (server.c, floor.c, loadgen.c): the wire formats of every
 * workload, the byte patterns both ends check, clocks, and /proc readings.
 *
 * Wire formats (all integers little-endian u64):
 *   every TCP connection: the server sends one greeting byte 'H' once it has started the socket.
 *   pingpong, echo      : a byte-stream echo; the load generator sends 64-byte messages.
 *   push                : client sends its quota; the server sends `quota` pattern bytes in
 *                         64 KiB chunks, at most PUSH_WINDOW ahead of the client's acks (the
 *                         client acks its cumulative byte count about every ACK_STEP bytes).
 *   recv                : client sends pattern bytes; the server acks every ACK_STEP bytes with
 *                         its cumulative count; the client keeps at most PUSH_WINDOW unacked.
 *   flood               : client sends a count; the server sends that many 32-byte messages.
 *   udp                 : 64-byte datagrams echoed to their sender.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define GREETING 'H'
#define ECHO_MSG 64
#define FLOOD_MSG 32
#define UDP_MSG 64
#define PUSH_CHUNK (64 * 1024)
#define ACK_STEP (1024 * 1024)
#define PUSH_WINDOW (8 * 1024 * 1024)
/* Bulk streams carry byte (offset % PATTERN_PERIOD): a lost, repeated or reordered 64 KiB
 * chunk shifts the phase (65536 % 251 = 25), so the check catches it. */
#define PATTERN_PERIOD 251

enum workload {
	W_PINGPONG,
	W_ECHO,
	W_PUSH,
	W_RECV,
	W_FLOOD,
	W_STORM,
	W_UDP,
	W_IDLE,
	W_EMPTY,
};

static inline int
workload_parse(const char *name) {
	static const char *const names[] = {
		"pingpong", "echo", "push", "recv", "flood", "storm", "udp", "idle", "empty",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -1;
}

static inline uint64_t
now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of every thread of this process. */
static inline uint64_t
process_cpu_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM), or -1. */
static inline long
proc_status_kb(const char *field) {
	char line[256];
	size_t len = strlen(field);
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			kb = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* The descriptor limit is raised as far as the hard limit (or beyond, for root) allows. */
static inline void
raise_nofile(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	struct rlimit want = { 65536, 65536 };
	if (rl.rlim_max < want.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static inline void
put_u64(unsigned char *p, uint64_t v) {
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t
get_u64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* PATTERN_PERIOD + `span` bytes of the bulk pattern; byte at stream offset o is
 * pattern[o % PATTERN_PERIOD + k] for any k < span. */
static inline unsigned char *
pattern_make(size_t span) {
	unsigned char *p = malloc(span + PATTERN_PERIOD);
	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < span + PATTERN_PERIOD; i++)
		p[i] = (unsigned char)(i % PATTERN_PERIOD);
	return p;
}

static inline void
echo_msg_fill(unsigned char *m, uint32_t conn, uint32_t seq) {
	m[0] = (unsigned char)conn;
	m[1] = (unsigned char)(conn >> 8);
	m[2] = (unsigned char)(conn >> 16);
	m[3] = (unsigned char)(conn >> 24);
	m[4] = (unsigned char)seq;
	m[5] = (unsigned char)(seq >> 8);
	m[6] = (unsigned char)(seq >> 16);
	m[7] = (unsigned char)(seq >> 24);
	for (int i = 8; i < ECHO_MSG; i++)
		m[i] = (unsigned char)(seq * 7u + conn + (unsigned)i);
}

static inline void
flood_msg_fill(unsigned char *m, uint64_t index) {
	put_u64(m, index);
	for (int i = 8; i < FLOOD_MSG; i++)
		m[i] = (unsigned char)(index * 13u + (unsigned)i);
}

static inline void
udp_msg_fill(unsigned char *m, uint64_t seq) {
	put_u64(m, seq);
	for (int i = 8; i < UDP_MSG; i++)
		m[i] = (unsigned char)(seq * 5u + (unsigned)i);
}

#endif
