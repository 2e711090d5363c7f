/* pipehub pub and sub: publish one event; print the events on a pattern. */
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "cli.h"

int ph_cli_pub(const cli *o, int argc, char **argv)
{
    ph_cli_payload p;
    ph_client *c = NULL;
    const char *topic;
    size_t len;
    ph_reply r;
    ph_err err;
    int rc;

    if (argc < 1 || argc > 2)
        return ph_cli_usage_error("%s", "pub needs TOPIC and at most one "
                                        "PAYLOAD");
    topic = argv[0];
    len = strlen(topic);
    if (len == 0 || len > PH_ROUTE_MAX || !ph_route_valid(topic, len))
        return ph_cli_usage_error("'%s' is not a topic (1-255 letters, digits "
                                  "and ._-/)", topic);
    if ((rc = ph_cli_payload_read(argc == 2 ? argv[1] : "", &p)) != EXIT_OK)
        return rc;
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        goto done;
    err = ph_client_publish(c, topic, p.data, p.len);
    if (err == PH_EFORBIDDEN) {
        fprintf(stderr, "error: FORBIDDEN: topics under sys. belong to the "
                "hub\n");
        rc = EXIT_ERROR_REPLY;
        goto done;
    }
    if (err != PH_OK) {
        rc = ph_cli_report_failure(o, topic, err);
        goto done;
    }
    /* An EVENT gets no answer. A ping behind it does, and the hub handles a
     * connection's frames in order: once the ping is answered the event has
     * been published, and closing cannot lose it. */
    err = ph_client_call(c, "sys.ping", NULL, 0, o->timeout_ms, &r);
    if (err != PH_OK) {
        rc = ph_cli_report_failure(o, topic, err);
        goto done;
    }
    rc = r.kind == PH_ERROR ? ph_cli_report_error_reply(&r) : EXIT_OK;
    ph_reply_free(&r);
done:
    ph_client_close(c);
    ph_cli_payload_free(&p);
    return rc;
}

typedef struct sub_state {
    uint32_t count;   /* --count, 0 = until stopped */
    uint32_t printed; /* events printed */
    int out_failed;   /* stdout is gone (a closed pipe) */
} sub_state;

static void on_event(void *ctx, const char *topic, const void *payload,
                     size_t len)
{
    sub_state *s = ctx;

    if ((s->count && s->printed >= s->count) || s->out_failed)
        return;
    fputs(topic, stdout);
    putchar(' ');
    ph_cli_put_escaped(stdout, payload, len, 0);
    putchar('\n');
    /* Each line as it arrives, also when stdout is a pipe. */
    if (fflush(stdout) != 0)
        s->out_failed = 1;
    s->printed++;
}

static int sub_done(void *ctx)
{
    const sub_state *s = ctx;

    return (s->count && s->printed >= s->count) || s->out_failed;
}

int ph_cli_run_client(const cli *o, ph_client *c, int (*done)(void *ctx),
                      void *ctx)
{
    HANDLE wait[2];
    DWORD n = 0, r;
    ph_err err;

    wait[n++] = ph_client_waitable(c);
    if ((wait[n] = ph_cli_stop_event()) != NULL)
        n++;
    while (!done(ctx)) {
        /* The client (no longer than its next call's deadline) or
         * Ctrl+C, whichever comes first. */
        r = WaitForMultipleObjects(n, wait, FALSE,
                                   ph_client_timeout(c) == UINT32_MAX
                                       ? INFINITE
                                       : ph_client_timeout(c));
        if (r == WAIT_OBJECT_0 + 1)
            return EXIT_OK;
        if (r == WAIT_FAILED) {
            fprintf(stderr, "pipehub: wait failed: %lu\n",
                    (unsigned long)GetLastError());
            return EXIT_NO_ANSWER;
        }
        if ((err = ph_client_poll(c, 0, NULL)) != PH_OK)
            return ph_cli_report_failure(o, "waiting for events", err);
    }
    return EXIT_OK;
}

int ph_cli_watch_args(int argc, char **argv, uint32_t *count, int *sys_flag,
                      const char **word)
{
    int i, nwords = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0) {
            if (i + 1 >= argc ||
                !ph_cli_parse_u32(argv[i + 1], 1, UINT32_MAX, count)) {
                ph_cli_usage_error("%s", "--count wants a number from 1 up");
                return -1;
            }
            i++;
        } else if (sys_flag != NULL && strcmp(argv[i], "--sys") == 0) {
            *sys_flag = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ph_cli_usage_error("unknown option '%s'", argv[i]);
            return -1;
        } else if (nwords == 0) {
            *word = argv[i];
            nwords++;
        } else {
            ph_cli_usage_error("unexpected '%s'", argv[i]);
            return -1;
        }
    }
    return nwords;
}

int ph_cli_pattern_ok(const char *p)
{
    return ph_pattern_valid(p, strlen(p), 1);
}

int ph_cli_sub(const cli *o, int argc, char **argv)
{
    const char *pattern = NULL;
    ph_client *c = NULL;
    sub_state s;
    ph_err err;
    int rc;

    memset(&s, 0, sizeof s);
    rc = ph_cli_watch_args(argc, argv, &s.count, NULL, &pattern);
    if (rc < 0)
        return EXIT_USAGE;
    if (rc == 0)
        return ph_cli_usage_error("%s", "sub needs a PATTERN");
    if (!ph_cli_pattern_ok(pattern))
        return ph_cli_usage_error("'%s' is not a pattern (a topic, "
                                  "\"prefix.*\" or \"*\")", pattern);
    ph_cli_stop_event();
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    err = ph_client_subscribe(c, pattern, on_event, &s, o->timeout_ms);
    if (err != PH_OK) {
        char what[PH_ROUTE_MAX + 32];
        snprintf(what, sizeof what, "subscribing to '%s'", pattern);
        rc = ph_cli_report_hub_err(o, what, err);
    } else {
        rc = ph_cli_run_client(o, c, sub_done, &s);
        if (rc == EXIT_OK && s.out_failed)
            rc = EXIT_NO_ANSWER;
    }
    ph_client_close(c);
    return rc;
}

