/* Differential test: config/ini.c against the installed libinih (Debian's
 * libinih-dev 55). Native only; link with -linih.
 *
 * Every input goes through both parsers four ways -- the string API, the
 * stream API with an fgets-like reader over the raw bytes (NULs included),
 * the same with a reader that returns at most 37 bytes a call, and the FILE
 * API over fmemopen -- and each pair must make the same handler calls in
 * the same order and return the same value. The inputs are a fixed table of
 * tricky cases, lines of every length around the 199-byte reader split,
 * and 20000 inputs from a small grammar with a fixed seed, so a failure
 * reproduces. The handler fails (returns 0) for any value containing '!',
 * so the generator reaches the "handler said no" paths too.
 *
 * The first difference is printed with the input as an escaped C string. */
#define _POSIX_C_SOURCE 200809L /* fmemopen, mkstemp, close */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* inih's ini.h, by its full path, then ours (config/ini.h). */
#include "inih.h"

#include "harness.h"
#include "ini.h"
#include "ini_util.h"

#define RANDOM_INPUTS 20000
#define RANDOM_SEED 0x1d1ffe7e57ULL

/* ---- printing ----------------------------------------------------------- */

/* The recorded calls, one a line, their strings escaped. */
static void print_calls(FILE *out, const calls *c)
{
    size_t pos = 0;
    int k;

    for (k = 0; pos < c->log.len; k++) {
        int field;

        fprintf(out, "    %d:", k);
        for (field = 0; field < 3; field++) {
            uint32_t n;

            memcpy(&n, c->log.data + pos, sizeof n);
            pos += sizeof n;
            fputc(' ', out);
            if (n == UINT32_MAX) {
                fputs("NULL", out);
                continue;
            }
            print_escaped(out, c->log.data + pos, n);
            pos += n;
        }
        fputc('\n', out);
    }
}

/* ---- the ways in ------------------------------------------------------- */

enum { WAY_STRING, WAY_STREAM, WAY_SHORT_READS, WAY_FILE, WAY_COUNT };

static const char *const way_names[WAY_COUNT] = {
    "ini_parse_string", "ini_parse_stream", "ini_parse_stream (37-byte reads)",
    "ini_parse_file (fmemopen)"};

/* Parse input one way with inih (theirs = 1) or ours, into c. */
static int parse_one(int way, int theirs, const unsigned char *input,
                     size_t len, calls *c)
{
    calls_reset(c);
    switch (way) {
    case WAY_STRING: {
        char *copy = malloc(len + 1);
        int rv;

        if (copy == NULL)
            exit(2);
        memcpy(copy, input, len);
        copy[len] = '\0';
        rv = theirs ? ini_parse_string(copy, calls_record, c)
                    : ph_ini_parse_string(copy, calls_record, c);
        free(copy);
        return rv;
    }
    case WAY_STREAM:
    case WAY_SHORT_READS: {
        byte_stream s = byte_stream_of(input, len,
                                       way == WAY_SHORT_READS ? 37 : 0);

        return theirs ? ini_parse_stream(byte_reader, &s, calls_record, c)
                      : ph_ini_parse_stream(byte_reader, &s, calls_record, c);
    }
    default: {
        /* fmemopen refuses a zero-size buffer on some libcs. */
        static const unsigned char nothing[1];
        FILE *f = fmemopen((void *)(len ? input : nothing), len ? len : 1, "r");
        int rv;

        if (f == NULL) {
            perror("fmemopen");
            exit(2);
        }
        if (len == 0)
            (void)fgetc(f); /* consume the stand-in byte */
        rv = theirs ? ini_parse_file(f, calls_record, c)
                    : ph_ini_parse_file(f, calls_record, c);
        fclose(f);
        return rv;
    }
    }
}

static calls theirs_calls, ours_calls;
static long inputs_checked, mismatches;

/* All four ways for one input; prints the first few differences. */
static int same_both_ways(const char *label, long number,
                          const unsigned char *input, size_t len)
{
    int way, ok = 1;

    inputs_checked++;
    for (way = 0; way < WAY_COUNT; way++) {
        int rt = parse_one(way, 1, input, len, &theirs_calls);
        int ro = parse_one(way, 0, input, len, &ours_calls);

        if (rt == ro && calls_equal(&theirs_calls, &ours_calls))
            continue;
        ok = 0;
        if (++mismatches > 3)
            continue;
        fprintf(stderr, "MISMATCH (%s %ld) via %s\n  input (%zu bytes): ",
                label, number, way_names[way], len);
        print_escaped(stderr, input, len);
        fprintf(stderr, "\n  inih returned %d after %d calls:\n", rt,
                theirs_calls.count);
        print_calls(stderr, &theirs_calls);
        fprintf(stderr, "  ph_ini returned %d after %d calls:\n", ro,
                ours_calls.count);
        print_calls(stderr, &ours_calls);
    }
    return ok;
}

#define SAME(lit)                                                             \
    same_both_ways("fixed case at line", __LINE__,                            \
                   (const unsigned char *)(lit), sizeof(lit) - 1)

/* ---- fixed cases ------------------------------------------------------- */

static void test_fixed_cases(void)
{
    /* sizeof, not strlen, keeps the embedded NULs. */
    int ok = 1;

    ok &= SAME("");
    ok &= SAME("\n");
    ok &= SAME("a=1");
    ok &= SAME("a=1\n[s]\nb = 2\n[t]\nc : 3\n");
    ok &= SAME("a:b=c\nd=e:f\n");
    ok &= SAME("  name  =  value  \n");
    ok &= SAME("a=\nb =\nc = \n=\n = x\n:\n");
    ok &= SAME("; c\n# c\n  ; c\n\t# c\n");
    ok &= SAME("a=b ;c\na=b;c\na= ;c\na=;c\na=b #c\na=b\t;c\n");
    ok &= SAME("[a ;b]\n[a;b]\n[ a ]\n[]\n[s] junk ; x\n[[x]]\n");
    ok &= SAME("a ;b=c\na;b=c\n");
    ok &= SAME("[unclosed\nx=1\n  more\n");
    ok &= SAME("a=1\n[oops\n  more\n[a ;b]\n  again\n");
    ok &= SAME("noequals\na=1\n  cont\nbad\n  cont2\n");
    ok &= SAME("a=1\n  b\n  c ; d\n\n  e\n; c\n  f\n[s]\n  g=1\n  h\n");
    ok &= SAME("  x=1\n  y\n");
    ok &= SAME("a=1\n  [x]\n  ;c\n  #c\n");
    ok &= SAME("=v\n  w\n");
    ok &= SAME("a=1\n  x!\nb=2!\nc=3\n");
    ok &= SAME("\xef\xbb\xbf" "a=1\n\xef\xbb\xbf" "b=2\n");
    ok &= SAME("\xef\xbb\xbf" "  a=1\n  b\n");
    ok &= SAME("\xef\xbb\xbf" "[s]\na=1\n");
    ok &= SAME("\xef\xbb\n");
    ok &= SAME("\xef\xbb");
    ok &= SAME("\xef");
    ok &= SAME("\xef\xbb\xbf");
    ok &= SAME("a = 1\r\n[s]\r\nb=2\r\n  c\r\n");
    ok &= SAME("a=1\rb=2\nc=1\r;x\n\r\n");
    ok &= SAME("a=1\0b=2\nc=3\n");
    ok &= SAME("a=1\n  \0x\nb=\0\n[s\0]\n");
    ok &= SAME("\0");
    ok &= SAME("a=1\v;x\nb=1\f;y\n");
    ok &= SAME("[aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeefffff]\nk=v\n");
    ok &= SAME("aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeefffff=1\n  two\n");
    ok &= SAME("\x80\xff=\xfe\n[\xa0]\n\xa0x=1\n");
    CHECK(ok);
}

/* Lines of every length around the reader's 199-byte pieces, with each
 * interesting byte placed right at the split. */
static void test_long_lines(void)
{
    static const char tails[] = " \t;=:[]#!x";
    unsigned char buf[1024];
    int ok = 1;
    size_t len, t;

    for (len = 150; len <= 420; len++) {
        for (t = 0; t < sizeof tails - 1; t++) {
            size_t n = 0, i;

            /* "k=vvv...", with the tail byte at position len - 1. */
            buf[n++] = 'k';
            buf[n++] = '=';
            for (i = 2; i + 1 < len; i++)
                buf[n++] = (unsigned char)('a' + i % 26);
            buf[n++] = (unsigned char)tails[t];
            memcpy(buf + n, "rest\n  cont\nz\n", 14);
            n += 14;
            ok &= same_both_ways("long pair, length", (long)len, buf, n);

            /* An indented continuation that is itself long. */
            n = 0;
            memcpy(buf, "k=1\n", 4);
            n = 4;
            for (i = 0; i + 1 < len; i++)
                buf[n++] = (unsigned char)(i % 40 == 0 ? ' ' : 'c');
            buf[n++] = (unsigned char)tails[t];
            buf[n++] = '\n';
            ok &= same_both_ways("long continuation, length", (long)len, buf, n);

            /* A long section header and a long comment. */
            n = 0;
            buf[n++] = (unsigned char)(t % 2 ? '[' : ';');
            for (i = 1; i + 1 < len; i++)
                buf[n++] = (unsigned char)(i % 7 == 0 ? ' ' : 's');
            buf[n++] = (unsigned char)tails[t];
            memcpy(buf + n, "]\nk=v\n", 6);
            n += 6;
            ok &= same_both_ways("long header, length", (long)len, buf, n);
        }
    }
    CHECK(ok);
}

/* ph_ini_parse and ini_parse on a real file, and on one that is missing. */
static void test_named_file(void)
{
    static const char text[] =
        "\xef\xbb\xbf; pipehub\r\n[server]\r\npipe = \\\\.\\pipe\\x ; c\r\n"
        "  more\r\nbad line\r\n[log\r\nlevel=info!\r\n";
    char path[] = "/tmp/ph_ini_diff_XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    int rt, ro;

    CHECK(fd >= 0);
    f = fdopen(fd, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fclose(f);

    calls_reset(&theirs_calls);
    calls_reset(&ours_calls);
    rt = ini_parse(path, calls_record, &theirs_calls);
    ro = ph_ini_parse(path, calls_record, &ours_calls);
    remove(path);
    CHECK_EQ(ro, rt);
    CHECK_EQ(ours_calls.count, theirs_calls.count);
    CHECK(calls_equal(&ours_calls, &theirs_calls));

    CHECK_EQ(ph_ini_parse(path, calls_record, &ours_calls), -1);
    CHECK_EQ(ini_parse(path, calls_record, &theirs_calls), -1);
}

/* ---- random inputs ----------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) /* 0 .. n-1 */
{
    /* xorshift64*: fast, and the same sequence on every platform. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

typedef struct text {
    unsigned char b[2048];
    size_t n;
} text;

static void add(text *t, const char *s)
{
    size_t n = strlen(s);

    if (n > sizeof t->b - t->n)
        n = sizeof t->b - t->n;
    memcpy(t->b + t->n, s, n);
    t->n += n;
}

static void add_byte(text *t, unsigned char ch)
{
    if (t->n < sizeof t->b)
        t->b[t->n++] = ch;
}

static void add_ws(text *t, int max)
{
    static const char *const ws[] = {" ", "\t", " ", "  ", "\r", "\v", "\f"};
    int i, n = (int)rnd((uint32_t)max + 1);

    for (i = 0; i < n; i++)
        add(t, ws[rnd(i == 0 ? 2 : 7)]);
}

/* A word: short mostly, sometimes around the 49-byte name limit. */
static void add_word(text *t)
{
    static const char alpha[] = "abcxyz_019.-ABC";
    int i, n = rnd(10) == 0 ? 44 + (int)rnd(12) : 1 + (int)rnd(6);

    for (i = 0; i < n; i++)
        add_byte(t, (unsigned char)alpha[rnd(sizeof alpha - 1)]);
}

/* Value text: words and the bytes that matter to the rules. */
static void add_value(text *t)
{
    static const char *const bits[] = {
        " ", "\t", ";", " ;", " ; c", "#", "=", ":", "!", "[", "]", "\r",
        "\xef\xbb\xbf", "\xa0", "\xff", "a b", "\"q\""};
    int i, n = (int)rnd(5);

    for (i = 0; i < n; i++) {
        if (rnd(2))
            add_word(t);
        else
            add(t, bits[rnd(sizeof bits / sizeof bits[0])]);
    }
}

static void add_garbage(text *t)
{
    static const unsigned char alphabet[] = {
        ' ', '\t', '\r', '\v', '\f', ';', '#', '=', ':', '[', ']', '!', '\n',
        0xEF, 0xBB, 0xBF, 0x00, 0x80, 0xA0, 0xFF, 'a', 'b', 'k', '1'};
    int i, n = 1 + (int)rnd(20);

    for (i = 0; i < n; i++)
        add_byte(t, alphabet[rnd(sizeof alphabet)]);
}

/* A line past 199 bytes, so the reader returns it in pieces. */
static void add_long(text *t)
{
    int i, n = 150 + (int)rnd(300);

    if (rnd(2)) {
        add_word(t);
        add(t, rnd(2) ? "=" : ":");
    } else {
        add_ws(t, 2);
    }
    for (i = 0; i < n; i++) {
        uint32_t r = rnd(16);

        add_byte(t, (unsigned char)(r == 0 ? ' ' : r == 1 ? ';' : r == 2 ? '='
                                   : r == 3 ? '\t' : 'a' + (int)r));
    }
}

static void make_input(text *t)
{
    int line, lines = 1 + (int)rnd(12);

    t->n = 0;
    if (rnd(7) == 0)
        add(t, "\xef\xbb\xbf");
    for (line = 0; line < lines; line++) {
        switch (rnd(12)) {
        case 0: /* [section], sometimes odd */
            add_ws(t, 1);
            add(t, "[");
            add_ws(t, 1);
            add_word(t);
            if (rnd(4) == 0)
                add_value(t);
            add_ws(t, 1);
            if (rnd(6) != 0)
                add(t, "]");
            if (rnd(4) == 0)
                add_value(t);
            break;
        case 1:
        case 2:
        case 3: /* name = value */
            add_ws(t, 1);
            if (rnd(12) != 0)
                add_word(t);
            add_ws(t, 2);
            add(t, rnd(3) ? "=" : ":");
            add_ws(t, 2);
            add_value(t);
            add_ws(t, 1);
            break;
        case 4:
        case 5: /* continuation, or an indented anything */
            add(t, rnd(2) ? " " : "\t");
            add_ws(t, 2);
            add_value(t);
            break;
        case 6: /* comment */
            add_ws(t, 1);
            add(t, rnd(2) ? ";" : "#");
            add_value(t);
            break;
        case 7: /* blank or white */
            add_ws(t, 3);
            break;
        case 8: /* name only */
            add_word(t);
            add_value(t);
            break;
        case 9:
            add_long(t);
            break;
        default:
            add_garbage(t);
            break;
        }
        switch (rnd(20)) {
        case 0: break; /* glued to the next line */
        case 1: add(t, "\r"); break;
        case 2: case 3: case 4: case 5: add(t, "\r\n"); break;
        default: add(t, "\n"); break;
        }
    }
}

static void test_random_inputs(void)
{
    static text t;
    int i, ok = 1;

    rng_state = RANDOM_SEED;
    for (i = 0; i < RANDOM_INPUTS; i++) {
        make_input(&t);
        ok &= same_both_ways("random input", i, t.b, t.n);
    }
    CHECK(ok);
}

int main(void)
{
    PH_RUN(test_fixed_cases);
    PH_RUN(test_long_lines);
    PH_RUN(test_named_file);
    PH_RUN(test_random_inputs);
    printf("%ld inputs, each 4 ways through both parsers, %ld mismatches\n",
           inputs_checked, mismatches);
    bytes_free(&theirs_calls.log);
    bytes_free(&ours_calls.log);
    return ph_test_summary();
}
