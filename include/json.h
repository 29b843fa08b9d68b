/*
 * A small JSON writer into a growable buffer with a hard size limit: the
 * control socket builds whole responses with it. Commas are placed by the
 * writer (a stack of "first member" flags); strings are escaped per RFC 8259
 * (quote, backslash, control characters; bytes >= 0x80 pass unchanged).
 * Once the limit would be passed the buffer stops growing and `overflow`
 * is set: the caller checks it once at the end.
 */
#ifndef IPSEC_MASQD_JSON_H
#define IPSEC_MASQD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

struct jbuf {
	char *p;           /* NUL-terminated while not overflowed */
	size_t len, cap, limit;
	bool overflow;     /* limit reached or allocation failed */
	unsigned depth;
	bool first[JSON_MAX_DEPTH];
	bool after_key;
};

/* An empty buffer that will not grow past limit bytes. */
void jbuf_init(struct jbuf *b, size_t limit);
void jbuf_free(struct jbuf *b);
/* Forgets the contents and the JSON nesting, keeps the memory. */
void jbuf_reset(struct jbuf *b);
/* Forgets the contents (written out) but keeps the JSON nesting, so that
 * writing can go on where it stopped. */
void jbuf_consume(struct jbuf *b);

/* Raw text (no JSON structure). */
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_putn(struct jbuf *b, const char *s, size_t n);
void jbuf_printf(struct jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* JSON structure: objects, arrays, keys and values. */
void json_obj_begin(struct jbuf *b);
void json_obj_end(struct jbuf *b);
void json_arr_begin(struct jbuf *b);
void json_arr_end(struct jbuf *b);
void json_key(struct jbuf *b, const char *key);
void json_str(struct jbuf *b, const char *s);
void json_uint(struct jbuf *b, uint64_t v);
void json_int(struct jbuf *b, int64_t v);
void json_null(struct jbuf *b);
/* A value formatted by the caller (at most 255 bytes), e.g. "\"0x%08x\"". */
void json_rawf(struct jbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void json_bool(struct jbuf *b, bool v);

/* key + value shorthands */
void json_kv_str(struct jbuf *b, const char *key, const char *s);
void json_kv_uint(struct jbuf *b, const char *key, uint64_t v);

/* Escapes s as a JSON string literal (with quotes) into b. */
void json_escape(struct jbuf *b, const char *s);

#endif
