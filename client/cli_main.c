/* pipehub.exe: talk to a running pipehubd from the command line. This file
 * holds the global options, the dispatch to the commands (client/cli_*.c,
 * bench/loadgen.c), the usage text and the helpers they share: reporting,
 * PAYLOAD input, escaped output and Ctrl+C. */
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define TIMEOUT_DEFAULT_MS 5000u
#define TIMEOUT_MAX_MS 86400000u /* a day: past that it is a typo */
#define READ_CHUNK (64u * 1024u)

static const char usage_text[] =
    "usage: pipehub [--pipe NAME] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  call ROUTE [PAYLOAD]  send PAYLOAD (default empty) to ROUTE, built in\n"
    "                        or served by a client, and print the reply\n"
    "                        (call --no-lane ROUTE ...: keep to the pipe)\n"
    "  ping [-n N]           time N sys.ping round trips (default 4)\n"
    "  stats                 print the server's counters (sys.stats) as JSON\n"
    "  routes [-v]           table of the routes the hub serves (sys.routes);\n"
    "                        -v adds each one's description's first line\n"
    "  describe ROUTE        what ROUTE says it is (sys.describe)\n"
    "  pub TOPIC [PAYLOAD]   publish an event\n"
    "  sub PATTERN [--count N]\n"
    "                        print events on a topic, \"prefix.*\" or \"*\",\n"
    "                        one line each (TOPIC PAYLOAD), until Ctrl+C or N\n"
    "  serve ROUTE [--exclusive] [--describe TEXT|@FILE] --exec CMD\n"
    "                        serve ROUTE: each request runs CMD through\n"
    "                        cmd.exe, with the payload on its standard input,\n"
    "                        and is answered with its standard output; a\n"
    "                        non-zero exit is answered ERROR 256 with its\n"
    "                        stderr, a run longer than --timeout is killed\n"
    "                        (TIMEOUT). CMD sees PIPEHUB_ROUTE and\n"
    "                        PIPEHUB_CALLER (the caller's conn id). One\n"
    "                        request at a time; runs until Ctrl+C\n"
    "  monitor [PATTERN] [--sys] [--count N]\n"
    "                        print a line per frame the hub routes on\n"
    "                        matching routes (default *), with --sys also the\n"
    "                        built-in sys.* traffic, until Ctrl+C or N:\n"
    "                        TIME FROM->TO KIND ROUTE id=ID len=LEN PAYLOAD\n"
    "                        (conn ids; hub: the hub, *: the subscribers; the\n"
    "                        payload's first 48 bytes). Needs an\n"
    "                        administrator or the service's account\n"
    "  clients [--json]      table of the hub's connections (sys.clients):\n"
    "                        pid, account, integrity, executable, since\n"
    "                        when, frames and bytes, queued output, routes,\n"
    "                        subscriptions; --json prints the reply as it is.\n"
    "                        Needs an administrator or the service's account\n"
    "  doctor [--pipe NAME]  check the pipe name: OK/INFO/WARN/FAIL per\n"
    "                        check (server, round trip, serving process and\n"
    "                        account, pipe DACL in words, remote clients,\n"
    "                        load); exit 1 on any WARN or FAIL, 3 when\n"
    "                        nothing serves the name\n"
    "  bench MODE [OPTIONS]  load generator (bench/run.sh); one line of\n"
    "                        key=value results per run\n"
    "\n"
    "PAYLOAD is the text itself, @FILE for a file's bytes, or - for standard\n"
    "input (to send text that starts with @, use -). call prints a reply's\n"
    "bytes as they are; sub and monitor print one line per frame, where \\,\n"
    "tab, CR, LF and other control bytes are escaped\n"
    "(\\\\ \\t \\r \\n \\xHH).\n"
    "\n"
    "options:\n"
    "  --pipe NAME     pipe name or \\\\.\\pipe\\NAME path (default pipehub)\n"
    "  --timeout MS    limit for connecting, for each call and for each\n"
    "                  serve command, in milliseconds (default 5000)\n"
    "  --no-lane       never use a shared-memory lane: big payloads go\n"
    "                  through the pipe (also PIPEHUB_LANE=0)\n"
    "  --help          show this text\n"
    "\n"
    "bench modes:\n"
    "  pingpong   -c clients (default 1) doing round trips one after another;\n"
    "             median and p99 latency, round trips/s, MB/s\n"
    "  clients    the same with -c 16 by default\n"
    "  big        the same with -s 1048576 by default\n"
    "  pipeline   one client keeps --window messages in flight, --pack of\n"
    "             them per WriteFile (default 1); messages/s\n"
    "  async      the same through the library's asynchronous calls, which\n"
    "             pack by themselves; messages/s\n"
    "  churn      connect, one round trip, close, again; connections/s\n"
    "  idle       open -c connections (default 1000), each answers once,\n"
    "             hold them --hold seconds, then each must answer again\n"
    "  routed     pingpong through the hub to a route that --providers\n"
    "             threads of this process serve; median and p99 latency\n"
    "  routed-async  async, to such a route (default --window 256, the\n"
    "             server's default max_inflight_per_client)\n"
    "  provide    --providers threads serve --route (an echo) for -d\n"
    "             seconds, for other processes' calls\n"
    "  fanout     1 publisher (--pack events per write, at most --window\n"
    "             ahead of the slowest reader) to -c subscribers (default\n"
    "             50) and --stall more that never read; events delivered/s\n"
    "  idle-sub   idle, each connection with one subscription; afterwards\n"
    "             each must receive an event\n"
    "  memcpy     no server: copy -s bytes (default 1048576) in memory, the\n"
    "             floor any transport is compared with\n"
    "  abuse      --kind connect-close|silent|slowloris|nonreader|overlimit\n"
    "             clients, in cycles of -c (-d or -n cycles); each must be\n"
    "             dropped (overlimit: refused BUSY) by the hub\n"
    "bench options:\n"
    "  -c N        clients (pingpong, clients, idle, routed, fanout,\n"
    "              idle-sub, abuse)\n"
    "  -d SECONDS  run this long (default 2); -n COUNT: this many instead\n"
    "  -s BYTES    payload per message (default 64; big: 1048576)\n"
    "  --pack K    messages per WriteFile (pipeline; default 1; fanout 256)\n"
    "  --window N  messages in flight (pipeline, async; default 1024;\n"
    "              fanout 4096)\n"
    "  --hold S    seconds idle connections are held (default 3)\n"
    "  --raw       plain echo bytes, no frames (for bench/baseline.exe)\n"
    "  --no-lane   library clients keep to the pipe (big payloads\n"
    "              otherwise go through a shared-memory lane)\n"
    "  --provider lib|raw  routed: serve through the library (default) or\n"
    "              a raw pipe handle; --providers N (default 1)\n"
    "  --stall N   fanout: subscribers that never read (default 0)\n"
    "  --route R   pingpong, async: call R instead of sys.echo; provide:\n"
    "              the route to serve\n"
    "\n"
    "exit status: 0 ok, 1 the server or a provider answered with an error,\n"
    "2 usage error, 3 no server, no answer, or the connection was lost\n";

int ph_cli_usage_error(const char *fmt, const char *arg)
{
    fputs("pipehub: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

int ph_cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
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

/* Win32 codes get the system's text, so "access denied" reads as such. */
int ph_cli_report_failure(const cli *o, const char *what, ph_err err)
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

int ph_cli_connect(const cli *o, ph_client **out)
{
    ph_err err = ph_client_connect_ex(o->path, o->timeout_ms,
                                      o->no_lane ? PH_CONNECT_NO_LANE : 0,
                                      out);

    return err == PH_OK ? EXIT_OK : ph_cli_report_failure(o, "connect", err);
}

/* The protocol's name of a code, or NULL. */
static const char *code_name(uint32_t status)
{
    return ph_err_name((ph_err)status);
}

int ph_cli_report_error_reply(const ph_reply *r)
{
    const char *name = code_name(r->status);
    const char *msg = r->payload != NULL ? (const char *)r->payload : "";

    if (name != NULL)
        fprintf(stderr, "error: %s: %s\n", name, msg);
    else
        fprintf(stderr, "error: %u: %s\n", (unsigned)r->status, msg);
    return EXIT_ERROR_REPLY;
}

int ph_cli_call_expect_reply(const cli *o, ph_client *c, const char *route,
                             const void *payload, size_t len)
{
    ph_reply r;
    ph_err err = ph_client_call(c, route, payload, len, o->timeout_ms, &r);
    int rc = EXIT_OK;

    if (err != PH_OK)
        return ph_cli_report_failure(o, route, err);
    if (r.kind == PH_ERROR)
        rc = ph_cli_report_error_reply(&r);
    ph_reply_free(&r);
    return rc;
}

int ph_cli_report_hub_err(const cli *o, const char *what, ph_err err)
{
    const char *name;

    /* PH_ETIMEDOUT doubles as the TIMEOUT code; the hub never answers its
     * own control routes with it, so here it means no answer came. */
    if (err > PH_OK && err < PH_EAGAIN && err != PH_ETIMEDOUT) {
        name = code_name((uint32_t)err);
        if (name != NULL)
            fprintf(stderr, "error: %s: %s\n", name, what);
        else
            fprintf(stderr, "error: %u: %s\n", (unsigned)err, what);
        return EXIT_ERROR_REPLY;
    }
    return ph_cli_report_failure(o, what, err);
}

/* Read all of f into p->owned. */
static int read_all(FILE *f, const char *name, ph_cli_payload *p)
{
    size_t cap = 0, len = 0, n;
    uint8_t *buf = NULL, *t;

    for (;;) {
        if (len == cap) {
            if (cap >= PH_CLI_PAYLOAD_MAX) {
                free(buf);
                fprintf(stderr, "pipehub: %s is larger than %u bytes\n", name,
                        (unsigned)PH_CLI_PAYLOAD_MAX);
                return EXIT_USAGE;
            }
            cap = cap ? cap * 2 : READ_CHUNK;
            if ((t = realloc(buf, cap)) == NULL) {
                free(buf);
                fputs("pipehub: out of memory\n", stderr);
                return EXIT_USAGE;
            }
            buf = t;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fprintf(stderr, "pipehub: cannot read %s\n", name);
        return EXIT_USAGE;
    }
    p->owned = buf;
    p->data = buf;
    p->len = len;
    return EXIT_OK;
}

int ph_cli_payload_read(const char *arg, ph_cli_payload *out)
{
    FILE *f;
    int rc;

    memset(out, 0, sizeof *out);
    if (strcmp(arg, "-") == 0) {
        /* Bytes as they are: no CRLF translation, no stop at ^Z. */
        _setmode(_fileno(stdin), _O_BINARY);
        return read_all(stdin, "standard input", out);
    }
    if (arg[0] == '@') {
        if ((f = fopen(arg + 1, "rb")) == NULL) {
            fprintf(stderr, "pipehub: cannot open %s: %s\n", arg + 1,
                    strerror(errno));
            return EXIT_USAGE;
        }
        rc = read_all(f, arg + 1, out);
        fclose(f);
        return rc;
    }
    out->data = (const uint8_t *)arg;
    out->len = strlen(arg);
    return EXIT_OK;
}

void ph_cli_payload_free(ph_cli_payload *p)
{
    free(p->owned);
    memset(p, 0, sizeof *p);
}

void ph_cli_put_escaped(FILE *f, const uint8_t *p, size_t n, size_t max)
{
    size_t i, shown = max > 0 && n > max ? max : n;

    for (i = 0; i < shown; i++) {
        uint8_t b = p[i];
        switch (b) {
        case '\\':
            fputs("\\\\", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        default:
            if (b < 0x20 || b == 0x7f)
                fprintf(f, "\\x%02x", (unsigned)b);
            else
                fputc(b, f);
        }
    }
    if (shown < n)
        fputs("...", f);
}

static HANDLE stop_event;

static BOOL WINAPI on_console_ctrl(DWORD type)
{
    if (type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT ||
        type == CTRL_CLOSE_EVENT) {
        SetEvent(stop_event);
        return TRUE;
    }
    return FALSE;
}

void *ph_cli_stop_event(void)
{
    if (stop_event == NULL) {
        stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
        if (stop_event != NULL)
            SetConsoleCtrlHandler(on_console_ctrl, TRUE);
    }
    return stop_event;
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
    static const struct {
        const char *name;
        int (*run)(const cli *o, int argc, char **argv);
    } commands[] = {
        {"call", ph_cli_call},   {"ping", ph_cli_ping},
        {"stats", ph_cli_stats}, {"routes", ph_cli_routes},
        {"describe", ph_cli_describe},
        {"pub", ph_cli_pub},     {"sub", ph_cli_sub},
        {"serve", ph_cli_serve}, {"monitor", ph_cli_monitor},
        {"clients", ph_cli_clients}, {"doctor", ph_cli_doctor},
        {"bench", ph_cli_bench},
    };
    const char *pipe = PH_PIPE_DEFAULT, *v, *cmd;
    cli o;
    size_t k;
    int i, missing = 0;

    o.timeout_ms = TIMEOUT_DEFAULT_MS;
    o.no_lane = 0;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--no-lane") == 0) {
            o.no_lane = 1;
            continue;
        }
        if ((v = option_value(argc, argv, &i, "--pipe", &missing)) != NULL) {
            pipe = v;
        } else if ((v = option_value(argc, argv, &i, "--timeout",
                                     &missing)) != NULL) {
            if (!ph_cli_parse_u32(v, 1, TIMEOUT_MAX_MS, &o.timeout_ms))
                return ph_cli_usage_error("--timeout wants milliseconds from "
                                          "1 to 86400000, not '%s'", v);
        } else if (missing) {
            return ph_cli_usage_error("%s needs a value", argv[i]);
        } else {
            return ph_cli_usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (ph_pipe_path(pipe, o.path, sizeof o.path) != PH_OK)
        return ph_cli_usage_error("'%s' is not a local pipe name (a bare name "
                                  "or \\\\.\\pipe\\NAME)", pipe);
    if (i >= argc)
        return ph_cli_usage_error("%s", "no command given");

    /* Everything after the command is its own: "call sys.echo --help"
     * echoes "--help". */
    cmd = argv[i++];
    for (k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(cmd, commands[k].name) == 0)
            return commands[k].run(&o, argc - i, argv + i);
    return ph_cli_usage_error("unknown command '%s'", cmd);
}
