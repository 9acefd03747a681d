/* A weak skynet_error so the archive links outside skynet; skynet's own definition wins. */
#include <stdarg.h>
#include <stdio.h>

struct skynet_context;

__attribute__((weak)) void
skynet_error(struct skynet_context *context, const char *fmt, ...) {
	(void)context;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
