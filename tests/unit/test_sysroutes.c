/* The built-in route table (common/sysroutes.c) and the sys.stats counter
 * list (common/stats.h) against docs/PROTOCOL.md: a route or counter added
 * to one and not the other fails here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "stats.h"
#include "sysroutes.h"

static char *doc;

static char *read_doc(void)
{
    FILE *f = fopen(PH_SOURCE_DIR "/docs/PROTOCOL.md", "rb");
    char *s;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    if (s != NULL && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s != NULL)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* The "## Built-in routes" section, up to the next "## " heading. */
static const char *section(size_t *len)
{
    const char *a = strstr(doc, "\n## Built-in routes\n"), *b;

    if (a == NULL)
        return NULL;
    b = strstr(a + 1, "\n## ");
    *len = b ? (size_t)(b - a) : strlen(a);
    return a;
}

/* Its table's rows: "| `sys.x` | router | anyone | ...". Calls fn for each
 * with the route and the next two cells. */
static int rows(void (*fn)(const char *route, const char *by,
                           const char *who))
{
    size_t len, n = 0;
    const char *s = section(&len), *end, *p;

    if (s == NULL)
        return -1;
    end = s + len;
    for (p = s; p < end && (p = strstr(p, "\n| `sys.")) != NULL && p < end;
         p++) {
        char route[64], by[16], who[16];
        if (sscanf(p, "\n| `%63[^`]` | %15[a-z] | %15[a-z] |", route, by,
                   who) != 3) {
            PH_FAIL_HERE("a row the test cannot read: %.60s", p + 1);
            continue;
        }
        fn(route, by, who);
        n++;
    }
    return (int)n;
}

static void row_matches_table(const char *route, const char *by,
                              const char *who)
{
    const ph_sys_route *r = ph_sys_route_find(route, strlen(route));

    if (r == NULL) {
        PH_FAIL_HERE("PROTOCOL.md lists %s, the route table does not", route);
        return;
    }
    CHECK_STR(by, r->local != NULL ? "router" : "hub");
    CHECK_STR(who, (r->flags & PH_SYS_ADMIN) ? "admin" : "anyone");
    CHECK((r->local != NULL) != (r->hub != NULL));
}

static void test_doc_rows_are_in_table(void)
{
    const ph_sys_route *r;
    int n = 0;

    CHECK(doc != NULL);
    if (doc == NULL)
        return;
    for (r = ph_sys_routes; r->name != NULL; r++)
        n++;
    CHECK_EQ(rows(row_matches_table), n);
}

static void test_table_rows_are_in_doc(void)
{
    const ph_sys_route *r;
    char want[80];
    size_t len;
    const char *s;

    if (doc == NULL)
        return;
    s = section(&len);
    CHECK(s != NULL);
    for (r = ph_sys_routes; s != NULL && r->name != NULL; r++) {
        const char *hit;
        snprintf(want, sizeof want, "\n| `%s` |", r->name);
        hit = strstr(s, want);
        if (hit == NULL || hit >= s + len)
            PH_FAIL_HERE("%s is in the route table, not in PROTOCOL.md's "
                         "\"Built-in routes\"", r->name);
        CHECK_EQ(r->len, strlen(r->name));
    }
}

static void test_find(void)
{
    CHECK(ph_sys_route_find("sys.ping", 8) != NULL);
    CHECK(ph_sys_route_find("sys.pin", 7) == NULL);
    CHECK(ph_sys_route_find("sys.pingx", 9) == NULL);
    CHECK(ph_sys_route_find("sys.", 4) == NULL);
    CHECK(ph_sys_route_find("billing.get", 11) == NULL);
    CHECK(ph_sys_route_find("sys.monitor", 11)->flags & PH_SYS_ADMIN);
}

static void test_counters_in_doc(void)
{
    char want[80];

    if (doc == NULL)
        return;
#define COUNTER(name, owner)                                              \
    snprintf(want, sizeof want, "`%s`", #name);                           \
    if (strstr(doc, want) == NULL)                                        \
        PH_FAIL_HERE("sys.stats counter %s is not in PROTOCOL.md", #name);
    PH_STATS(COUNTER)
#undef COUNTER
}

int main(void)
{
    doc = read_doc();
    PH_RUN(test_doc_rows_are_in_table);
    PH_RUN(test_table_rows_are_in_doc);
    PH_RUN(test_find);
    PH_RUN(test_counters_in_doc);
    free(doc);
    return ph_test_summary();
}
