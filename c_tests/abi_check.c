/*
 * Compile-time proof that include/socket_server.h is skynet's ABI (SPEC section 1).
 *
 * skynet's C files are compiled against skynet's own socket_server.h, socket_buffer.h and
 * socket_info.h, then linked against our library, so every size, offset, field type, constant
 * and prototype has to agree with those headers exactly; the compiler never compares them for
 * us. The reference below writes skynet's declarations out again under our own ref_ names (as
 * SPEC section 1 states them, x86-64 LP64), and every _Static_assert compares the generated
 * header against it. Any drift is a compile error naming the field, constant or function.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -Iinclude -c c_tests/abi_check.c -o /dev/null
 * Linking is optional; main does nothing.
 */

/* First, so that the header is also proven to compile on its own. */
#include "socket_server.h"

#include <stddef.h>
#include <stdint.h>

/* ---- The reference: skynet's layouts, our names ---- */

struct ref_socket_message {
	int id;
	uintptr_t opaque;
	int ud;
	char *data;
};

struct ref_socket_sendbuffer {
	int id;
	int type;
	const void *buffer;
	size_t sz;
};

struct ref_socket_info {
	int id;
	int type;
	uint64_t opaque;
	uint64_t read;
	uint64_t write;
	uint64_t rtime;
	uint64_t wtime;
	int64_t wbuffer;
	uint8_t reading;
	uint8_t writing;
	char name[128];
	struct ref_socket_info *next;
};

struct ref_socket_object_interface {
	const void *(*buffer)(const void *);
	size_t (*size)(const void *);
	void (*free)(void *);
};

/* ---- Helpers ---- */

#define SAME_TYPE(a, b) __builtin_types_compatible_p(a, b)
#define FIELD_TYPE(s, f) __typeof__(((struct s *)0)->f)

/*
 * Offset, size and type of one field. The type check matters on its own: int versus unsigned,
 * or uint64_t versus int64_t, keeps every size and offset yet changes what C code computes.
 */
#define SAME_FIELD(s, f)                                                                   \
	_Static_assert(offsetof(struct s, f) == offsetof(struct ref_##s, f),               \
	               #s "." #f ": offset differs from skynet");                          \
	_Static_assert(sizeof(FIELD_TYPE(s, f)) == sizeof(FIELD_TYPE(ref_##s, f)),          \
	               #s "." #f ": size differs from skynet");                            \
	_Static_assert(SAME_TYPE(FIELD_TYPE(s, f), FIELD_TYPE(ref_##s, f)),                 \
	               #s "." #f ": type differs from skynet")

#define SAME_STRUCT(s)                                                                     \
	_Static_assert(sizeof(struct s) == sizeof(struct ref_##s),                         \
	               "sizeof(struct " #s ") differs from skynet");                       \
	_Static_assert(_Alignof(struct s) == _Alignof(struct ref_##s),                     \
	               "alignof(struct " #s ") differs from skynet")

/* ---- Structs ---- */

/* The absolute sizes SPEC section 1 quotes hold for LP64 only; the comparisons hold anywhere. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct ref_socket_message) == 32, "reference socket_message is 32 bytes");
_Static_assert(sizeof(struct ref_socket_sendbuffer) == 24, "reference socket_sendbuffer is 24 bytes");
_Static_assert(sizeof(struct ref_socket_info) == 200, "reference socket_info is 200 bytes");
_Static_assert(sizeof(struct ref_socket_object_interface) == 24, "reference socket_object_interface is 24 bytes");
#endif

SAME_STRUCT(socket_message);
SAME_FIELD(socket_message, id);
SAME_FIELD(socket_message, opaque);
SAME_FIELD(socket_message, ud);
SAME_FIELD(socket_message, data);

SAME_STRUCT(socket_sendbuffer);
SAME_FIELD(socket_sendbuffer, id);
SAME_FIELD(socket_sendbuffer, type);
SAME_FIELD(socket_sendbuffer, buffer);
SAME_FIELD(socket_sendbuffer, sz);

SAME_STRUCT(socket_info);
SAME_FIELD(socket_info, id);
SAME_FIELD(socket_info, type);
SAME_FIELD(socket_info, opaque);
SAME_FIELD(socket_info, read);
SAME_FIELD(socket_info, write);
SAME_FIELD(socket_info, rtime);
SAME_FIELD(socket_info, wtime);
SAME_FIELD(socket_info, wbuffer);
SAME_FIELD(socket_info, reading);
SAME_FIELD(socket_info, writing);
SAME_FIELD(socket_info, name);
/* next points to its own struct, so its type is compared by hand rather than by SAME_FIELD. */
_Static_assert(offsetof(struct socket_info, next) == offsetof(struct ref_socket_info, next),
	"socket_info.next: offset differs from skynet");
_Static_assert(SAME_TYPE(FIELD_TYPE(socket_info, next), struct socket_info *),
	"socket_info.next: type differs from skynet");

SAME_STRUCT(socket_object_interface);
SAME_FIELD(socket_object_interface, buffer);
SAME_FIELD(socket_object_interface, size);
SAME_FIELD(socket_object_interface, free);

/*
 * Offsets cannot see a member added inside padding (socket_message has 4 spare bytes after
 * ud) or two same-typed members swapped. Positional initialisers can: with -Wextra a missing
 * member is -Wmissing-field-initializers, an extra value is "excess elements", and a value
 * landing on a member of another kind is a conversion error.
 */
__attribute__((unused)) static const struct socket_message message_members = {
	(int)1, (uintptr_t)2, (int)3, (char *)0,
};
__attribute__((unused)) static const struct socket_sendbuffer sendbuffer_members = {
	(int)1, (int)2, (const void *)0, (size_t)3,
};
__attribute__((unused)) static const struct socket_info info_members = {
	(int)1, (int)2, (uint64_t)3, (uint64_t)4, (uint64_t)5, (uint64_t)6, (uint64_t)7,
	(int64_t)8, (uint8_t)9, (uint8_t)10, "name", (struct socket_info *)0,
};
__attribute__((unused)) static const struct socket_object_interface object_interface_members = {
	(const void *(*)(const void *))0, (size_t (*)(const void *))0, (void (*)(void *))0,
};

/* ---- Constants ---- */

/*
 * skynet uses them in switch labels and may test them with #if, so they must be preprocessor
 * macros of type int: the #if checks fail on a missing macro (it reads as 0) or a wrong value,
 * and the _Static_assert checks the type the C compiler sees.
 */
#define SAME_CONSTANT(name, value)                                                         \
	_Static_assert((name) == (value), #name " differs from skynet");                   \
	_Static_assert(SAME_TYPE(__typeof__(name), int), #name " is not an int")

#if !defined(SOCKET_DATA) || SOCKET_DATA != 0 || !defined(SOCKET_CLOSE) || SOCKET_CLOSE != 1 \
	|| !defined(SOCKET_OPEN) || SOCKET_OPEN != 2 || !defined(SOCKET_ACCEPT) || SOCKET_ACCEPT != 3 \
	|| !defined(SOCKET_ERR) || SOCKET_ERR != 4 || !defined(SOCKET_EXIT) || SOCKET_EXIT != 5 \
	|| !defined(SOCKET_UDP) || SOCKET_UDP != 6 || !defined(SOCKET_WARNING) || SOCKET_WARNING != 7
#error "poll result macros differ from skynet's socket_server.h"
#endif
#if !defined(SOCKET_BUFFER_MEMORY) || SOCKET_BUFFER_MEMORY != 0 \
	|| !defined(SOCKET_BUFFER_OBJECT) || SOCKET_BUFFER_OBJECT != 1 \
	|| !defined(SOCKET_BUFFER_RAWPOINTER) || SOCKET_BUFFER_RAWPOINTER != 2
#error "buffer kind macros differ from skynet's socket_buffer.h"
#endif
#if !defined(SOCKET_INFO_UNKNOWN) || SOCKET_INFO_UNKNOWN != 0 \
	|| !defined(SOCKET_INFO_LISTEN) || SOCKET_INFO_LISTEN != 1 \
	|| !defined(SOCKET_INFO_TCP) || SOCKET_INFO_TCP != 2 \
	|| !defined(SOCKET_INFO_UDP) || SOCKET_INFO_UDP != 3 \
	|| !defined(SOCKET_INFO_BIND) || SOCKET_INFO_BIND != 4 \
	|| !defined(SOCKET_INFO_CLOSING) || SOCKET_INFO_CLOSING != 5
#error "socket_info kind macros differ from skynet's socket_info.h"
#endif

SAME_CONSTANT(SOCKET_DATA, 0);
SAME_CONSTANT(SOCKET_CLOSE, 1);
SAME_CONSTANT(SOCKET_OPEN, 2);
SAME_CONSTANT(SOCKET_ACCEPT, 3);
SAME_CONSTANT(SOCKET_ERR, 4);
SAME_CONSTANT(SOCKET_EXIT, 5);
SAME_CONSTANT(SOCKET_UDP, 6);
SAME_CONSTANT(SOCKET_WARNING, 7);

SAME_CONSTANT(SOCKET_BUFFER_MEMORY, 0);
SAME_CONSTANT(SOCKET_BUFFER_OBJECT, 1);
SAME_CONSTANT(SOCKET_BUFFER_RAWPOINTER, 2);

SAME_CONSTANT(SOCKET_INFO_UNKNOWN, 0);
SAME_CONSTANT(SOCKET_INFO_LISTEN, 1);
SAME_CONSTANT(SOCKET_INFO_TCP, 2);
SAME_CONSTANT(SOCKET_INFO_UDP, 3);
SAME_CONSTANT(SOCKET_INFO_BIND, 4);
SAME_CONSTANT(SOCKET_INFO_CLOSING, 5);

/* ---- The 25 exported functions ---- */

/*
 * Struct parameters use the header's tags on purpose: the structs themselves are compared
 * above, so here only the shape of each prototype is at stake. __typeof__(&f) also fails to
 * compile when the header does not declare f at all.
 */
#define SAME_FUNCTION(name, type) \
	_Static_assert(SAME_TYPE(__typeof__(&name), type), #name ": prototype differs from skynet")

SAME_FUNCTION(socket_server_create, struct socket_server *(*)(uint64_t));
SAME_FUNCTION(socket_server_release, void (*)(struct socket_server *));
SAME_FUNCTION(socket_server_updatetime, void (*)(struct socket_server *, uint64_t));
SAME_FUNCTION(socket_server_poll,
	int (*)(struct socket_server *, struct socket_message *, int *));
SAME_FUNCTION(socket_server_exit, void (*)(struct socket_server *));
SAME_FUNCTION(socket_server_close, void (*)(struct socket_server *, uintptr_t, int));
SAME_FUNCTION(socket_server_shutdown, void (*)(struct socket_server *, uintptr_t, int));
SAME_FUNCTION(socket_server_start, void (*)(struct socket_server *, uintptr_t, int));
SAME_FUNCTION(socket_server_pause, void (*)(struct socket_server *, uintptr_t, int));
SAME_FUNCTION(socket_server_send, int (*)(struct socket_server *, struct socket_sendbuffer *));
SAME_FUNCTION(socket_server_send_lowpriority,
	int (*)(struct socket_server *, struct socket_sendbuffer *));
SAME_FUNCTION(socket_server_listen,
	int (*)(struct socket_server *, uintptr_t, const char *, int, int));
SAME_FUNCTION(socket_server_connect, int (*)(struct socket_server *, uintptr_t, const char *, int));
SAME_FUNCTION(socket_server_bind, int (*)(struct socket_server *, uintptr_t, int));
SAME_FUNCTION(socket_server_nodelay, void (*)(struct socket_server *, int));
SAME_FUNCTION(socket_server_udp, int (*)(struct socket_server *, uintptr_t, const char *, int));
SAME_FUNCTION(socket_server_udp_connect, int (*)(struct socket_server *, int, const char *, int));
SAME_FUNCTION(socket_server_udp_dial,
	int (*)(struct socket_server *, uintptr_t, const char *, int));
SAME_FUNCTION(socket_server_udp_listen,
	int (*)(struct socket_server *, uintptr_t, const char *, int));
SAME_FUNCTION(socket_server_udp_send,
	int (*)(struct socket_server *, const struct socket_udp_address *,
		struct socket_sendbuffer *));
SAME_FUNCTION(socket_server_udp_address,
	const struct socket_udp_address *(*)(struct socket_server *, struct socket_message *,
		int *));
SAME_FUNCTION(socket_server_userobject,
	void (*)(struct socket_server *, struct socket_object_interface *));
SAME_FUNCTION(socket_server_info, struct socket_info *(*)(struct socket_server *));
SAME_FUNCTION(socket_info_create, struct socket_info *(*)(struct socket_info *));
SAME_FUNCTION(socket_info_release, void (*)(struct socket_info *));

int
main(void) {
	return 0;
}
