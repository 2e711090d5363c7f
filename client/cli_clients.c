/* pipehub clients: the hub's connections (sys.clients) as a table, a row
 * per connection in id order with this command's own marked "*", or with
 * --json the reply as it is. sys.clients is for administrators and the
 * service's account: anyone else gets its FORBIDDEN (exit 1). */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wintime.h"

#define CELL_MAX 128u
#define EXE_SHOWN 28u    /* longest executable name shown in the table */
#define NAMES_SHOWN 40u  /* longest list of route / topic names shown */

enum {
    COL_ID, COL_PID, COL_ACCOUNT, COL_INTEGRITY, COL_EXE, COL_CONNECTED,
    COL_FRAMES, COL_BYTES, COL_QUEUED, COL_ROUTES, COL_SUBS, COL_FLAGS, NCOL
};

static const char *const client_heads[NCOL] = {
    "ID", "PID", "ACCOUNT", "INTEGRITY", "EXE", "CONNECTED",
    "FRAMES IN/OUT", "BYTES IN/OUT", "QUEUED", "ROUTES", "SUBSCRIPTIONS",
    "FLAGS",
};

typedef char row_cells[NCOL][CELL_MAX];

/* A row of the table and the connection id it is sorted by. */
typedef struct client_row {
    uint64_t id;
    row_cells cells;
} client_row;

static int cmp_row(const void *a, const void *b)
{
    uint64_t x = ((const client_row *)a)->id, y = ((const client_row *)b)->id;

    return x < y ? -1 : x > y;
}

/* The file name of an executable path, at most EXE_SHOWN bytes ("..." in
 * the middle when longer); "-" when empty. */
static void exe_short(const char *path, char *out, size_t cap)
{
    const char *base = path, *p;
    size_t n, keep;

    for (p = path; *p != '\0'; p++)
        if (*p == '\\' || *p == '/')
            base = p + 1;
    n = strlen(base);
    if (n == 0) {
        snprintf(out, cap, "-");
    } else if (n <= EXE_SHOWN) {
        snprintf(out, cap, "%s", base);
    } else {
        /* Keep the start and the end (".exe" and what precedes it). */
        keep = (EXE_SHOWN - 3) / 2;
        snprintf(out, cap, "%.*s...%s", (int)keep, base,
                 base + n - (EXE_SHOWN - 3 - keep));
    }
}

/* A JSON string element of a name array: its text without the quotes.
 * Route and topic names have no characters that need escapes; any escape
 * is decoded as the character after the backslash, \uXXXX as '?'. */
static void json_name(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, k = 0;

    if (n < 2 || s[0] != '"') {
        snprintf(out, cap, "%.*s", (int)n, s);
        return;
    }
    for (i = 1; i + 1 < n && k + 1 < cap; i++) {
        if (s[i] == '\\' && i + 2 < n) {
            i++;
            if (s[i] == 'u') {
                out[k++] = '?';
                i += 4;
                continue;
            }
        }
        out[k++] = s[i];
    }
    out[k] = '\0';
}

/* The cell of a name array: "0", "2 (a.b, c.*)" when the names are short,
 * else as many as fit and "+K more", or just the count. -1 when the value
 * is not an array. */
static int names_cell(const char *arr, size_t n, char *out, size_t cap)
{
    char name[256], list[CELL_MAX];
    size_t pos = 0, start, len, count = 0, shown = 0, used = 0;
    int more;

    list[0] = '\0';
    while ((more = ph_cli_json_next(arr, n, &pos, &start, &len)) == 1) {
        count++;
        json_name(arr + start, len, name, sizeof name);
        if (shown + 1 == count &&
            used + (shown ? 2 : 0) + strlen(name) <= NAMES_SHOWN) {
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                     shown ? ", " : "", name);
            shown++;
        }
    }
    if (more < 0)
        return -1;
    if (count == 0)
        snprintf(out, cap, "0");
    else if (shown == 0)
        snprintf(out, cap, "%u", (unsigned)count);
    else if (shown == count)
        snprintf(out, cap, "%u (%s)", (unsigned)count, list);
    else
        snprintf(out, cap, "%u (%s, +%u more)", (unsigned)count, list,
                 (unsigned)(count - shown));
    return 0;
}

/* One connection's cells from its JSON object. -1 when it is not one. */
static int client_cells(const char *obj, size_t len, uint64_t now_ms,
                        uint32_t self, client_row *row)
{
    char (*cells)[CELL_MAX] = row->cells;
    char v[CELL_MAX], v2[CELL_MAX], t[64], a[32], *arr;
    uint64_t since;
    size_t flen = 0;
    int rc = 0;

    if (ph_cli_json_get(obj, len, "conn_id", v, sizeof v) != 1)
        return -1;
    row->id = ph_cli_to_u64(v);
    snprintf(cells[COL_ID], CELL_MAX, "%s%s", v,
             self != 0 && ph_cli_to_u64(v) == self ? "*" : "");
    if (ph_cli_json_get(obj, len, "pid", cells[COL_PID], CELL_MAX) != 1)
        snprintf(cells[COL_PID], CELL_MAX, "-");
    if (ph_cli_json_get(obj, len, "account", cells[COL_ACCOUNT], CELL_MAX) !=
            1 ||
        cells[COL_ACCOUNT][0] == '\0') {
        /* No name: the SID is the next best thing. */
        if (ph_cli_json_get(obj, len, "sid", cells[COL_ACCOUNT], CELL_MAX) !=
                1 ||
            cells[COL_ACCOUNT][0] == '\0')
            snprintf(cells[COL_ACCOUNT], CELL_MAX, "-");
    }
    if (ph_cli_json_get(obj, len, "integrity", cells[COL_INTEGRITY],
                        CELL_MAX) != 1 ||
        cells[COL_INTEGRITY][0] == '\0')
        snprintf(cells[COL_INTEGRITY], CELL_MAX, "-");
    if (ph_cli_json_get(obj, len, "exe", v, sizeof v) == 1)
        exe_short(v, cells[COL_EXE], CELL_MAX);
    else
        snprintf(cells[COL_EXE], CELL_MAX, "-");

    if (ph_cli_json_get(obj, len, "connected_ms", v, sizeof v) == 1 &&
        (since = ph_cli_to_u64(v)) != 0) {
        ph_cli_local_time(since, t, sizeof t);
        ph_cli_age(now_ms > since ? now_ms - since : 0, a, sizeof a);
        snprintf(cells[COL_CONNECTED], CELL_MAX, "%s (%s)", t, a);
    } else {
        snprintf(cells[COL_CONNECTED], CELL_MAX, "-");
    }

    if (ph_cli_json_get(obj, len, "frames_in", v, sizeof v) != 1)
        snprintf(v, sizeof v, "-");
    if (ph_cli_json_get(obj, len, "frames_out", v2, sizeof v2) != 1)
        snprintf(v2, sizeof v2, "-");
    snprintf(cells[COL_FRAMES], CELL_MAX, "%s/%s", v, v2);
    if (ph_cli_json_get(obj, len, "bytes_in", v, sizeof v) == 1)
        ph_cli_bytes_short(ph_cli_to_u64(v), v, sizeof v);
    else
        snprintf(v, sizeof v, "-");
    if (ph_cli_json_get(obj, len, "bytes_out", v2, sizeof v2) == 1)
        ph_cli_bytes_short(ph_cli_to_u64(v2), v2, sizeof v2);
    else
        snprintf(v2, sizeof v2, "-");
    snprintf(cells[COL_BYTES], CELL_MAX, "%s/%s", v, v2);
    if (ph_cli_json_get(obj, len, "queued", v, sizeof v) == 1)
        ph_cli_bytes_short(ph_cli_to_u64(v), cells[COL_QUEUED], CELL_MAX);
    else
        snprintf(cells[COL_QUEUED], CELL_MAX, "-");

    /* The arrays may be long: read them whole (they fit in the object). */
    if ((arr = malloc(len + 1)) == NULL)
        return -1;
    if (ph_cli_json_get(obj, len, "routes", arr, len + 1) != 1)
        snprintf(cells[COL_ROUTES], CELL_MAX, "-");
    else if (names_cell(arr, strlen(arr), cells[COL_ROUTES], CELL_MAX) < 0)
        rc = -1;
    if (ph_cli_json_get(obj, len, "subscriptions", arr, len + 1) != 1)
        snprintf(cells[COL_SUBS], CELL_MAX, "-");
    else if (names_cell(arr, strlen(arr), cells[COL_SUBS], CELL_MAX) < 0)
        rc = -1;
    free(arr);

    cells[COL_FLAGS][0] = '\0';
    if (ph_cli_json_get(obj, len, "admin", v, sizeof v) == 1 &&
        strcmp(v, "true") == 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%sadmin", flen ? "," : "");
    if (ph_cli_json_get(obj, len, "monitor", v, sizeof v) == 1 &&
        strcmp(v, "true") == 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%smonitor", flen ? "," : "");
    if (ph_cli_json_get(obj, len, "inflight", v, sizeof v) == 1 &&
        ph_cli_to_u64(v) != 0)
        flen += (size_t)snprintf(cells[COL_FLAGS] + flen, CELL_MAX - flen,
                                 "%sinflight=%s", flen ? "," : "", v);
    if (flen == 0)
        snprintf(cells[COL_FLAGS], CELL_MAX, "-");
    return rc;
}

/* This connection's conn_id, from sys.hello; 0 when it cannot be had. */
static uint32_t own_conn_id(const cli *o, ph_client *c)
{
    char v[32];
    ph_reply r;
    uint32_t id = 0;

    if (ph_client_call(c, "sys.hello", "pipehub clients", 15, o->timeout_ms,
                       &r) != PH_OK)
        return 0;
    if (r.kind == PH_REPLY &&
        ph_cli_json_get((const char *)r.payload, r.payload_len, "conn_id", v,
                        sizeof v) == 1)
        id = (uint32_t)ph_cli_to_u64(v);
    ph_reply_free(&r);
    return id;
}

int ph_cli_clients(const cli *o, int argc, char **argv)
{
    size_t width[NCOL], pos = 0, start, len, k, nrows = 0, cap = 0, i;
    client_row *rows = NULL, *t;
    int json = 0, rc, more, a;
    uint32_t self = 0;
    uint64_t now;
    ph_client *c;
    ph_reply r;
    ph_err err;

    for (a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0)
            json = 1;
        else
            return ph_cli_usage_error("clients takes only --json, not '%s'",
                                      argv[a]);
    }
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    if (!json)
        self = own_conn_id(o, c);
    err = ph_client_call(c, "sys.clients", NULL, 0, o->timeout_ms, &r);
    ph_client_close(c);
    if (err != PH_OK)
        return ph_cli_report_failure(o, "sys.clients", err);
    if (r.kind == PH_ERROR) {
        rc = ph_cli_report_error_reply(&r);
        ph_reply_free(&r);
        return rc;
    }
    if (json) {
        fwrite(r.payload, 1, r.payload_len, stdout);
        if (r.payload_len == 0 || r.payload[r.payload_len - 1] != '\n')
            putchar('\n');
        ph_reply_free(&r);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
    }

    now = ph_win_unix_ms();
    while ((more = ph_cli_json_next((const char *)r.payload, r.payload_len,
                                    &pos, &start, &len)) == 1) {
        if (nrows == cap) {
            cap = cap ? cap * 2 : 16;
            if ((t = realloc(rows, cap * sizeof *rows)) == NULL) {
                fputs("pipehub: out of memory\n", stderr);
                free(rows);
                ph_reply_free(&r);
                return EXIT_NO_ANSWER;
            }
            rows = t;
        }
        if (client_cells((const char *)r.payload + start, len, now, self,
                         &rows[nrows]) < 0) {
            more = -1;
            break;
        }
        nrows++;
    }
    if (more < 0) {
        fprintf(stderr, "pipehub: sys.clients answered something other than "
                "a JSON array of connections: %.200s\n",
                (const char *)r.payload);
        free(rows);
        ph_reply_free(&r);
        return EXIT_NO_ANSWER;
    }
    ph_reply_free(&r);

    /* The hub lists them in its own order; ids give the order they came. */
    if (nrows > 1)
        qsort(rows, nrows, sizeof *rows, cmp_row);
    for (k = 0; k < NCOL; k++) {
        width[k] = strlen(client_heads[k]);
        for (i = 0; i < nrows; i++)
            if (strlen(rows[i].cells[k]) > width[k])
                width[k] = strlen(rows[i].cells[k]);
    }
    for (k = 0; k < NCOL; k++)
        printf(k + 1 < NCOL ? "%-*s  " : "%.*s\n",
               (int)(k + 1 < NCOL ? width[k] : strlen(client_heads[k])),
               client_heads[k]);
    for (i = 0; i < nrows; i++)
        for (k = 0; k < NCOL; k++)
            printf(k + 1 < NCOL ? "%-*s  " : "%.*s\n",
                   (int)(k + 1 < NCOL ? width[k] : strlen(rows[i].cells[k])),
                   rows[i].cells[k]);
    printf("%u connection%s%s\n", (unsigned)nrows, nrows == 1 ? "" : "s",
           self != 0 ? " (* is this command's own)" : "");
    free(rows);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
}
