/* A weak skynet_error so the archive links outside skynet; skynet's own definition wins.
 * It prints the message and a newline to stderr, in one write(2).
 *
 * Only the compiler's own headers: build.rs compiles this file for macOS and FreeBSD from
 * Linux with `clang --target=...` and no SDK or sysroot, so the four libc functions it calls
 * are declared here. Their C prototypes are the same in every libc we build for (ssize_t has
 * the size of long on each of them). */
#include <stdarg.h>
#include <stddef.h>

int vsnprintf(char *, size_t, const char *, va_list);
long write(int, const void *, size_t);
void *malloc(size_t);
void free(void *);

struct skynet_context;

__attribute__((weak)) void
skynet_error(struct skynet_context *context, const char *fmt, ...) {
	(void)context;
	char small[512];
	char *buf = small;
	va_list ap;
	/* one byte of the buffer is kept for the newline */
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small) - 1) {
		buf = malloc((size_t)n + 2);
		if (buf != NULL) {
			va_start(ap, fmt);
			vsnprintf(buf, (size_t)n + 1, fmt, ap);
			va_end(ap);
		} else {
			buf = small; /* out of memory: print what fitted */
			n = (int)sizeof(small) - 2;
		}
	}
	buf[n] = '\n';
	const char *p = buf;
	size_t left = (size_t)n + 1;
	while (left > 0) {
		long w = write(2, p, left);
		if (w <= 0)
			break; /* as stdio does: a failed write to stderr is dropped */
		p += w;
		left -= (size_t)w;
	}
	if (buf != small)
		free(buf);
}
