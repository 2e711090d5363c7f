/* libFuzzer target for [route.NAME] sections and their access lists: any
 * text is loaded as a config file (through config/ini.c) with a resolver
 * that knows some names and refuses others. Whatever comes in, a load that
 * succeeds must hold only valid sections: names that are routes or
 * "prefix.*", lists of well-formed SIDs, a known integrity level, timeouts
 * in range. Crashes, leaks and sanitizer reports fail it too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frame.h"

static void ignore(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

/* Names with a backslash resolve (to a SID derived from their length);
 * "bad\..." resolves to garbage, which the loader must refuse; anything
 * else is unknown. */
static int resolve(void *ctx, const char *name, char *sid, size_t cap,
                   char *why, size_t why_cap)
{
    (void)ctx;
    if (strncmp(name, "bad\\", 4) == 0) {
        snprintf(sid, cap, "S-1-x");
        return 0;
    }
    if (strchr(name, '\\') != NULL) {
        snprintf(sid, cap, "S-1-5-21-%u", (unsigned)strlen(name));
        return 0;
    }
    snprintf(why, why_cap, "unknown account '%s'", name);
    return -1;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_rules: %s\n", what);
    abort();
}

static void check_list(const char *list)
{
    const char *p = list;

    if (*p == '\0')
        return;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p), i;
        if (n < 5 || strncmp(p, "S-1-", 4) != 0)
            fail("a list entry is not a SID");
        for (i = 4; i < n; i++)
            if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
                fail("a SID with a bad character");
        if (end == NULL)
            return;
        p = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    ph_options o;
    uint32_t i;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    ph_config_set_resolver(resolve, NULL);
    if (ph_config_load_string("fuzz.ini", text, &o, ignore, NULL) == PH_OK) {
        if (o.nroutes > PH_ROUTE_SECTIONS_MAX)
            fail("too many sections");
        for (i = 0; i < o.nroutes; i++) {
            const ph_route_section *r = &o.routes[i];
            size_t n = strlen(r->name);
            int prefix = n >= 2 && r->name[n - 1] == '*';
            if (n == 0 || !ph_route_valid(r->name, prefix ? n - 2 : n) ||
                (prefix && r->name[n - 2] != '.'))
                fail("a section name that is not a route or a prefix");
            check_list(r->call);
            check_list(r->provide);
            check_list(r->publish);
            check_list(r->subscribe);
            if (r->min_integrity != 0 && r->min_integrity != 0x1000 &&
                r->min_integrity != 0x2000 && r->min_integrity != 0x3000 &&
                r->min_integrity != 0x4000)
                fail("an unknown integrity level");
            if (r->request_timeout_ms != 0 &&
                (r->request_timeout_ms < 100 || r->request_timeout_ms > 3600000))
                fail("a timeout out of range");
        }
    }
    free(text);
    return 0;
}
