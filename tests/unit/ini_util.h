/* Helpers the INI reader's tests (test_ini.c, test_ini_diff.c) and its
 * fuzzer (fuzz_ini.c) share: a handler that records its calls, an fgets-like
 * reader over raw bytes, and printing bytes as a C string. config/ini.h and
 * inih declare the same handler and reader function types, so one of each
 * serves both parsers.
 *
 * Plain C, no harness: the fuzzer includes it too. */
#ifndef PH_INI_UTIL_H
#define PH_INI_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit_util.h"

/* ---- recording handler calls --------------------------------------------- */

/* The calls in order, each string length-prefixed so that no byte inside a
 * section, name or value can fake a boundary (NULL has the length
 * UINT32_MAX). */
typedef struct calls {
    bytes log;
    int count;
} calls;

static inline void calls_put_str(calls *c, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX; /* NULL is distinct */

    bytes_put(&c->log, &n, sizeof n);
    if (s)
        bytes_put(&c->log, s, n);
}

/* The handler: records the call in user (a calls) and refuses (returns 0)
 * any value containing '!', so that the "handler said no" paths are
 * reached too. */
static inline int calls_record(void *user, const char *section,
                               const char *name, const char *value)
{
    calls *c = user;

    calls_put_str(c, section);
    calls_put_str(c, name);
    calls_put_str(c, value);
    c->count++;
    return value == NULL || strchr(value, '!') == NULL;
}

static inline void calls_reset(calls *c)
{
    c->log.len = 0;
    c->count = 0;
}

static inline int calls_equal(const calls *a, const calls *b)
{
    return a->log.len == b->log.len &&
           (a->log.len == 0 || memcmp(a->log.data, b->log.data, a->log.len) == 0);
}

/* ---- reading raw bytes ---------------------------------------------------- */

/* An fgets over raw bytes, which unlike a C string may hold NULs; with
 * cap > 0 it also stops after cap bytes, which fgets may do but seldom
 * does. It remembers the largest size it was asked for. */
typedef struct byte_stream {
    const uint8_t *next;
    size_t left;
    size_t cap;
    int max_num;
} byte_stream;

static inline byte_stream byte_stream_of(const void *data, size_t len,
                                         size_t cap)
{
    byte_stream s = {data, len, cap, 0};

    return s;
}

static inline char *byte_reader(char *str, int num, void *stream)
{
    byte_stream *s = stream;
    size_t n = 0;

    if (num > s->max_num)
        s->max_num = num;
    if (s->left == 0 || num < 2)
        return NULL;
    while (n + 1 < (size_t)num && s->left > 0 && (s->cap == 0 || n < s->cap)) {
        uint8_t ch = *s->next++;

        s->left--;
        str[n++] = (char)ch;
        if (ch == '\n')
            break;
    }
    str[n] = '\0';
    return str;
}

/* ---- printing ------------------------------------------------------------- */

/* The n bytes at s as a C string literal, quotes included. */
static inline void print_escaped(FILE *out, const uint8_t *s, size_t n)
{
    size_t i;

    fputc('"', out);
    for (i = 0; i < n; i++) {
        uint8_t ch = s[i];

        switch (ch) {
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        default:
            if (ch < 0x20 || ch >= 0x7f) {
                /* Three octal digits never swallow a following digit. */
                fprintf(out, "\\%03o", ch);
            } else {
                fputc(ch, out);
            }
        }
    }
    fputc('"', out);
}

#endif
