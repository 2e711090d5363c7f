/* pipehub serve ROUTE [--exclusive] --exec CMD: answer each request with
 * the standard output of "cmd.exe /d /s /c "CMD"", fed the payload on its
 * standard input.
 *
 * Requests are queued and run one at a time, each on a worker thread, so
 * the connection is polled all along: requests keep being read (and
 * queued) while a command runs, and a command that hangs is killed when
 * --timeout has passed. The worker answers through ph_request_reply from
 * its own thread; the main thread waits on the client's waitable, Ctrl+C
 * and the worker. Each command runs in a job object, so killing it kills
 * whatever it started too (and with it the pipes, so no read is left
 * hanging). The child's standard handles are named pipes the worker reads
 * and writes overlapped, so one thread waits on all three and on the
 * deadline. */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The error code for a command that failed: the first of the application
 * codes (docs/PROTOCOL.md: 256 and up). */
#define SERVE_CMD_FAILED 256u
/* Requests waiting for their turn; more are refused BUSY. */
#define SERVE_QUEUE_MAX 1024u
#define CHILD_PIPE_BUFFER (64u * 1024u)
#define STDERR_KEPT 512u
/* How long a stopped command's worker may take to notice. */
#define WORKER_JOIN_MS 10000u

/* A request waiting for its turn or running. */
typedef struct task {
    ph_request *req;   /* answered by the worker; freed by the library */
    uint8_t *payload;  /* owned copy */
    size_t len;
    uint32_t caller;
    ULONGLONG arrived; /* GetTickCount64 */
    struct task *next;
} task;

/* One command run; written by the worker, read by main after the join. */
typedef struct run {
    const char *cmd;
    const char *route;
    uint32_t timeout_ms;
    uint32_t max_reply; /* bytes a REPLY's payload may have */
    unsigned seq;       /* for unique pipe names */
    task *t;
    HANDLE job;         /* job object the command runs in; owned by main */
    /* results, for the log line */
    DWORD exit_code;
    int started, timed_out, too_big;
    size_t out_len;
    ULONGLONG took_ms;
} run;

typedef struct server {
    const cli *o;
    const char *route;
    const char *cmd;
    uint32_t max_reply;
    task *head, *tail; /* the queue */
    size_t queued;
    run *running;      /* the run in progress, or NULL */
    HANDLE worker;     /* its thread */
    unsigned seq;
} server;

static void task_free(task *t)
{
    if (t != NULL) {
        free(t->payload);
        free(t);
    }
}

/* ---- the worker: one command ---- */

/* One end of a pipe to the child, read or written overlapped. */
typedef struct stream {
    HANDLE h;       /* our end; NULL once closed */
    HANDLE event;
    OVERLAPPED ov;
    int busy;       /* an operation is in flight */
    uint8_t *buf;   /* owned */
    size_t len, cap, limit;
    int to_scratch; /* the read in flight goes to scratch */
    int overflow;   /* more than limit arrived (the rest is dropped) */
    uint8_t scratch[4096];
} stream;

static void stream_close(stream *s)
{
    DWORD n;

    if (s->h != NULL) {
        if (s->busy) {
            CancelIoEx(s->h, &s->ov);
            GetOverlappedResult(s->h, &s->ov, &n, TRUE);
            s->busy = 0;
        }
        CloseHandle(s->h);
        s->h = NULL;
    }
}

/* Our end of a pipe (inbound: we read) and the child's end (inheritable). */
static int make_pipe(const run *r, const char *which, int inbound,
                     stream *ours, HANDLE *child)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    char name[128];
    DWORD n;

    snprintf(name, sizeof name, "\\\\.\\pipe\\pipehub-serve-%lu-%u-%s",
             (unsigned long)GetCurrentProcessId(), r->seq, which);
    ours->h = CreateNamedPipeA(
        name,
        (inbound ? PIPE_ACCESS_INBOUND : PIPE_ACCESS_OUTBOUND) |
            FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
            PIPE_REJECT_REMOTE_CLIENTS,
        1, CHILD_PIPE_BUFFER, CHILD_PIPE_BUFFER, 0, NULL);
    if (ours->h == INVALID_HANDLE_VALUE) {
        ours->h = NULL;
        return -1;
    }
    *child = CreateFileA(name, inbound ? GENERIC_WRITE : GENERIC_READ, 0, &sa,
                         OPEN_EXISTING, 0, NULL);
    if (*child == INVALID_HANDLE_VALUE) {
        *child = NULL;
        return -1;
    }
    /* The child has connected; this only confirms it. */
    memset(&ours->ov, 0, sizeof ours->ov);
    ours->ov.hEvent = ours->event;
    if (!ConnectNamedPipe(ours->h, &ours->ov)) {
        DWORD e = GetLastError();
        if (e == ERROR_IO_PENDING)
            GetOverlappedResult(ours->h, &ours->ov, &n, TRUE);
        else if (e != ERROR_PIPE_CONNECTED)
            return -1;
    }
    return 0;
}

/* Start the next read into s: into its buffer, grown up to limit, and past
 * that into a scratch area, to drain the pipe so the child is not stuck
 * writing. The read's event is set when it completes (also when ReadFile
 * completes at once). A failure to start means the child closed its end. */
static void stream_read(stream *s)
{
    uint8_t *dst;
    DWORD room;

    if (s->h == NULL || s->busy)
        return;
    if (s->len < s->limit && s->cap - s->len < 4096 && s->cap < s->limit) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint8_t *p;
        if (cap > s->limit)
            cap = s->limit;
        if ((p = realloc(s->buf, cap)) != NULL) {
            s->buf = p;
            s->cap = cap;
        }
    }
    s->to_scratch = s->len >= s->cap;
    dst = s->to_scratch ? s->scratch : s->buf + s->len;
    room = s->to_scratch ? (DWORD)sizeof s->scratch : (DWORD)(s->cap - s->len);
    memset(&s->ov, 0, sizeof s->ov);
    s->ov.hEvent = s->event;
    if (ReadFile(s->h, dst, room, NULL, &s->ov) ||
        GetLastError() == ERROR_IO_PENDING)
        s->busy = 1;
    else
        stream_close(s);
}

/* The read on s completed: account for it and read on. */
static void stream_done(stream *s)
{
    DWORD n = 0;

    s->busy = 0;
    if (!GetOverlappedResult(s->h, &s->ov, &n, FALSE)) {
        stream_close(s);
        return;
    }
    if (s->to_scratch)
        s->overflow |= n > 0;
    else
        s->len += n;
    stream_read(s);
}

static DWORD left_ms(ULONGLONG deadline)
{
    ULONGLONG now = GetTickCount64();

    return now >= deadline ? 0 : (DWORD)(deadline - now);
}

/* Start the command with its standard handles on three pipes. On failure
 * *why names the step and GetLastError() says why. */
static int start_child(run *r, stream *in, stream *out, stream *err,
                       PROCESS_INFORMATION *pi, const char **why)
{
    HANDLE child_in = NULL, child_out = NULL, child_err = NULL;
    STARTUPINFOA si;
    char *line = NULL, caller[16];
    size_t n;
    int rc = -1;

    *why = "cannot make its pipes";
    if (make_pipe(r, "in", 0, in, &child_in) < 0 ||
        make_pipe(r, "out", 1, out, &child_out) < 0 ||
        make_pipe(r, "err", 1, err, &child_err) < 0)
        goto done;
    *why = "cannot run cmd.exe";
    /* /s: cmd.exe strips the outer quotes and keeps the rest as it is;
     * /d: no AutoRun commands. */
    n = strlen(r->cmd) + 32;
    if ((line = malloc(n)) == NULL)
        goto done;
    snprintf(line, n, "cmd.exe /d /s /c \"%s\"", r->cmd);
    /* The environment is the process's own: only this thread starts
     * processes, one at a time. */
    snprintf(caller, sizeof caller, "%lu", (unsigned long)r->t->caller);
    SetEnvironmentVariableA("PIPEHUB_CALLER", caller);
    SetEnvironmentVariableA("PIPEHUB_ROUTE", r->route);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = child_in;
    si.hStdOutput = child_out;
    si.hStdError = child_err;
    if (!CreateProcessA(NULL, line, NULL, NULL, TRUE,
                        CREATE_SUSPENDED | CREATE_NO_WINDOW, NULL, NULL, &si,
                        pi))
        goto done;
    /* In the job before it runs, so nothing it starts escapes the kill. */
    AssignProcessToJobObject(r->job, pi->hProcess);
    ResumeThread(pi->hThread);
    rc = 0;
done:
    /* Our copies of the child's ends: the child holds its own now, and its
     * exit must be what breaks the pipes. */
    if (child_in)
        CloseHandle(child_in);
    if (child_out)
        CloseHandle(child_out);
    if (child_err)
        CloseHandle(child_err);
    free(line);
    return rc;
}

/* The first line of what the command wrote to stderr, for an ERROR. */
static void error_text(const run *r, const stream *err, char *msg, size_t cap)
{
    size_t n = 0, i, k;
    char text[STDERR_KEPT + 1];

    for (i = 0; i < err->len && n < STDERR_KEPT; i++) {
        char ch = (char)err->buf[i];
        text[n++] = ch == '\r' || ch == '\n' || ch == '\t' ? ' ' : ch;
    }
    /* Trim and squeeze the spaces the line ends became. */
    for (i = 0, k = 0; i < n; i++)
        if (text[i] != ' ' || (k > 0 && text[k - 1] != ' '))
            text[k++] = text[i];
    while (k > 0 && text[k - 1] == ' ')
        k--;
    text[k] = '\0';
    if (k > 0)
        snprintf(msg, cap, "exit code %lu: %s", (unsigned long)r->exit_code,
                 text);
    else
        snprintf(msg, cap, "exit code %lu", (unsigned long)r->exit_code);
}

static DWORD WINAPI run_command(LPVOID arg)
{
    run *r = arg;
    stream in, out, err;
    stream *streams[3] = {&in, &out, &err};
    PROCESS_INFORMATION pi;
    ULONGLONG start = GetTickCount64(), deadline;
    HANDLE wait[4];
    stream *which[4];
    DWORD n, w, written;
    const char *why = "cannot make events";
    char msg[300];
    int k, process_done = 0;

    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    memset(&err, 0, sizeof err);
    memset(&pi, 0, sizeof pi);
    deadline = start + r->timeout_ms;
    out.limit = r->max_reply;
    err.limit = STDERR_KEPT;
    for (k = 0; k < 3; k++)
        streams[k]->event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (in.event == NULL || out.event == NULL || err.event == NULL ||
        start_child(r, &in, &out, &err, &pi, &why) < 0) {
        snprintf(msg, sizeof msg, "%s: system error %lu", why,
                 (unsigned long)GetLastError());
        ph_request_error(r->t->req, SERVE_CMD_FAILED, msg);
        goto done;
    }
    r->started = 1;

    /* The payload goes in with one write; its end closes the child's
     * standard input. */
    if (r->t->len > 0) {
        memset(&in.ov, 0, sizeof in.ov);
        in.ov.hEvent = in.event;
        if (WriteFile(in.h, r->t->payload, (DWORD)r->t->len, NULL, &in.ov) ||
            GetLastError() == ERROR_IO_PENDING)
            in.busy = 1;
        else
            stream_close(&in);
    } else {
        stream_close(&in);
    }
    stream_read(&out);
    stream_read(&err);

    while (!process_done || out.h != NULL || err.h != NULL) {
        n = 0;
        if (!process_done) {
            which[n] = NULL;
            wait[n++] = pi.hProcess;
        }
        for (k = 0; k < 3; k++)
            if (streams[k]->h != NULL && streams[k]->busy) {
                which[n] = streams[k];
                wait[n++] = streams[k]->event;
            }
        if (n == 0)
            break;
        w = WaitForMultipleObjects(n, wait, FALSE, left_ms(deadline));
        if (w == WAIT_TIMEOUT || w == WAIT_FAILED) {
            /* Kill it and everything it started; the pipes break. */
            r->timed_out = 1;
            TerminateJobObject(r->job, 1);
            break;
        }
        w -= WAIT_OBJECT_0;
        if (which[w] == NULL) {
            process_done = 1;
        } else if (which[w] == &in) {
            in.busy = 0;
            GetOverlappedResult(in.h, &in.ov, &written, FALSE);
            stream_close(&in);
        } else {
            stream_done(which[w]);
        }
    }
    for (k = 0; k < 3; k++)
        stream_close(streams[k]);
    if (!r->timed_out) {
        WaitForSingleObject(pi.hProcess, left_ms(deadline));
        GetExitCodeProcess(pi.hProcess, &r->exit_code);
    }
    r->out_len = out.len;
    r->too_big = out.overflow;
    if (r->timed_out) {
        snprintf(msg, sizeof msg, "the command ran longer than %lu ms and "
                 "was stopped", (unsigned long)r->timeout_ms);
        ph_request_error(r->t->req, PH_ETIMEDOUT, msg);
    } else if (r->exit_code != 0) {
        error_text(r, &err, msg, sizeof msg);
        ph_request_error(r->t->req, SERVE_CMD_FAILED, msg);
    } else if (out.overflow) {
        snprintf(msg, sizeof msg, "the command's output is larger than the "
                 "hub's %lu-byte limit", (unsigned long)r->max_reply);
        ph_request_error(r->t->req, SERVE_CMD_FAILED, msg);
    } else {
        ph_request_reply(r->t->req, out.buf, out.len);
    }
done:
    r->t->req = NULL; /* answered: the library has freed it */
    for (k = 0; k < 3; k++) {
        stream_close(streams[k]);
        if (streams[k]->event)
            CloseHandle(streams[k]->event);
        free(streams[k]->buf);
    }
    if (pi.hProcess) {
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
    }
    r->took_ms = GetTickCount64() - start;
    return 0;
}

/* ---- the main thread ---- */

static void on_request(void *ctx, ph_request *req, const char *route,
                       const void *payload, size_t len, uint32_t caller)
{
    server *s = ctx;
    task *t;

    (void)route;
    if (s->queued >= SERVE_QUEUE_MAX) {
        ph_request_error(req, PH_EBUSY, "too many requests waiting");
        return;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL || (len > 0 && (t->payload = malloc(len)) == NULL)) {
        free(t);
        ph_request_error(req, PH_EINTERNAL, "provider out of memory");
        return;
    }
    if (len > 0)
        memcpy(t->payload, payload, len);
    t->req = req;
    t->len = len;
    t->caller = caller;
    t->arrived = GetTickCount64();
    if (s->tail != NULL)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    s->queued++;
}

static void on_acquired(void *ctx, const char *topic, const void *payload,
                        size_t len)
{
    (void)ctx;
    (void)topic;
    fprintf(stderr, "pipehub: now holding '%.*s'\n", (int)len,
            (const char *)payload);
}

/* Start the next queued request, if any, skipping (and answering TIMEOUT)
 * those that waited longer than the hub would have waited for them. */
static void start_next(server *s)
{
    task *t;
    run *r;

    while (s->running == NULL && (t = s->head) != NULL) {
        s->head = t->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->queued--;
        if (GetTickCount64() - t->arrived >= s->o->timeout_ms) {
            ph_request_error(t->req, PH_ETIMEDOUT, "waited too long in the "
                             "provider's queue");
            task_free(t);
            continue;
        }
        r = calloc(1, sizeof *r);
        if (r == NULL || (r->job = CreateJobObjectA(NULL, NULL)) == NULL) {
            free(r);
            ph_request_error(t->req, PH_EINTERNAL, "provider out of "
                             "resources");
            task_free(t);
            continue;
        }
        r->cmd = s->cmd;
        r->route = s->route;
        r->timeout_ms = s->o->timeout_ms;
        r->max_reply = s->max_reply;
        r->seq = ++s->seq;
        r->t = t;
        s->worker = CreateThread(NULL, 0, run_command, r, 0, NULL);
        if (s->worker == NULL) {
            ph_request_error(t->req, PH_EINTERNAL, "provider cannot start a "
                             "thread");
            CloseHandle(r->job);
            free(r);
            task_free(t);
            continue;
        }
        s->running = r;
    }
}

/* The worker has ended: log what it did and free it. */
static void finish_run(server *s)
{
    run *r = s->running;

    WaitForSingleObject(s->worker, INFINITE);
    CloseHandle(s->worker);
    s->worker = NULL;
    if (!r->started)
        fprintf(stderr, "pipehub: conn %lu: the command did not start\n",
                (unsigned long)r->t->caller);
    else if (r->timed_out)
        fprintf(stderr, "pipehub: conn %lu: stopped after %lu ms\n",
                (unsigned long)r->t->caller, (unsigned long)r->took_ms);
    else
        fprintf(stderr, "pipehub: conn %lu: exit code %lu, %lu bytes%s, "
                "%lu ms\n", (unsigned long)r->t->caller,
                (unsigned long)r->exit_code, (unsigned long)r->out_len,
                r->too_big ? " (too large)" : "", (unsigned long)r->took_ms);
    CloseHandle(r->job);
    task_free(r->t);
    free(r);
    s->running = NULL;
}

/* Stop the command in progress (Ctrl+C or the connection is gone): kill
 * it, and wait for its worker, which answers before it ends. */
static void stop_run(server *s)
{
    if (s->running == NULL)
        return;
    TerminateJobObject(s->running->job, 1);
    if (WaitForSingleObject(s->worker, WORKER_JOIN_MS) != WAIT_OBJECT_0) {
        /* Leave rather than free what the worker still uses. */
        fputs("pipehub: the command's worker did not stop\n", stderr);
        ExitProcess(EXIT_NO_ANSWER);
    }
    finish_run(s);
}

/* The hub's limit on a frame and our connection id, from sys.hello. */
static int hello(const cli *o, ph_client *c, server *s, char *conn, size_t cap)
{
    char max[24];
    uint32_t v;
    ph_reply r;
    ph_err err;

    err = ph_client_call(c, "sys.hello", "pipehub-serve", 13, o->timeout_ms,
                         &r);
    if (err != PH_OK)
        return ph_cli_report_failure(o, "sys.hello", err);
    s->max_reply = PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN;
    snprintf(conn, cap, "?");
    if (r.kind == PH_REPLY) {
        if (ph_cli_json_get((const char *)r.payload, r.payload_len,
                            "max_frame", max, sizeof max) == 1 &&
            ph_cli_parse_u32(max, PH_FRAME_HEADER_LEN + 1, UINT32_MAX, &v))
            s->max_reply = v - PH_FRAME_HEADER_LEN;
        ph_cli_json_get((const char *)r.payload, r.payload_len, "conn_id",
                        conn, cap);
    }
    ph_reply_free(&r);
    return EXIT_OK;
}

int ph_cli_serve(const cli *o, int argc, char **argv)
{
    char state[16], position[16], conn[24];
    unsigned flags = PH_REGISTER_SHARED;
    const char *describe = NULL;
    ph_cli_payload text = {0};
    char *dtext = NULL;
    ph_client *c = NULL;
    HANDLE wait[3], stop;
    server s;
    ph_reply answer = {0};
    ph_err err;
    task *t;
    DWORD n, w;
    int i, rc;

    memset(&s, 0, sizeof s);
    s.o = o;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--exclusive") == 0) {
            flags = PH_REGISTER_EXCLUSIVE;
        } else if (strcmp(argv[i], "--describe") == 0) {
            if (i + 1 >= argc)
                return ph_cli_usage_error("%s", "--describe needs TEXT or "
                                                "@FILE");
            describe = argv[++i];
        } else if (strcmp(argv[i], "--exec") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0')
                return ph_cli_usage_error("%s", "--exec needs a command");
            s.cmd = argv[++i];
        } else if (argv[i][0] == '-') {
            return ph_cli_usage_error("unknown option '%s'", argv[i]);
        } else if (s.route == NULL) {
            s.route = argv[i];
        } else {
            return ph_cli_usage_error("unexpected '%s'", argv[i]);
        }
    }
    if (s.route == NULL || s.cmd == NULL)
        return ph_cli_usage_error("%s", "serve needs ROUTE and --exec CMD");
    if (!ph_cli_pattern_ok(s.route) || strcmp(s.route, "*") == 0)
        return ph_cli_usage_error("'%s' is not a route (a name or "
                                  "\"prefix.*\")", s.route);
    /* The description: TEXT, or @FILE's bytes, as for a payload. */
    if (describe != NULL) {
        if ((rc = ph_cli_payload_read(describe, &text)) != EXIT_OK)
            return rc;
        if (text.len > PH_DESCRIBE_MAX || (dtext = malloc(text.len + 1)) ==
                                              NULL) {
            ph_cli_payload_free(&text);
            return ph_cli_usage_error("%s", "--describe: at most 16 KiB");
        }
        memcpy(dtext, text.data, text.len);
        dtext[text.len] = '\0';
        ph_cli_payload_free(&text);
    }
    if ((stop = ph_cli_stop_event()) == NULL) {
        fputs("pipehub: cannot watch for Ctrl+C\n", stderr);
        return EXIT_NO_ANSWER;
    }
    if ((rc = ph_cli_connect(o, &c)) != EXIT_OK)
        return rc;
    if ((rc = hello(o, c, &s, conn, sizeof conn)) != EXIT_OK)
        goto done;
    err = ph_client_subscribe(c, "sys.route.acquired", on_acquired, &s,
                              o->timeout_ms);
    if (err == PH_OK)
        err = ph_client_register_described(c, s.route, flags, dtext,
                                           on_request, &s, o->timeout_ms,
                                           &answer);
    if (err != PH_OK) {
        if (answer.kind == PH_ERROR)
            rc = ph_cli_report_error_reply(&answer);
        else
            rc = ph_cli_report_hub_err(o, "sys.register", err);
        ph_reply_free(&answer);
        goto done;
    }
    if (ph_cli_json_get((const char *)answer.payload, answer.payload_len,
                        "state", state, sizeof state) == 1 &&
        strcmp(state, "waiting") == 0) {
        if (ph_cli_json_get((const char *)answer.payload, answer.payload_len,
                            "position", position, sizeof position) != 1)
            strcpy(position, "?");
        fprintf(stderr, "pipehub: conn %s waits for '%s' (exclusive), "
                "position %s\n", conn, s.route, position);
    } else {
        fprintf(stderr, "pipehub: conn %s serves '%s' (%s)\n", conn, s.route,
                flags == PH_REGISTER_EXCLUSIVE ? "exclusive" : "shared");
    }
    ph_reply_free(&answer);

    for (;;) {
        n = 0;
        wait[n++] = ph_client_waitable(c);
        wait[n++] = stop;
        if (s.running != NULL)
            wait[n++] = s.worker;
        w = WaitForMultipleObjects(n, wait, FALSE, INFINITE);
        if (w == WAIT_OBJECT_0 + 1) {
            rc = EXIT_OK;
            break;
        }
        if (w == WAIT_OBJECT_0 + 2)
            finish_run(&s);
        if (w == WAIT_FAILED) {
            fprintf(stderr, "pipehub: wait failed: %lu\n",
                    (unsigned long)GetLastError());
            rc = EXIT_NO_ANSWER;
            break;
        }
        /* Also after the worker ended: its answer is in the client's
         * queue, and this writes it. */
        if ((err = ph_client_poll(c, 0, NULL)) != PH_OK) {
            rc = ph_cli_report_failure(o, s.route, err);
            break;
        }
        start_next(&s);
    }
    stop_run(&s);
    /* Answers already queued leave before the connection closes. */
    ph_client_flush(c, o->timeout_ms);
done:
    /* Requests never started: the library frees their handles at close,
     * and the hub answers their callers UNAVAILABLE. */
    while ((t = s.head) != NULL) {
        s.head = t->next;
        task_free(t);
    }
    ph_client_close(c);
    free(dtext);
    return rc;
}
