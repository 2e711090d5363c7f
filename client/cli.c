/* pipehub.exe: call a running pipehubd from the command line.
 *
 * Exit status, so scripts can tell the cases apart:
 *   0 success, 1 the server answered with an ERROR frame, 2 usage error,
 *   3 no server, no answer in time, or the connection broke. */
#include <windows.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "pipehub.h"

enum { EXIT_OK = 0, EXIT_ERROR_REPLY = 1, EXIT_USAGE = 2, EXIT_NO_ANSWER = 3 };

#define TIMEOUT_DEFAULT_MS 5000u
#define TIMEOUT_MAX_MS 86400000u /* a day: past that it is a typo */
#define PING_DEFAULT 4u
#define PING_MAX 100000u

static const char usage_text[] =
    "usage: pipehub [--pipe NAME] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  call ROUTE [PAYLOAD]  send PAYLOAD (default empty) to ROUTE and print\n"
    "                        the reply\n"
    "  ping [-n N]           time N sys.ping round trips (default 4)\n"
    "  stats                 print the server's counters (sys.stats) as JSON\n"
    "\n"
    "options:\n"
    "  --pipe NAME     pipe name or \\\\.\\pipe\\NAME path (default pipehub)\n"
    "  --timeout MS    limit for connecting and for each call, in\n"
    "                  milliseconds (default 5000)\n"
    "  --help          show this text\n"
    "\n"
    "exit status: 0 ok, 1 the server answered with an error, 2 usage error,\n"
    "3 no server or no answer\n";

/* What every command needs: where to connect and how long to wait. */
typedef struct cli {
    char path[PH_PIPE_PATH_MAX + 1]; /* the full \\.\pipe\ path */
    uint32_t timeout_ms;
} cli;

static int usage_error(const char *fmt, const char *arg)
{
    fputs("pipehub: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* A whole decimal number in [min, max]; no sign, no spaces, no suffix. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    unsigned long long v;
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* One line on stderr for a failure that left no answer. Win32 codes get the
 * system's text, so "access denied" reads as such. */
static int report_failure(const cli *o, const char *what, ph_err err)
{
    char msg[256];
    DWORD code, n;

    switch (err) {
    case PH_ENOTFOUND:
        fprintf(stderr, "pipehub: no server on %s (is pipehubd running?)\n",
                o->path);
        break;
    case PH_ETIMEDOUT:
        if (strcmp(what, "connect") == 0)
            fprintf(stderr, "pipehub: every instance of %s stayed busy for "
                    "%u ms\n", o->path, (unsigned)o->timeout_ms);
        else
            fprintf(stderr, "pipehub: %s on %s: no answer within %u ms\n",
                    what, o->path, (unsigned)o->timeout_ms);
        break;
    case PH_ECLOSED:
        fprintf(stderr, "pipehub: %s on %s: the server closed the "
                "connection\n", what, o->path);
        break;
    default:
        if (err < PH_ESYSERR) {
            fprintf(stderr, "pipehub: %s on %s: %s\n", what, o->path,
                    ph_strerror(err));
            break;
        }
        code = (DWORD)(err - PH_ESYSERR);
        n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                               FORMAT_MESSAGE_IGNORE_INSERTS,
                           NULL, code, 0, msg, sizeof msg, NULL);
        /* The system's text ends in CRLF; this must stay one line. */
        while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n' ||
                         msg[n - 1] == ' ' || msg[n - 1] == '.'))
            n--;
        msg[n] = '\0';
        fprintf(stderr, "pipehub: %s on %s: system error %lu%s%s\n", what,
                o->path, (unsigned long)code, n ? ": " : "", msg);
        break;
    }
    return EXIT_NO_ANSWER;
}

static int connect_or_report(const cli *o, ph_client **out)
{
    ph_err err = ph_client_connect(o->path, o->timeout_ms, out);

    return err == PH_OK ? EXIT_OK : report_failure(o, "connect", err);
}

/* Print an ERROR reply as "error: NAME: message" and give its exit code. */
static int report_error_reply(const ph_reply *r)
{
    const char *name = ph_err_name((ph_err)r->status);

    if (name != NULL)
        fprintf(stderr, "error: %s: %s\n", name, (const char *)r->payload);
    else
        fprintf(stderr, "error: %u: %s\n", (unsigned)r->status,
                (const char *)r->payload);
    return EXIT_ERROR_REPLY;
}

/* Call route once on a fresh connection and print the reply's payload. */
static int call_and_print(const cli *o, const char *route, const char *payload)
{
    ph_client *c;
    ph_reply r;
    ph_err err;
    int rc;

    if ((rc = connect_or_report(o, &c)) != EXIT_OK)
        return rc;
    err = ph_client_call(c, route, payload, strlen(payload), o->timeout_ms, &r);
    ph_client_close(c);
    if (err != PH_OK)
        return report_failure(o, route, err);
    if (r.kind == PH_ERROR) {
        rc = report_error_reply(&r);
    } else {
        fwrite(r.payload, 1, r.payload_len, stdout);
        if (r.payload_len == 0 || r.payload[r.payload_len - 1] != '\n')
            putchar('\n');
        rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_NO_ANSWER;
    }
    ph_reply_free(&r);
    return rc;
}

static int cmd_call(const cli *o, int argc, char **argv)
{
    const char *route, *payload;
    size_t len;

    if (argc < 1 || argc > 2)
        return usage_error("%s", "call needs ROUTE and at most one PAYLOAD");
    route = argv[0];
    payload = argc == 2 ? argv[1] : "";
    /* Checked here so a typo is a usage error, not a trip to the server. */
    len = strlen(route);
    if (len == 0 || len > PH_ROUTE_MAX || !ph_route_valid(route, len))
        return usage_error("'%s' is not a route (1-255 letters, digits and "
                           "._-/)", route);
    return call_and_print(o, route, payload);
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

static int cmd_ping(const cli *o, int argc, char **argv)
{
    uint32_t count = PING_DEFAULT, i;
    LARGE_INTEGER freq, t0, t1;
    uint64_t *us = NULL, median;
    ph_client *c = NULL;
    ph_reply r;
    ph_err err;
    int rc;

    if (argc == 2 && strcmp(argv[0], "-n") == 0) {
        if (!parse_u32(argv[1], 1, PING_MAX, &count))
            return usage_error("-n wants a count from 1 to 100000, not '%s'",
                               argv[1]);
    } else if (argc != 0) {
        return usage_error("%s", "ping takes only -n N");
    }
    QueryPerformanceFrequency(&freq);

    us = malloc(count * sizeof *us);
    if (us == NULL) {
        fputs("pipehub: out of memory\n", stderr);
        return EXIT_NO_ANSWER;
    }
    if ((rc = connect_or_report(o, &c)) != EXIT_OK)
        goto done;
    for (i = 0; i < count; i++) {
        QueryPerformanceCounter(&t0);
        err = ph_client_call(c, "sys.ping", NULL, 0, o->timeout_ms, &r);
        QueryPerformanceCounter(&t1);
        if (err != PH_OK) {
            rc = report_failure(o, "sys.ping", err);
            goto done;
        }
        if (r.kind == PH_ERROR) {
            rc = report_error_reply(&r);
            ph_reply_free(&r);
            goto done;
        }
        ph_reply_free(&r);
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

static int cmd_stats(const cli *o, int argc)
{
    if (argc != 0)
        return usage_error("%s", "stats takes no arguments");
    return call_and_print(o, "sys.stats", "");
}

/* "--name VALUE" or "--name=VALUE": returns the value and advances *i, or
 * NULL when argv[*i] is not this option. *missing is set when the option is
 * there without its value. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    const char *pipe = PH_PIPE_DEFAULT, *v, *cmd;
    cli o;
    int i, missing = 0;

    o.timeout_ms = TIMEOUT_DEFAULT_MS;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if ((v = option_value(argc, argv, &i, "--pipe", &missing)) != NULL) {
            pipe = v;
        } else if ((v = option_value(argc, argv, &i, "--timeout",
                                     &missing)) != NULL) {
            if (!parse_u32(v, 1, TIMEOUT_MAX_MS, &o.timeout_ms))
                return usage_error("--timeout wants milliseconds from 1 to "
                                   "86400000, not '%s'", v);
        } else if (missing) {
            return usage_error("%s needs a value", argv[i]);
        } else {
            return usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (ph_pipe_path(pipe, o.path, sizeof o.path) != PH_OK)
        return usage_error("'%s' is not a local pipe name (a bare name or "
                           "\\\\.\\pipe\\NAME)", pipe);
    if (i >= argc)
        return usage_error("%s", "no command given");

    /* Everything after the command is its own: "call sys.echo --help"
     * echoes "--help". */
    cmd = argv[i++];
    if (strcmp(cmd, "call") == 0)
        return cmd_call(&o, argc - i, argv + i);
    if (strcmp(cmd, "ping") == 0)
        return cmd_ping(&o, argc - i, argv + i);
    if (strcmp(cmd, "stats") == 0)
        return cmd_stats(&o, argc - i);
    return usage_error("unknown command '%s'", cmd);
}
