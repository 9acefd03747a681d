/*
 * Only for `make stress-tsan-rust`: a nightly rustc's -Zsanitizer=thread emits calls to
 * __tsan_memcpy/__tsan_memmove/__tsan_memset, which gcc 12's libtsan does not define. These
 * forward to memcpy & co. through a pointer, so the call reaches libtsan's interceptors,
 * which check the accessed ranges.
 */
#include <stddef.h>
#include <string.h>

void *__tsan_memcpy(void *d, const void *s, size_t n);
void *__tsan_memmove(void *d, const void *s, size_t n);
void *__tsan_memset(void *d, int c, size_t n);

static void *(*volatile fwd_memcpy)(void *, const void *, size_t) = memcpy;
static void *(*volatile fwd_memmove)(void *, const void *, size_t) = memmove;
static void *(*volatile fwd_memset)(void *, int, size_t) = memset;

void *__tsan_memcpy(void *d, const void *s, size_t n) { return fwd_memcpy(d, s, n); }
void *__tsan_memmove(void *d, const void *s, size_t n) { return fwd_memmove(d, s, n); }
void *__tsan_memset(void *d, int c, size_t n) { return fwd_memset(d, c, n); }
