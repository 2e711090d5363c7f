/* pipehub monitor: one line per frame the hub routes (sys.monitor). */
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "wintime.h"

/* Bytes of each payload shown. */
#define PAYLOAD_SHOWN 48u

typedef struct monitor_state {
    uint32_t count;   /* --count, 0 = until stopped */
    uint32_t printed; /* copies printed */
    int out_failed;   /* stdout is gone */
} monitor_state;

static const char *kind_name(uint8_t kind)
{
    switch (kind) {
    case PH_REQUEST: return "REQUEST";
    case PH_REPLY:   return "REPLY";
    case PH_EVENT:   return "EVENT";
    case PH_ERROR:   return "ERROR";
    default:         return "?";
    }
}

/* "hub" for 0, else the number. */
static const char *conn_text(uint32_t id, char *buf, size_t cap)
{
    if (id == 0)
        return "hub";
    snprintf(buf, cap, "%lu", (unsigned long)id);
    return buf;
}

/* Unix ms as local time of day, HH:MM:SS.mmm. */
static void put_time(uint64_t unix_ms)
{
    FILETIME utc, local;
    SYSTEMTIME st;

    ph_win_unix_ms_to_filetime(unix_ms, &utc);
    if (!FileTimeToLocalFileTime(&utc, &local) ||
        !FileTimeToSystemTime(&local, &st)) {
        printf("%llu", (unsigned long long)unix_ms);
        return;
    }
    printf("%02u:%02u:%02u.%03u", (unsigned)st.wHour, (unsigned)st.wMinute,
           (unsigned)st.wSecond, (unsigned)st.wMilliseconds);
}

static void on_copy(void *ctx, const char *topic, const void *payload,
                    size_t len)
{
    monitor_state *m = ctx;
    char from[16], to[16];
    ph_monitor_copy k;
    const char *name;

    (void)topic;
    if ((m->count && m->printed >= m->count) || m->out_failed)
        return;
    if (ph_monitor_decode(payload, len, &k) != PH_OK) {
        fprintf(stderr, "pipehub: a monitor copy that does not decode "
                "(%lu bytes)\n", (unsigned long)len);
        return;
    }
    put_time(k.time_ms);
    /* An event's copy has no one receiver: it goes to the subscribers. */
    printf(" %s->%s %s", conn_text(k.from, from, sizeof from),
           k.frame.kind == PH_EVENT && k.to == 0
               ? "*"
               : conn_text(k.to, to, sizeof to),
           kind_name(k.frame.kind));
    if (k.frame.kind == PH_ERROR) {
        name = ph_err_name((ph_err)k.frame.status);
        if (name != NULL)
            printf("(%s)", name);
        else
            printf("(%lu)", (unsigned long)k.frame.status);
    }
    printf(" %.*s id=%lu len=%lu ", k.frame.route_len ? (int)k.frame.route_len
                                                      : 1,
           k.frame.route_len ? k.frame.route : "-", (unsigned long)k.frame.id,
           (unsigned long)k.frame.payload_len);
    ph_cli_put_escaped(stdout, k.frame.payload, k.frame.payload_len,
                       PAYLOAD_SHOWN);
    putchar('\n');
    if (fflush(stdout) != 0)
        m->out_failed = 1;
    m->printed++;
}

static int monitor_done(void *ctx)
{
    const monitor_state *m = ctx;

    return (m->count && m->printed >= m->count) || m->out_failed;
}

int ph_cli_monitor(const cli *o, int argc, char **argv)
{
    char request[PH_ROUTE_MAX + 8];
    const char *pattern = "*";
    ph_client *c = NULL;
    monitor_state m;
    int rc, with_sys = 0;
    ph_err err;

    memset(&m, 0, sizeof m);
    rc = ph_cli_watch_args(argc, argv, &m.count, &with_sys, &pattern);
    if (rc < 0)
        return EXIT_USAGE;
    if (!ph_cli_pattern_ok(pattern))
        return ph_cli_usage_error("'%s' is not a pattern (a route, "
                                  "\"prefix.*\" or \"*\")", pattern);
    snprintf(request, sizeof request, "%s%s", pattern, with_sys ? " sys" : "");
    ph_cli_stop_event();
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    /* Listen before asking: the first copies may come in the same read as
     * the answer. The hub sends them unasked, so this only listens. */
    err = ph_client_subscribe(c, "sys.monitor", on_copy, &m, o->timeout_ms);
    if (err != PH_OK) {
        rc = ph_cli_report_failure(o, "sys.monitor", err);
        goto done;
    }
    rc = ph_cli_call_expect_reply(o, c, "sys.monitor", request,
                                  strlen(request));
    if (rc != EXIT_OK)
        goto done;
    rc = ph_cli_run_client(o, c, monitor_done, &m);
    if (rc == EXIT_OK && m.out_failed)
        rc = EXIT_NO_ANSWER;
done:
    ph_client_close(c);
    return rc;
}
