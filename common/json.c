#include "json.h"

#include <stdio.h>
#include <string.h>

static void put(ph_json *j, const char *s, size_t n)
{
    if (j->err == PH_OK)
        j->err = ph_buf_append(j->out, s, n);
}

static void put_string(ph_json *j, const char *s, size_t len)
{
    size_t i, run = 0;
    char esc[8];

    put(j, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(j, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(j, esc, 2);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(j, esc, 6);
        }
    }
    put(j, s + run, len - run);
    put(j, "\"", 1);
}

static void key(ph_json *j, const char *k)
{
    if (j->count++)
        put(j, ",", 1);
    put_string(j, k, strlen(k));
    put(j, ":", 1);
}

void ph_json_begin(ph_json *j, ph_buf *out)
{
    j->out = out;
    j->count = 0;
    j->err = PH_OK;
    put(j, "{", 1);
}

void ph_json_u64(ph_json *j, const char *k, uint64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)value);

    key(j, k);
    put(j, num, (size_t)n);
}

void ph_json_str(ph_json *j, const char *k, const char *s, size_t len)
{
    key(j, k);
    put_string(j, s, len);
}

void ph_json_bool(ph_json *j, const char *k, int value)
{
    key(j, k);
    put(j, value ? "true" : "false", value ? 4 : 5);
}

void ph_json_key(ph_json *j, const char *k)
{
    key(j, k);
}

ph_err ph_json_append_string(ph_buf *b, const char *s, size_t len)
{
    ph_json j;

    j.out = b;
    j.count = 0;
    j.err = PH_OK;
    put_string(&j, s, len);
    return j.err;
}

ph_err ph_json_end(ph_json *j)
{
    put(j, "}", 1);
    return j->err;
}
