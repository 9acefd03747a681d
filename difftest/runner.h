/*
 * The differential runner: a program generated from a seed, executed against one
 * implementation of the socket_server ABI, printed as a normalised trace (difftest/README.md).
 */
#ifndef DIFFTEST_RUNNER_H
#define DIFFTEST_RUNNER_H

#include <stddef.h>
#include <stdint.h>

/* Handles a program refers to: library sockets S0.. and peer endpoints P0.. */
#define NSOCK 6
#define NPEER 4
#define MAX_STEPS 200

enum op {
	/* API calls */
	OP_LISTEN,      /* a=h b=fam */
	OP_LISTEN_BAD,  /* a=h: a numeric host no interface has */
	OP_CONNECT,     /* a=h b=fam c=target(0 peer listener,1 own listener,2 closed port) d=p|L e=hacc */
	OP_BIND,        /* a=h b=how(0 socketpair,1 pipe read end,2 pipe write end) c=p */
	OP_START,       /* a=h b=opaque */
	OP_PAUSE,       /* a=h b=opaque */
	OP_CLOSE,       /* a=h b=opaque */
	OP_SHUTDOWN,    /* a=h b=opaque */
	OP_NODELAY,     /* a=h */
	OP_SEND,        /* a=h b=low c=kind size */
	OP_UDP,         /* a=h b=fam c=mode(0 unbound,1 bound to a free port) */
	OP_UDP_LISTEN,  /* a=h b=fam c=mode(0 port 0,1 a free port) */
	OP_UDP_DIAL,    /* a=h b=fam c=p (unset peer: a closed port) */
	OP_UDP_CONNECT, /* a=h b=fam c=p */
	OP_UDP_SEND,    /* a=h b=addr(0 peer's, 1 other family, 2 unknown protocol byte) c=p d=kind size */
	OP_USEROBJECT,  /* a=interface (0 A, 1 B) */
	OP_INFO,
	OP_BADID,       /* a=call b=which id */
	/* peer actions */
	OP_PCONNECT,    /* a=p b=L c=fam d=h (the accepted socket's handle) */
	OP_PWRITE,      /* a=p size */
	OP_PREAD,       /* a=p size (0: all) */
	OP_PSHUT,       /* a=p: half-close */
	OP_PRST,        /* a=p: close with SO_LINGER 0 */
	OP_PCLOSE,      /* a=p */
	OP_PUDP,        /* a=p b=fam */
	OP_PUDPSEND,    /* a=p b=h size */
	OP_COUNT
};

enum { BUF_MEMORY, BUF_OBJECT, BUF_RAW };

struct step {
	int op;
	int a, b, c, d, e;
	long size;
};

struct program {
	unsigned long seed;
	int n;
	struct step s[MAX_STEPS];
};

void generate(struct program *p, unsigned long seed, int nsteps);
void print_step(char *buf, size_t sz, const struct step *s);

#endif
