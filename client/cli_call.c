/* pipehub call, ping, stats and routes: one request, its answer printed. */
#include <windows.h>

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PING_DEFAULT 4u
#define PING_MAX 100000u
#define CELL_MAX 64u

/* Call route once on a fresh connection. On EXIT_OK *r holds a REPLY (the
 * caller frees it); an ERROR answer or a failure is reported here. */
static int call_once(const cli *o, const char *route, const void *payload,
                     size_t len, ph_reply *r)
{
    ph_client *c;
    ph_err err;
    int rc;

    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    err = ph_client_call(c, route, payload, len, o->timeout_ms, r);
    ph_client_close(c);
    if (err != PH_OK)
        return ph_cli_report_failure(o, route, err);
    if (r->kind == PH_ERROR) {
        rc = ph_cli_report_error_reply(r);
        ph_reply_free(r);
        return rc;
    }
    return EXIT_OK;
}

/* Call route and print the reply's payload as it is (stdout in binary
 * mode, so "call ROUTE > FILE" keeps the bytes), with a newline after it
 * unless it ends in one. */
static int call_and_print(const cli *o, const char *route, const void *payload,
                          size_t len)
{
    ph_reply r;
    int rc;

    if ((rc = call_once(o, route, payload, len, &r)) != EXIT_OK)
        return rc;
    fflush(stdout);
    _setmode(_fileno(stdout), _O_BINARY);
    fwrite(r.payload, 1, r.payload_len, stdout);
    if (r.payload_len == 0 || r.payload[r.payload_len - 1] != '\n')
        putchar('\n');
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
    ph_reply_free(&r);
    return rc;
}

int ph_cli_call(const cli *o, int argc, char **argv)
{
    ph_cli_payload p;
    const char *route;
    size_t len;
    int rc;

    cli lo;

    /* pipehub call --no-lane ROUTE ...: as the global option. */
    if (argc >= 1 && strcmp(argv[0], "--no-lane") == 0) {
        lo = *o;
        lo.no_lane = 1;
        o = &lo;
        argc--;
        argv++;
    }
    if (argc < 1 || argc > 2)
        return ph_cli_usage_error("%s", "call needs ROUTE and at most one "
                                        "PAYLOAD");
    route = argv[0];
    /* Checked here so a typo is a usage error, not a trip to the server. */
    len = strlen(route);
    if (len == 0 || len > PH_ROUTE_MAX || !ph_route_valid(route, len))
        return ph_cli_usage_error("'%s' is not a route (1-255 letters, digits "
                                  "and ._-/)", route);
    if ((rc = ph_cli_payload_read(argc == 2 ? argv[1] : "", &p)) != EXIT_OK)
        return rc;
    rc = call_and_print(o, route, p.data, p.len);
    ph_cli_payload_free(&p);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Ticks of the performance counter -> microseconds, without the overflow of
 * ticks * 1000000 for long intervals. */
static uint64_t ticks_to_us(uint64_t ticks, uint64_t freq)
{
    return ticks / freq * 1000000u + ticks % freq * 1000000u / freq;
}

int ph_cli_ping(const cli *o, int argc, char **argv)
{
    uint32_t count = PING_DEFAULT, i;
    LARGE_INTEGER freq, t0, t1;
    uint64_t *us = NULL, median;
    ph_client *c = NULL;
    int rc;

    if (argc == 2 && strcmp(argv[0], "-n") == 0) {
        if (!ph_cli_parse_u32(argv[1], 1, PING_MAX, &count))
            return ph_cli_usage_error("-n wants a count from 1 to 100000, "
                                      "not '%s'", argv[1]);
    } else if (argc != 0) {
        return ph_cli_usage_error("%s", "ping takes only -n N");
    }
    QueryPerformanceFrequency(&freq);

    us = malloc(count * sizeof *us);
    if (us == NULL) {
        fputs("pipehub: out of memory\n", stderr);
        return EXIT_NO_ANSWER;
    }
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        goto done;
    for (i = 0; i < count; i++) {
        QueryPerformanceCounter(&t0);
        rc = ph_cli_call_expect_reply(o, c, "sys.ping", NULL, 0);
        QueryPerformanceCounter(&t1);
        if (rc != EXIT_OK)
            goto done;
        us[i] = ticks_to_us((uint64_t)(t1.QuadPart - t0.QuadPart),
                            (uint64_t)freq.QuadPart);
        printf("sys.ping %u: %llu us\n", (unsigned)i + 1,
               (unsigned long long)us[i]);
        /* Each line as it happens, also when stdout is a pipe. */
        fflush(stdout);
    }
    qsort(us, count, sizeof *us, cmp_u64);
    median = count % 2 ? us[count / 2]
                       : (us[count / 2 - 1] + us[count / 2]) / 2;
    printf("%u pings: min %llu us, median %llu us, max %llu us\n",
           (unsigned)count, (unsigned long long)us[0],
           (unsigned long long)median, (unsigned long long)us[count - 1]);
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;

done:
    ph_client_close(c);
    free(us);
    return rc;
}

int ph_cli_describe(const cli *o, int argc, char **argv)
{
    if (argc != 1)
        return ph_cli_usage_error("%s", "describe needs a ROUTE");
    return call_and_print(o, "sys.describe", argv[0], strlen(argv[0]));
}

int ph_cli_stats(const cli *o, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return ph_cli_usage_error("%s", "stats takes no arguments");
    return call_and_print(o, "sys.stats", "", 0);
}

/* ---- routes: sys.routes as a table ---- */

static const char *const route_columns[] = {
    "route", "kind", "mode", "providers", "waiting", "forwarded",
};
#define NCOLUMNS (sizeof route_columns / sizeof route_columns[0])

/* The cells of one route: each column's value, "-" when absent. */
static void route_cells(const char *obj, size_t len,
                        char cells[NCOLUMNS][CELL_MAX])
{
    size_t k;

    for (k = 0; k < NCOLUMNS; k++)
        if (ph_cli_json_get(obj, len, route_columns[k], cells[k], CELL_MAX) !=
            1)
            strcpy(cells[k], "-");
}

/* A cell padded to width, or the last one of its line. */
static void put_cell(const char *text, size_t width, int last)
{
    if (last)
        printf("%s\n", text);
    else
        printf("%-*s  ", (int)width, text);
}

/* The first line of route's description that is not a comment, or of its
 * comment when that is all there is; "-" when it has none. */
static void first_line(const cli *o, ph_client *c, const char *route)
{
    const char *p, *end, *best = NULL;
    size_t best_len = 0;
    ph_reply d;

    if (ph_client_call(c, "sys.describe", route, strlen(route), o->timeout_ms,
                       &d) != PH_OK || d.kind != PH_REPLY) {
        if (d.payload != NULL)
            ph_reply_free(&d);
        printf("-\n");
        return;
    }
    for (p = (const char *)d.payload; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\n');
        if (end == NULL)
            end = p + strlen(p);
        if (end == p)
            continue;
        if (best == NULL || (best[0] == '#' && p[0] != '#')) {
            best = p;
            best_len = (size_t)(end - p);
        }
        if (best[0] != '#')
            break;
    }
    if (best != NULL)
        ph_cli_put_escaped(stdout, (const uint8_t *)best, best_len, 120);
    else
        printf("-");
    printf("\n");
    ph_reply_free(&d);
}

int ph_cli_routes(const cli *o, int argc, char **argv)
{
    char cells[NCOLUMNS][CELL_MAX], head[CELL_MAX];
    size_t width[NCOLUMNS], pos = 0, start, len, k;
    ph_client *c = NULL;
    ph_reply r;
    int rc, more, verbose = 0;

    if (argc == 1 && strcmp(argv[0], "-v") == 0)
        verbose = 1;
    else if (argc != 0)
        return ph_cli_usage_error("%s", "routes takes no arguments but -v");
    if ((rc = call_once(o, "sys.routes", "", 0, &r)) != EXIT_OK)
        return rc;
    /* -v: each route's description's first line, from sys.describe. */
    if (verbose && ph_cli_connect(o, &c) != EXIT_OK) {
        ph_reply_free(&r);
        return EXIT_NO_ANSWER;
    }
    /* Two passes: column widths, then the rows. */
    for (k = 0; k < NCOLUMNS; k++)
        width[k] = strlen(route_columns[k]);
    while ((more = ph_cli_json_next((const char *)r.payload, r.payload_len,
                                    &pos, &start, &len)) == 1) {
        route_cells((const char *)r.payload + start, len, cells);
        for (k = 0; k < NCOLUMNS; k++)
            if (strlen(cells[k]) > width[k])
                width[k] = strlen(cells[k]);
    }
    if (more < 0) {
        fprintf(stderr, "pipehub: sys.routes answered something other than "
                "a JSON array: %.200s\n", (const char *)r.payload);
        ph_reply_free(&r);
        return EXIT_NO_ANSWER;
    }
    for (k = 0; k < NCOLUMNS; k++) {
        size_t j, n = strlen(route_columns[k]);
        for (j = 0; j < n; j++)
            head[j] = (char)(route_columns[k][j] - 'a' + 'A');
        head[n] = '\0';
        put_cell(head, width[k], k + 1 == NCOLUMNS && !verbose);
    }
    if (verbose)
        printf("DESCRIPTION\n");
    pos = 0;
    while (ph_cli_json_next((const char *)r.payload, r.payload_len, &pos,
                            &start, &len) == 1) {
        route_cells((const char *)r.payload + start, len, cells);
        for (k = 0; k < NCOLUMNS; k++)
            put_cell(cells[k], width[k], k + 1 == NCOLUMNS && !verbose);
        if (verbose)
            first_line(o, c, cells[0]);
    }
    ph_client_close(c);
    ph_reply_free(&r);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
}
