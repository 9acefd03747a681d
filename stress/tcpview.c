/*
 * The kernel's view of a loopback TCP connection, for diagnosing stalls: both ends' state,
 * queues and timers from /proc/net/tcp{,6} (always there, no tool needed), the lines `ss`
 * prints for them when ss is installed, and the TcpExt counters that move when TCP itself
 * drops or ignores segments (an RST it never applied shows up there, not in our code).
 */
#include "stress.h"

#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/wait.h>

static const char *const tcp_states[] = { "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
	"FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV" };

const char *tcp_state_name(unsigned st) { return st < sizeof tcp_states / sizeof *tcp_states ? tcp_states[st] : "?"; }

/* 127.0.0.1 as /proc/net/tcp prints it (host byte order, little-endian), and as a v4-mapped
 * address in /proc/net/tcp6. */
static int loopback_hex(const char *a) {
	return !strcmp(a, "0100007F") || !strcmp(a, "0000000000000000FFFF00000100007F");
}

/* One row of /proc/net/tcp*: the two addresses (hex, as the file prints them) and ports, and
 * the end's state, queues and timers in `e`. 0 for the header or a line that does not parse. */
static int parse_tcp_row(const char *line, char la[40], unsigned *lp, char ra[40], unsigned *rp,
		struct tcp_end *e) {
	unsigned st, tr, retr, probes, uid;
	unsigned long txq, rxq, when, inode;
	if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %lx:%lx %x:%lx %x %u %u %lu",
			la, lp, ra, rp, &st, &txq, &rxq, &tr, &when, &retr, &uid, &probes, &inode) != 13)
		return 0;
	*e = (struct tcp_end){ 1, st, (uint32_t)txq, (uint32_t)rxq, tr, (long)when, retr, probes, inode };
	return 1;
}

/* Scans one /proc/net/tcp* file for local lport <-> remote rport on 127.0.0.1. */
static int scan(const char *path, unsigned lport, unsigned rport, struct tcp_end *out) {
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	char line[512];
	int found = 0;
	if (!fgets(line, sizeof line, f)) line[0] = 0; /* header */
	while (!found && fgets(line, sizeof line, f)) {
		char la[40], ra[40];
		unsigned lp, rp;
		struct tcp_end e;
		if (!parse_tcp_row(line, la, &lp, ra, &rp, &e)) continue;
		if (lp != lport || rp != rport || !loopback_hex(la) || !loopback_hex(ra)) continue;
		found = 1;
		*out = e;
	}
	fclose(f);
	return found;
}

void tcp_end_lookup(unsigned lport, unsigned rport, struct tcp_end *out) {
	memset(out, 0, sizeof *out);
	if (!scan("/proc/net/tcp", lport, rport, out)) scan("/proc/net/tcp6", lport, rport, out);
}

void tcp_end_text(const struct tcp_end *e, char *out, size_t cap) {
	static const char *const timers[] = { "none", "retransmit", "keepalive/other", "time-wait", "zero-window probe" };
	if (!e->found) {
		snprintf(out, cap, "no socket (gone: closed or reset, and not in TIME_WAIT)");
		return;
	}
	snprintf(out, cap, "%s, send-q %u, recv-q %u, timer %s (%ld cs left), retransmits %u, probes %u, %s",
		tcp_state_name(e->state), e->txq, e->rxq, e->timer < 5 ? timers[e->timer] : "?", e->when,
		e->retrans, e->probes, e->inode ? "held by a process" : "orphan (no descriptor)");
}

void tcp_view_print(unsigned server_port, unsigned client_port) {
	struct tcp_end s, c;
	char st[256], ct[256];
	tcp_end_lookup(server_port, client_port, &s);
	tcp_end_lookup(client_port, server_port, &c);
	tcp_end_text(&s, st, sizeof st);
	tcp_end_text(&c, ct, sizeof ct);
	stress_log("  kernel: server end 127.0.0.1:%u: %s", server_port, st);
	stress_log("  kernel: client end 127.0.0.1:%u: %s", client_port, ct);
	/* ss adds windows, rtt, memory and the timer in its own words; optional. */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "ss -tinmoe state all '( ( sport = :%u and dport = :%u ) or "
		"( sport = :%u and dport = :%u ) )' 2>/dev/null", server_port, client_port, client_port, server_port);
	fflush(NULL);
	FILE *p = popen(cmd, "r");
	if (!p) return;
	char line[1024];
	while (fgets(line, sizeof line, p)) {
		size_t n = strcspn(line, "\n");
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\n')) n--;
		line[n] = 0;
		if (line[0] && strncmp(line, "State", 5) != 0) stress_log("  ss: %s", line);
	}
	pclose(p);
}

/* TcpExt counters that count segments TCP dropped or ignored on its own. */
static const char *const counter_names[TCP_COUNTERS] = { "TCPChallengeACK", "TCPACKSkippedChallenge",
	"TCPRcvQDrop", "TCPZeroWindowDrop", "TCPBacklogDrop", "PruneCalled", "RcvPruned", "TCPAbortOnMemory",
	"TCPAbortOnData", "TCPAbortOnClose" };

void tcp_counters_read(uint64_t out[TCP_COUNTERS]) {
	memset(out, 0, sizeof(uint64_t) * TCP_COUNTERS);
	FILE *f = fopen("/proc/net/netstat", "r");
	if (!f) return;
	static char names[8192], values[8192];
	while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
		if (strncmp(names, "TcpExt:", 7) != 0) continue;
		char *sn, *sv;
		char *n = strtok_r(names + 7, " \n", &sn);
		char *v = strtok_r(values + 7, " \n", &sv);
		for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
			for (int i = 0; i < TCP_COUNTERS; i++)
				if (!strcmp(n, counter_names[i])) out[i] = strtoull(v, NULL, 10);
	}
	fclose(f);
}

void tcp_counters_text(const uint64_t since[TCP_COUNTERS], char *out, size_t cap) {
	uint64_t now[TCP_COUNTERS];
	tcp_counters_read(now);
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < TCP_COUNTERS && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s +%llu", i ? ", " : "", counter_names[i],
			(unsigned long long)(now[i] - since[i]));
}

void tcp_view_port(unsigned port, int max) {
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	int shown = 0, skipped = 0;
	for (int fi = 0; fi < 2; fi++) {
		FILE *f = fopen(files[fi], "r");
		if (!f) continue;
		char line[512];
		if (!fgets(line, sizeof line, f)) line[0] = 0;
		while (fgets(line, sizeof line, f)) {
			char la[40], ra[40];
			unsigned lp, rp;
			struct tcp_end e;
			if (!parse_tcp_row(line, la, &lp, ra, &rp, &e)) continue;
			if ((lp != port && rp != port) || e.state == 10 /* LISTEN */ || e.state == TCPS_TIME_WAIT)
				continue;
			if (shown >= max) {
				skipped++;
				continue;
			}
			shown++;
			char t[256];
			tcp_end_text(&e, t, sizeof t);
			stress_log("  kernel: 127.0.0.1:%u -> 127.0.0.1:%u: %s", lp, rp, t);
		}
		fclose(f);
	}
	stress_log("  kernel: %d connection ends of port %u shown (not LISTEN or TIME_WAIT), %d more", shown, port,
		skipped);
}

void proc_threads_print(int pid) {
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') continue;
		char p[320], stat[512] = "", sys[128] = "";
		snprintf(p, sizeof p, "/proc/%d/task/%s/stat", pid, e->d_name);
		FILE *f = fopen(p, "r");
		if (f) {
			if (!fgets(stat, sizeof stat, f)) stat[0] = 0;
			fclose(f);
		}
		snprintf(p, sizeof p, "/proc/%d/task/%s/syscall", pid, e->d_name);
		f = fopen(p, "r");
		if (f) {
			if (!fgets(sys, sizeof sys, f)) sys[0] = 0;
			fclose(f);
		}
		/* state and CPU ticks: fields 3, 14, 15 of stat (after the parenthesised name) */
		char *rp = strrchr(stat, ')');
		char state = '?';
		unsigned long ut = 0, st = 0;
		if (rp) sscanf(rp + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &ut, &st);
		char *sp = strchr(sys, ' ');
		if (sp) *sp = 0;
		sys[strcspn(sys, "\n")] = 0;
		stress_log("  process %d thread %s: state %c, user %lu sys %lu ticks, system call %s", pid, e->d_name,
			state, ut, st, sys);
	}
	closedir(d);
}
