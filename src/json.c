/*
 * The JSON writer (include/json.h). Output only: the daemon never parses
 * JSON, so there is no reader to harden.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

void jbuf_init(struct jbuf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
	b->first[0] = true;
}

void jbuf_free(struct jbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void jbuf_reset(struct jbuf *b)
{
	size_t limit = b->limit, cap = b->cap;
	char *p = b->p;

	jbuf_init(b, limit);
	b->p = p;
	b->cap = cap;
	if (p != NULL)
		p[0] = '\0';
}

void jbuf_consume(struct jbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/* Room for n more bytes plus the NUL. Returns 0, or -1 (overflow set). */
static int reserve(struct jbuf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->overflow)
		return -1;
	if (n >= b->limit || b->len + n >= b->limit) {
		b->overflow = true;
		return -1;
	}
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	if (cap > b->limit)
		cap = b->limit;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->overflow = true;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void jbuf_putn(struct jbuf *b, const char *s, size_t n)
{
	if (reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_putn(b, s, strlen(s));
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->overflow = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		jbuf_putn(b, small, (size_t)n);
		return;
	}
	if (reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* The separator before a value or key at the current depth. */
static void sep(struct jbuf *b)
{
	if (b->after_key) {
		b->after_key = false;
		return;
	}
	if (!b->first[b->depth])
		jbuf_putn(b, ",", 1);
	b->first[b->depth] = false;
}

/* Opens an object or array: separator, bracket, a new level. */
static void jopen(struct jbuf *b, char c)
{
	sep(b);
	jbuf_putn(b, &c, 1);
	if (b->depth + 1 >= JSON_MAX_DEPTH) {
		b->overflow = true;
		return;
	}
	b->first[++b->depth] = true;
}

/* Closes the current level. */
static void jclose(struct jbuf *b, char c)
{
	if (b->depth > 0)
		b->depth--;
	jbuf_putn(b, &c, 1);
}

void json_obj_begin(struct jbuf *b) { jopen(b, '{'); }
void json_obj_end(struct jbuf *b) { jclose(b, '}'); }
void json_arr_begin(struct jbuf *b) { jopen(b, '['); }
void json_arr_end(struct jbuf *b) { jclose(b, ']'); }

void json_escape(struct jbuf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	jbuf_putn(b, "\"", 1);
	for (; *u != '\0'; u++) {
		switch (*u) {
		case '"': jbuf_putn(b, "\\\"", 2); break;
		case '\\': jbuf_putn(b, "\\\\", 2); break;
		case '\b': jbuf_putn(b, "\\b", 2); break;
		case '\f': jbuf_putn(b, "\\f", 2); break;
		case '\n': jbuf_putn(b, "\\n", 2); break;
		case '\r': jbuf_putn(b, "\\r", 2); break;
		case '\t': jbuf_putn(b, "\\t", 2); break;
		default:
			if (*u < 0x20 || *u == 0x7f)
				jbuf_printf(b, "\\u%04x", *u);
			else
				jbuf_putn(b, (const char *)u, 1);
		}
	}
	jbuf_putn(b, "\"", 1);
}

void json_key(struct jbuf *b, const char *key)
{
	sep(b);
	json_escape(b, key);
	jbuf_putn(b, ":", 1);
	b->after_key = true;
}

void json_str(struct jbuf *b, const char *s)
{
	sep(b);
	json_escape(b, s);
}

void json_uint(struct jbuf *b, uint64_t v)
{
	sep(b);
	jbuf_printf(b, "%llu", (unsigned long long)v);
}

void json_int(struct jbuf *b, int64_t v)
{
	sep(b);
	jbuf_printf(b, "%lld", (long long)v);
}

void json_rawf(struct jbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	sep(b);
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small)) {
		b->overflow = true;   /* values are short: a bug, not data */
		return;
	}
	jbuf_putn(b, small, (size_t)n);
}

void json_null(struct jbuf *b)
{
	sep(b);
	jbuf_putn(b, "null", 4);
}

void json_bool(struct jbuf *b, bool v)
{
	sep(b);
	jbuf_puts(b, v ? "true" : "false");
}

void json_kv_str(struct jbuf *b, const char *key, const char *s)
{
	json_key(b, key);
	if (s == NULL)
		json_null(b);
	else
		json_str(b, s);
}

void json_kv_uint(struct jbuf *b, const char *key, uint64_t v)
{
	json_key(b, key);
	json_uint(b, v);
}
