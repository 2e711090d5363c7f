/* Just enough JSON reading for pipehub.exe: walk an array's elements and
 * read one member of an object (the hub's replies are flat). Strict about
 * structure, so a reply that is not what we think is reported, not
 * misread. Also the display of the numbers those replies carry (times in
 * Unix ms, durations, byte counts), which clients and doctor share. */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wintime.h"

/* Objects and arrays nest at most this deep; deeper input is refused. */
#define DEPTH_MAX 32

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                     s[i] == '\n'))
        i++;
    return i;
}

static int hex4(const char *s, size_t n, size_t i, unsigned *out)
{
    unsigned v = 0, k;

    if (i + 4 > n)
        return 0;
    for (k = 0; k < 4; k++) {
        char c = s[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Append byte b to out (cap bytes, one kept for the NUL) at *len. */
static void put(char *out, size_t cap, size_t *len, char b)
{
    if (out != NULL && *len + 1 < cap)
        out[*len] = b;
    (*len)++;
}

/* The string starting at s[i] == '"': decoded into out (may be NULL) and
 * NUL-terminated there. Returns the index after the closing quote, or 0
 * when malformed. */
static size_t string_at(const char *s, size_t n, size_t i, char *out,
                        size_t cap)
{
    size_t len = 0;
    unsigned u, lo;

    if (i >= n || s[i] != '"')
        return 0;
    for (i++; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            if (out != NULL && cap > 0)
                out[len + 1 < cap ? len : cap - 1] = '\0';
            return i + 1;
        }
        if ((unsigned char)c < 0x20)
            return 0;
        if (c != '\\') {
            put(out, cap, &len, c);
            continue;
        }
        if (++i >= n)
            return 0;
        switch (s[i]) {
        case '"': case '\\': case '/':
            put(out, cap, &len, s[i]);
            break;
        case 'b': put(out, cap, &len, '\b'); break;
        case 'f': put(out, cap, &len, '\f'); break;
        case 'n': put(out, cap, &len, '\n'); break;
        case 'r': put(out, cap, &len, '\r'); break;
        case 't': put(out, cap, &len, '\t'); break;
        case 'u':
            if (!hex4(s, n, i + 1, &u))
                return 0;
            i += 4;
            /* A surrogate pair makes one code point. */
            if (u >= 0xD800 && u < 0xDC00 && i + 2 < n && s[i + 1] == '\\' &&
                s[i + 2] == 'u' && hex4(s, n, i + 3, &lo) && lo >= 0xDC00 &&
                lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (u < 0x80) {
                put(out, cap, &len, (char)u);
            } else if (u < 0x800) {
                put(out, cap, &len, (char)(0xC0 | u >> 6));
                put(out, cap, &len, (char)(0x80 | (u & 0x3F)));
            } else if (u < 0x10000) {
                put(out, cap, &len, (char)(0xE0 | u >> 12));
                put(out, cap, &len, (char)(0x80 | (u >> 6 & 0x3F)));
                put(out, cap, &len, (char)(0x80 | (u & 0x3F)));
            } else {
                put(out, cap, &len, (char)(0xF0 | u >> 18));
                put(out, cap, &len, (char)(0x80 | (u >> 12 & 0x3F)));
                put(out, cap, &len, (char)(0x80 | (u >> 6 & 0x3F)));
                put(out, cap, &len, (char)(0x80 | (u & 0x3F)));
            }
            break;
        default:
            return 0;
        }
    }
    return 0;
}

/* The value starting at s[i]: the index after it, or 0 when malformed. */
static size_t skip_value(const char *s, size_t n, size_t i, int depth)
{
    char close;

    i = skip_ws(s, n, i);
    if (i >= n || depth > DEPTH_MAX)
        return 0;
    if (s[i] == '"')
        return string_at(s, n, i, NULL, 0);
    if (s[i] == '{' || s[i] == '[') {
        close = s[i] == '{' ? '}' : ']';
        i = skip_ws(s, n, i + 1);
        if (i < n && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if ((i = string_at(s, n, skip_ws(s, n, i), NULL, 0)) == 0)
                    return 0;
                i = skip_ws(s, n, i);
                if (i >= n || s[i] != ':')
                    return 0;
                i++;
            }
            if ((i = skip_value(s, n, i, depth + 1)) == 0)
                return 0;
            i = skip_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i++;
                continue;
            }
            return i < n && s[i] == close ? i + 1 : 0;
        }
    }
    /* A number, true, false or null: the run of their characters. */
    {
        size_t start = i;
        while (i < n && (strchr("+-.0123456789eEtrufalsn", s[i]) != NULL))
            i++;
        return i > start ? i : 0;
    }
}

int ph_cli_json_next(const char *s, size_t n, size_t *pos, size_t *start,
                     size_t *len)
{
    size_t i = *pos, end;

    if (i == 0) {
        i = skip_ws(s, n, 0);
        if (i >= n || s[i] != '[')
            return -1;
        i = skip_ws(s, n, i + 1);
        if (i < n && s[i] == ']') {
            *pos = n;
            return 0;
        }
    } else {
        i = skip_ws(s, n, i);
        if (i >= n)
            return 0;
        if (s[i] == ']') {
            *pos = n;
            return 0;
        }
        if (s[i] != ',')
            return -1;
        i = skip_ws(s, n, i + 1);
    }
    if ((end = skip_value(s, n, i, 1)) == 0)
        return -1;
    *start = i;
    *len = end - i;
    *pos = end;
    return 1;
}

int ph_cli_json_get(const char *s, size_t n, const char *key, char *out,
                    size_t cap)
{
    char name[128];
    size_t i = skip_ws(s, n, 0), end, k;

    if (i >= n || s[i] != '{')
        return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}')
        return 0;
    for (;;) {
        if ((i = string_at(s, n, skip_ws(s, n, i), name, sizeof name)) == 0)
            return -1;
        i = skip_ws(s, n, i);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_ws(s, n, i + 1);
        if ((end = skip_value(s, n, i, 1)) == 0)
            return -1;
        if (strcmp(name, key) == 0) {
            if (s[i] == '"') {
                string_at(s, n, i, out, cap);
            } else {
                k = end - i < cap ? end - i : cap - 1;
                memcpy(out, s + i, k);
                out[k] = '\0';
            }
            return 1;
        }
        i = skip_ws(s, n, end);
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        return i < n && s[i] == '}' ? 0 : -1;
    }
}

/* ---- numbers from the replies, for display ---- */

void ph_cli_local_time(uint64_t ms, char *out, size_t cap)
{
    FILETIME ft;
    SYSTEMTIME utc, lt, now_utc, now;

    ph_win_unix_ms_to_filetime(ms, &ft);
    GetSystemTime(&now_utc);
    if (!FileTimeToSystemTime(&ft, &utc) ||
        !SystemTimeToTzSpecificLocalTime(NULL, &utc, &lt) ||
        !SystemTimeToTzSpecificLocalTime(NULL, &now_utc, &now)) {
        snprintf(out, cap, "?");
        return;
    }
    if (lt.wYear == now.wYear && lt.wMonth == now.wMonth &&
        lt.wDay == now.wDay)
        snprintf(out, cap, "%02u:%02u:%02u", lt.wHour, lt.wMinute,
                 lt.wSecond);
    else
        snprintf(out, cap, "%04u-%02u-%02u %02u:%02u", lt.wYear, lt.wMonth,
                 lt.wDay, lt.wHour, lt.wMinute);
}

void ph_cli_age(uint64_t ms, char *out, size_t cap)
{
    uint64_t s = ms / 1000u;

    if (s < 60)
        snprintf(out, cap, "%us", (unsigned)s);
    else if (s < 3600)
        snprintf(out, cap, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
    else if (s < 86400)
        snprintf(out, cap, "%uh%02um", (unsigned)(s / 3600),
                 (unsigned)(s % 3600 / 60));
    else
        snprintf(out, cap, "%ud%02uh", (unsigned)(s / 86400),
                 (unsigned)(s % 86400 / 3600));
}

void ph_cli_bytes_short(uint64_t n, char *out, size_t cap)
{
    static const char units[] = "KMGTP";
    double v = (double)n;
    int u = -1;

    if (n < 10000) {
        snprintf(out, cap, "%llu", (unsigned long long)n);
        return;
    }
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (v < 100.0)
        snprintf(out, cap, "%.1f%c", v, units[u]);
    else
        snprintf(out, cap, "%.0f%c", v, units[u]);
}

uint64_t ph_cli_to_u64(const char *s)
{
    return strtoull(s, NULL, 10);
}
