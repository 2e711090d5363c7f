/* libFuzzer differential target: config/ini.c against the installed
 * libinih (Debian's libinih-dev 55). Link with -linih.
 *
 * The input is INI text. Both parsers read it through the string API (a
 * NUL-terminated copy, so it ends at its first NUL byte), through the
 * stream API with an fgets-like reader over all the bytes (NULs included),
 * and through the stream API with a reader that returns at most 37 bytes a
 * call. Each time they must make the same handler calls, in the same
 * order, and return the same value. The handler fails (returns 0) for any
 * value containing '!', so the fuzzer can reach the error paths that a
 * refusing handler opens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* inih's header is also called ini.h, and the -Iconfig that finds ours
 * makes <ini.h> find ours as well; so inih's is named by its full path.
 * The build passes the path find_path() found; by hand, Debian's. */
#ifndef PH_INIH_HEADER
#define PH_INIH_HEADER "/usr/include/ini.h"
#endif
#include PH_INIH_HEADER
#ifndef INI_H
#error "PH_INIH_HEADER is not inih's ini.h"
#endif

#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The calls made, each string length-prefixed so no byte in a section,
 * name or value can fake a boundary. */
typedef struct calls {
    unsigned char *data;
    size_t len;
    size_t cap;
} calls;

static void put_bytes(calls *c, const void *src, size_t n)
{
    if (c->cap - c->len < n) {
        size_t cap = c->cap ? c->cap : 1024;
        unsigned char *p;

        while (cap - c->len < n)
            cap *= 2;
        p = realloc(c->data, cap);
        if (p == NULL)
            abort();
        c->data = p;
        c->cap = cap;
    }
    memcpy(c->data + c->len, src, n);
    c->len += n;
}

static void put_str(calls *c, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;

    put_bytes(c, &n, sizeof n);
    if (s)
        put_bytes(c, s, n);
}

static int record(void *user, const char *section, const char *name,
                  const char *value)
{
    calls *c = user;

    put_str(c, section);
    put_str(c, name);
    put_str(c, value);
    return value == NULL || strchr(value, '!') == NULL;
}

/* fgets over raw bytes; with cap > 0 it also stops after cap bytes. */
typedef struct byte_stream {
    const uint8_t *next;
    size_t left;
    size_t cap;
} byte_stream;

static char *byte_reader(char *str, int num, void *stream)
{
    byte_stream *s = stream;
    size_t n = 0;

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

static void print_escaped(const uint8_t *s, size_t n)
{
    size_t i;

    fputc('"', stderr);
    for (i = 0; i < n; i++) {
        if (s[i] == '\n')
            fputs("\\n", stderr);
        else if (s[i] == '"' || s[i] == '\\')
            fprintf(stderr, "\\%c", s[i]);
        else if (s[i] < 0x20 || s[i] >= 0x7f)
            fprintf(stderr, "\\%03o", s[i]);
        else
            fputc(s[i], stderr);
    }
    fputs("\"\n", stderr);
}

static void check_same(const char *way, const uint8_t *data, size_t size,
                       int theirs_rv, const calls *theirs, int ours_rv,
                       const calls *ours)
{
    if (theirs_rv == ours_rv && theirs->len == ours->len &&
        (ours->len == 0 || memcmp(theirs->data, ours->data, ours->len) == 0))
        return;
    fprintf(stderr, "MISMATCH via %s: inih returned %d, ph_ini %d; calls %s\n"
                    "input (%zu bytes): ",
            way, theirs_rv, ours_rv,
            theirs->len == ours->len &&
                    (ours->len == 0 ||
                     memcmp(theirs->data, ours->data, ours->len) == 0)
                ? "same"
                : "differ",
            size);
    print_escaped(data, size);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static calls theirs, ours;
    char *copy;
    int rt, ro;
    size_t cap;

    copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    theirs.len = ours.len = 0;
    rt = ini_parse_string(copy, record, &theirs);
    ro = ph_ini_parse_string(copy, record, &ours);
    free(copy);
    check_same("string", data, size, rt, &theirs, ro, &ours);

    for (cap = 0; cap <= 37; cap += 37) {
        byte_stream a = {data, size, cap}, b = {data, size, cap};

        theirs.len = ours.len = 0;
        rt = ini_parse_stream(byte_reader, &a, record, &theirs);
        ro = ph_ini_parse_stream(byte_reader, &b, record, &ours);
        check_same(cap ? "stream, 37-byte reads" : "stream", data, size, rt,
                   &theirs, ro, &ours);
    }
    return 0;
}
