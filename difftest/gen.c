/*
 * Program generator: a seed becomes a list of steps. The generator keeps a rough model of what
 * each handle holds only to pick plausible steps; the runner never relies on it, so a step
 * whose prerequisites were cut away (--steps) still runs (see runner.c: unset handles).
 */
#include "runner.h"

#include <stdio.h>
#include <string.h>

static uint64_t rng;

static uint64_t
next(void) {
	/* splitmix64: tiny, and the same sequence everywhere */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
pick(int n) {
	return (int)(next() % (uint64_t)n);
}

static int
chance(int percent) {
	return pick(100) < percent;
}

enum gkind { G_NONE, G_LISTEN, G_TCP, G_BIND, G_UDP };
enum pkind { PK_NONE, PK_TCP, PK_LOCAL, PK_UDP };

struct model {
	int sock[NSOCK];
	int sfam[NSOCK];
	int peer[NPEER];
	int pfam[NPEER];
	long pwritten[NPEER];
};

static int
pick_sock(const struct model *m, int kind) {
	int c[NSOCK], n = 0;
	for (int i = 0; i < NSOCK; i++)
		if (m->sock[i] == kind)
			c[n++] = i;
	/* mostly a matching handle; sometimes any (stale, unset or of another kind) */
	if (n == 0 || chance(8))
		return pick(NSOCK);
	return c[pick(n)];
}

static int
pick_free_sock(const struct model *m) {
	int c[NSOCK], n = 0;
	for (int i = 0; i < NSOCK; i++)
		if (m->sock[i] == G_NONE)
			c[n++] = i;
	return n ? c[pick(n)] : pick(NSOCK);
}

static int
pick_peer(const struct model *m, int kind) {
	int c[NPEER], n = 0;
	for (int i = 0; i < NPEER; i++)
		if (kind < 0 ? m->peer[i] != PK_NONE && m->peer[i] != PK_UDP : m->peer[i] == kind)
			c[n++] = i;
	if (n == 0 || chance(5))
		return pick(NPEER);
	return c[pick(n)];
}

static int
pick_free_peer(const struct model *m) {
	int c[NPEER], n = 0;
	for (int i = 0; i < NPEER; i++)
		if (m->peer[i] == PK_NONE)
			c[n++] = i;
	return n ? c[pick(n)] : pick(NPEER);
}

static long
tcp_size(void) {
	/* Small sends fit in the kernel's buffers (fixed by the runner: about 450 KB per
	   connection), large ones congest for sure; sizes near that capacity would make queueing
	   depend on timing. */
	static const long small[] = { 1, 17, 300, 1000, 2000 };
	static const long large[] = { 700000, 1572864, 3145728, 5242880 };
	if (chance(70))
		return small[pick(5)];
	return large[pick(4)];
}

static long
udp_size(void) {
	static const long s[] = { 1, 100, 1400, 9000, 60000, 70000 };
	return s[pick(chance(95) ? 5 : 6)];
}

static int
opaque(void) {
	return pick(3);
}

/* One step; returns 0 when the chosen kind is not applicable (the caller draws again). */
static int
gen_step(struct model *m, struct step *s) {
	memset(s, 0, sizeof(*s));
	/* weights: peer traffic and sends dominate, creations keep handles populated */
	static const int weight[OP_COUNT] = {
		[OP_LISTEN] = 6, [OP_LISTEN_BAD] = 1, [OP_CONNECT] = 8, [OP_BIND] = 3,
		[OP_START] = 8, [OP_PAUSE] = 4, [OP_CLOSE] = 5, [OP_SHUTDOWN] = 3, [OP_NODELAY] = 1,
		[OP_SEND] = 16, [OP_UDP] = 3, [OP_UDP_LISTEN] = 1, [OP_UDP_DIAL] = 2,
		[OP_UDP_CONNECT] = 2, [OP_UDP_SEND] = 4, [OP_USEROBJECT] = 1, [OP_INFO] = 3,
		[OP_BADID] = 2, [OP_PCONNECT] = 7, [OP_PWRITE] = 8, [OP_PREAD] = 7, [OP_PSHUT] = 2,
		[OP_PRST] = 2, [OP_PCLOSE] = 2, [OP_PUDP] = 2, [OP_PUDPSEND] = 3,
	};
	int total = 0;
	for (int i = 0; i < OP_COUNT; i++)
		total += weight[i];
	int r = pick(total), op = 0;
	while (r >= weight[op])
		r -= weight[op++];
	s->op = op;
	switch (op) {
	case OP_LISTEN:
		s->a = pick_free_sock(m);
		s->b = chance(70) ? 4 : 6;
		m->sock[s->a] = G_LISTEN;
		m->sfam[s->a] = s->b;
		break;
	case OP_LISTEN_BAD:
		s->a = pick_free_sock(m);
		break;
	case OP_CONNECT:
		s->a = pick_free_sock(m);
		s->c = pick(10) < 6 ? 0 : (pick(10) < 8 ? 1 : 2);
		if (s->c == 0) {
			s->b = chance(70) ? 4 : 6;
			s->d = pick_free_peer(m);
			m->peer[s->d] = PK_TCP;
			m->pfam[s->d] = s->b;
			m->pwritten[s->d] = 0;
		} else if (s->c == 1) {
			s->d = pick_sock(m, G_LISTEN);
			s->b = m->sock[s->d] == G_LISTEN ? m->sfam[s->d] : 4;
			s->e = pick_free_sock(m);
			if (s->e == s->a)
				s->e = (s->a + 1) % NSOCK;
			m->sock[s->e] = G_TCP;
		} else {
			s->b = chance(70) ? 4 : 6;
		}
		m->sock[s->a] = s->c == 2 ? G_NONE : G_TCP;
		break;
	case OP_BIND:
		s->a = pick_free_sock(m);
		s->b = pick(3);
		s->c = pick_free_peer(m);
		m->sock[s->a] = G_BIND;
		m->peer[s->c] = PK_LOCAL;
		m->pwritten[s->c] = 0;
		break;
	case OP_START:
		s->a = chance(50) ? pick_sock(m, G_LISTEN) : pick_sock(m, G_TCP);
		s->b = opaque();
		break;
	case OP_PAUSE:
		s->a = pick_sock(m, chance(80) ? G_TCP : G_BIND);
		s->b = opaque();
		break;
	case OP_CLOSE:
	case OP_SHUTDOWN:
		s->a = pick(NSOCK);
		s->b = opaque();
		m->sock[s->a] = G_NONE;
		break;
	case OP_NODELAY:
		s->a = pick_sock(m, G_TCP);
		break;
	case OP_SEND:
		s->a = pick_sock(m, chance(85) ? G_TCP : (chance(50) ? G_UDP : G_BIND));
		s->b = chance(30);
		s->c = pick(3);
		s->size = m->sock[s->a] == G_UDP ? udp_size() : tcp_size();
		break;
	case OP_UDP:
	case OP_UDP_LISTEN:
		s->a = pick_free_sock(m);
		s->b = chance(70) ? 4 : 6;
		s->c = chance(op == OP_UDP ? 60 : 85);
		m->sock[s->a] = G_UDP;
		m->sfam[s->a] = s->c || op == OP_UDP_LISTEN ? s->b : 4;
		break;
	case OP_UDP_DIAL:
		s->a = pick_free_sock(m);
		s->c = pick_peer(m, PK_UDP);
		s->b = m->peer[s->c] == PK_UDP ? m->pfam[s->c] : 4;
		m->sock[s->a] = G_UDP;
		m->sfam[s->a] = s->b;
		break;
	case OP_UDP_CONNECT:
		s->a = pick_sock(m, G_UDP);
		s->c = pick_peer(m, PK_UDP);
		s->b = m->peer[s->c] == PK_UDP ? m->pfam[s->c] : 4;
		if (chance(15))
			s->b = 10 - s->b; /* the other family */
		break;
	case OP_UDP_SEND:
		s->a = pick_sock(m, G_UDP);
		s->b = pick(10) < 7 ? 0 : (chance(50) ? 1 : 2);
		s->c = pick_peer(m, PK_UDP);
		s->d = pick(3);
		s->size = udp_size();
		break;
	case OP_USEROBJECT:
		s->a = pick(2);
		break;
	case OP_INFO:
		break;
	case OP_BADID:
		s->a = pick(7);
		s->b = pick(4);
		break;
	case OP_PCONNECT:
		s->a = pick_free_peer(m);
		s->b = pick_sock(m, G_LISTEN);
		s->c = m->sock[s->b] == G_LISTEN ? m->sfam[s->b] : 4;
		s->d = pick_free_sock(m);
		if (s->d == s->b)
			s->d = (s->b + 1) % NSOCK;
		m->peer[s->a] = PK_TCP;
		m->pfam[s->a] = s->c;
		m->pwritten[s->a] = 0;
		m->sock[s->d] = G_TCP;
		break;
	case OP_PWRITE: {
		static const long sz[] = { 1, 10, 500, 4000, 30000 };
		s->a = pick_peer(m, -1);
		s->size = sz[pick(5)];
		/* a paused library socket must be able to hold everything a peer writes without
		   blocking the peer (otherwise how much got written would depend on timing) */
		if (m->pwritten[s->a] + s->size > 60000)
			return 0;
		m->pwritten[s->a] += s->size;
		break;
	}
	case OP_PREAD: {
		static const long sz[] = { 1000, 65536, 1048576, 0, 0 };
		s->a = pick_peer(m, -1);
		s->size = sz[pick(5)];
		break;
	}
	case OP_PSHUT:
	case OP_PRST:
	case OP_PCLOSE:
		s->a = pick_peer(m, -1);
		if (op != OP_PSHUT)
			m->peer[s->a] = PK_NONE;
		break;
	case OP_PUDP:
		s->a = pick_free_peer(m);
		s->b = chance(70) ? 4 : 6;
		m->peer[s->a] = PK_UDP;
		m->pfam[s->a] = s->b;
		break;
	case OP_PUDPSEND:
		s->a = pick_peer(m, PK_UDP);
		s->b = pick_sock(m, G_UDP);
		s->size = udp_size();
		if (s->size > 60000)
			s->size = 60000;
		break;
	default:
		return 0;
	}
	return 1;
}

void
generate(struct program *p, unsigned long seed, int nsteps) {
	struct model m;
	memset(&m, 0, sizeof(m));
	memset(p, 0, sizeof(*p));
	rng = seed * 0x2545f4914f6cdd1dull + 1;
	p->seed = seed;
	if (nsteps <= 0)
		nsteps = 24 + pick(24);
	if (nsteps > MAX_STEPS)
		nsteps = MAX_STEPS;
	while (p->n < nsteps) {
		if (gen_step(&m, &p->s[p->n]))
			p->n++;
	}
}

static const char *fam_s(int f) { return f == 6 ? "v6" : "v4"; }
static const char *kind_s(int k) { return k == BUF_MEMORY ? "MEMORY" : k == BUF_OBJECT ? "OBJECT" : "RAW"; }

void
print_step(char *buf, size_t sz, const struct step *s) {
	static const char *badcall[] = { "send", "close", "shutdown", "start", "pause", "nodelay",
		"udp_connect" };
	static const char *badid[] = { "0", "-1", "never-issued", "slot-alias" };
	switch (s->op) {
	case OP_LISTEN: snprintf(buf, sz, "listen S%d %s", s->a, fam_s(s->b)); break;
	case OP_LISTEN_BAD: snprintf(buf, sz, "listen S%d on an address no interface has", s->a); break;
	case OP_CONNECT:
		if (s->c == 0)
			snprintf(buf, sz, "connect S%d %s to peer listener -> P%d", s->a, fam_s(s->b), s->d);
		else if (s->c == 1)
			snprintf(buf, sz, "connect S%d %s to own listener S%d, accepted -> S%d", s->a,
				fam_s(s->b), s->d, s->e);
		else
			snprintf(buf, sz, "connect S%d %s to a closed port", s->a, fam_s(s->b));
		break;
	case OP_BIND:
		snprintf(buf, sz, "bind S%d %s, other end P%d", s->a,
			s->b == 0 ? "socketpair end" : s->b == 1 ? "pipe read end" : "pipe write end", s->c);
		break;
	case OP_START: snprintf(buf, sz, "start S%d opaque O%d", s->a, s->b); break;
	case OP_PAUSE: snprintf(buf, sz, "pause S%d opaque O%d", s->a, s->b); break;
	case OP_CLOSE: snprintf(buf, sz, "close S%d opaque O%d", s->a, s->b); break;
	case OP_SHUTDOWN: snprintf(buf, sz, "shutdown S%d opaque O%d", s->a, s->b); break;
	case OP_NODELAY: snprintf(buf, sz, "nodelay S%d", s->a); break;
	case OP_SEND:
		snprintf(buf, sz, "send%s S%d %s %ld", s->b ? "_lowpriority" : "", s->a, kind_s(s->c),
			s->size);
		break;
	case OP_UDP:
		snprintf(buf, sz, "udp S%d %s", s->a, s->c ? fam_s(s->b) : "unbound");
		break;
	case OP_UDP_LISTEN:
		snprintf(buf, sz, "udp_listen S%d %s %s", s->a, fam_s(s->b), s->c ? "free port" : "port 0");
		break;
	case OP_UDP_DIAL: snprintf(buf, sz, "udp_dial S%d %s to P%d", s->a, fam_s(s->b), s->c); break;
	case OP_UDP_CONNECT: snprintf(buf, sz, "udp_connect S%d %s to P%d", s->a, fam_s(s->b), s->c); break;
	case OP_UDP_SEND:
		snprintf(buf, sz, "udp_send S%d to %s P%d %s %ld", s->a,
			s->b == 0 ? "address of" : s->b == 1 ? "other-family address of" : "unknown-protocol address of",
			s->c, kind_s(s->d), s->size);
		break;
	case OP_USEROBJECT: snprintf(buf, sz, "userobject %s", s->a ? "B" : "A"); break;
	case OP_INFO: snprintf(buf, sz, "info"); break;
	case OP_BADID: snprintf(buf, sz, "%s on id %s", badcall[s->a], badid[s->b]); break;
	case OP_PCONNECT:
		snprintf(buf, sz, "peer P%d connects %s to S%d, accepted -> S%d", s->a, fam_s(s->c), s->b,
			s->d);
		break;
	case OP_PWRITE: snprintf(buf, sz, "peer P%d writes %ld", s->a, s->size); break;
	case OP_PREAD:
		if (s->size)
			snprintf(buf, sz, "peer P%d reads up to %ld", s->a, s->size);
		else
			snprintf(buf, sz, "peer P%d reads all", s->a);
		break;
	case OP_PSHUT: snprintf(buf, sz, "peer P%d half-closes", s->a); break;
	case OP_PRST: snprintf(buf, sz, "peer P%d resets", s->a); break;
	case OP_PCLOSE: snprintf(buf, sz, "peer P%d closes", s->a); break;
	case OP_PUDP: snprintf(buf, sz, "peer P%d udp %s", s->a, fam_s(s->b)); break;
	case OP_PUDPSEND: snprintf(buf, sz, "peer P%d udp sends %ld to S%d", s->a, s->size, s->b); break;
	default: snprintf(buf, sz, "?"); break;
	}
}
