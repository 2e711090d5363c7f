/* Integration tests: a real pipehubd.exe driven over its named pipe.
 *
 *   test_server CASE PATH_TO_PIPEHUBD_EXE   run one case (see CASES below)
 *   test_server hold N PIPE                 helper for tests/wine/ctrl_c.sh
 *
 * Each case starts its own daemon on its own pipe name (ph-CASE-PID), talks to
 * it with the small raw client below, and finally checks that the daemon is
 * still alive: a server must survive any client, however broken. The raw
 * client builds frames with the common/ codec, except where a test needs bytes
 * the codec refuses to produce (malformed headers), which are built by hand.
 *
 * Every wait has a timeout, so a hung server fails a test instead of hanging
 * it: reads are overlapped and cancelled with CancelIoEx when time runs out. */
#include <windows.h>
#include <sddl.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "harness.h"
#include "wine_util.h"
#include "options.h"
#include "pipehub.h"

#define IO_TIMEOUT_MS 10000u      /* one read or write */
#define CONNECT_TIMEOUT_MS 20000u /* waiting for the pipe to be served */
#define READ_CHUNK (64u * 1024u)  /* Wine moves 64 KiB reads best */
/* The client accepts larger frames than any server should send, so an
 * oversized reply shows up as a wrong size rather than a decoder error. */
#define CLIENT_MAX_FRAME (8u * PH_MAX_FRAME_DEFAULT)

static const char *g_case;       /* the case being run, for pipe names */
static char g_daemon_exe[MAX_PATH * 2];

/* ---- small utilities ------------------------------------------------------ */

static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("  ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* xorshift64*: reproducible payloads from a printed seed. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static uint64_t g_seed;

static void fill_random(uint64_t *s, uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(s) >> 56);
}

static uint64_t ms_now(void) { return GetTickCount64(); }

static DWORD ms_left(uint64_t deadline)
{
    uint64_t now = ms_now();

    return now >= deadline ? 0 : (DWORD)(deadline - now);
}

/* ---- the daemon under test ------------------------------------------------ */

typedef struct daemon {
    PROCESS_INFORMATION pi;
    char pipe[PH_PIPE_PATH_MAX + 1]; /* full \\.\pipe\ path */
} daemon;

#define MAX_DAEMONS 4
static daemon g_daemons[MAX_DAEMONS];
static int g_ndaemons;
static HANDLE g_job; /* kills the daemons if this process dies first */
static int g_ready_when_denied; /* daemon_start: access denied = serving */

static int resolve_exe(const char *path)
{
    return ph_dos_path(path, g_daemon_exe, sizeof g_daemon_exe);
}

static int daemon_alive(const daemon *d, DWORD *exit_code)
{
    if (WaitForSingleObject(d->pi.hProcess, 0) == WAIT_TIMEOUT)
        return 1;
    if (!GetExitCodeProcess(d->pi.hProcess, exit_code))
        *exit_code = (DWORD)-1;
    return 0;
}

/* Open the pipe, waiting while it does not exist yet or every instance is
 * busy. Returns INVALID_HANDLE_VALUE with *err set when time runs out. */
static HANDLE open_pipe(const char *pipe, uint32_t timeout_ms, DWORD *err)
{
    uint64_t deadline = ms_now() + timeout_ms;

    for (;;) {
        HANDLE h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                               OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        DWORD e, left;

        if (h != INVALID_HANDLE_VALUE)
            return h;
        e = GetLastError();
        left = ms_left(deadline);
        if (left == 0 || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND)) {
            *err = e;
            return INVALID_HANDLE_VALUE;
        }
        /* Busy: all instances are taken; wait for one to be re-listened.
         * Not found: the daemon is still starting (or between instances). */
        if (e == ERROR_PIPE_BUSY)
            WaitNamedPipeA(pipe, left < 1000 ? left : 1000);
        else
            Sleep(20);
    }
}

/* Start "pipehubd run --pipe NAME EXTRA" with our stderr, and wait until its
 * pipe can be opened. name may be bare or a full path; d->pipe is the full
 * path either way. */
static int daemon_start(const char *name, const char *extra, daemon **out)
{
    STARTUPINFOA si;
    daemon *d;
    char cmd[1024];
    uint64_t deadline;

    if (g_ndaemons == MAX_DAEMONS)
        return -1;
    d = &g_daemons[g_ndaemons];
    memset(d, 0, sizeof *d);
    if (ph_pipe_path(name, d->pipe, sizeof d->pipe) != PH_OK) {
        fprintf(stderr, "bad pipe name %s\n", name);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "\"%s\" run --pipe %s%s%s", g_daemon_exe, name,
             extra ? " " : "", extra ? extra : "");

    /* Inherit our std handles explicitly so the daemon's log lands in the
     * test output even when stdio is a pipe from ctest. */
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_ERROR_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    SetHandleInformation(si.hStdInput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    SetHandleInformation(si.hStdError, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    say("starting: %s", cmd);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si,
                        &d->pi)) {
        fprintf(stderr, "CreateProcess(%s) failed: %lu\n", cmd,
                (unsigned long)GetLastError());
        return -1;
    }
    g_ndaemons++;
    if (g_job)
        AssignProcessToJobObject(g_job, d->pi.hProcess);

    deadline = ms_now() + CONNECT_TIMEOUT_MS;
    for (;;) {
        DWORD code, e = 0;
        HANDLE h;

        if (!daemon_alive(d, &code)) {
            fprintf(stderr, "pipehubd exited with %lu before serving %s\n",
                    (unsigned long)code, d->pipe);
            return -1;
        }
        h = open_pipe(d->pipe, 250, &e);
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            break;
        }
        /* A daemon whose DACL keeps us out is serving all the same. */
        if (g_ready_when_denied && e == ERROR_ACCESS_DENIED)
            break;
        if (ms_left(deadline) == 0) {
            fprintf(stderr, "%s not served after %u ms (last error %lu)\n",
                    d->pipe, CONNECT_TIMEOUT_MS, (unsigned long)e);
            return -1;
        }
    }
    *out = d;
    return 0;
}

static void daemons_stop(void)
{
    int i;

    for (i = 0; i < g_ndaemons; i++) {
        daemon *d = &g_daemons[i];
        TerminateProcess(d->pi.hProcess, 1);
        WaitForSingleObject(d->pi.hProcess, 10000);
        CloseHandle(d->pi.hProcess);
        CloseHandle(d->pi.hThread);
    }
    g_ndaemons = 0;
}

/* The pipe name for this case: ph-CASE-PID, plus a suffix for a second
 * daemon. Each run gets its own name so parallel ctest jobs never meet. */
static void case_pipe(char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "ph-%s-%lu%s", g_case,
             (unsigned long)GetCurrentProcessId(), suffix);
}

/* ---- the raw client --------------------------------------------------------- */

typedef struct conn {
    HANDLE pipe;
    HANDLE read_event;
    HANDLE write_event;
    OVERLAPPED read_ov;
    OVERLAPPED write_ov;
    int write_pending;      /* write_ov is in flight */
    DWORD write_len;        /* bytes the pending write should move */
    ph_decoder dec;         /* replies arrive as a byte stream */
    uint8_t *in;            /* received bytes not yet given to dec */
    size_t in_len, in_off;
    char why[400];          /* the last failure, for the test's message */
} conn;

static void conn_close(conn *c)
{
    if (!c)
        return;
    if (c->pipe != INVALID_HANDLE_VALUE && c->pipe != NULL) {
        /* A write still queued (a test gave up on it) must be cancelled and
         * finished before its OVERLAPPED goes away with c. */
        if (c->write_pending) {
            DWORD n;
            CancelIoEx(c->pipe, &c->write_ov);
            GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE);
        }
        CloseHandle(c->pipe);
    }
    if (c->read_event)
        CloseHandle(c->read_event);
    if (c->write_event)
        CloseHandle(c->write_event);
    ph_decoder_free(&c->dec);
    free(c->in);
    free(c);
}

/* Connect to pipe. Returns NULL (and prints why) on failure. */
static conn *conn_open(const char *pipe)
{
    conn *c = calloc(1, sizeof *c);
    DWORD e = 0;

    if (!c)
        return NULL;
    c->pipe = INVALID_HANDLE_VALUE;
    c->in = malloc(READ_CHUNK);
    c->read_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->write_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!c->in || !c->read_event || !c->write_event)
        goto fail;
    ph_decoder_init(&c->dec, CLIENT_MAX_FRAME);
    c->pipe = open_pipe(pipe, CONNECT_TIMEOUT_MS, &e);
    if (c->pipe == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "open %s failed: error %lu\n", pipe, (unsigned long)e);
        goto fail;
    }
    return c;

fail:
    conn_close(c);
    return NULL;
}

static int pipe_closed_error(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA ||
           e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_HANDLE_EOF;
}

/* Set c->why. The arguments may include c->why itself (a helper adding
 * context to a lower one's reason), so format into a copy first. */
static int failf(conn *c, const char *fmt, ...)
{
    char tmp[sizeof c->why];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(c->why, tmp, sizeof tmp);
    return -1;
}

/* Queue a write of data (which must stay valid until conn_write_finish).
 * Returns 0, or -1 with c->why. A write refused because the server already
 * closed sets c->why to "closed". */
static int conn_write_start(conn *c, const void *data, size_t len)
{
    DWORD e;

    if (c->write_pending)
        return failf(c, "a write is already pending");
    ResetEvent(c->write_event);
    memset(&c->write_ov, 0, sizeof c->write_ov);
    c->write_ov.hEvent = c->write_event;
    c->write_len = (DWORD)len;
    if (WriteFile(c->pipe, data, (DWORD)len, NULL, &c->write_ov) ||
        (e = GetLastError()) == ERROR_IO_PENDING) {
        c->write_pending = 1;
        return 0;
    }
    if (pipe_closed_error(e))
        return failf(c, "closed (write error %lu)", (unsigned long)e);
    return failf(c, "WriteFile failed: error %lu", (unsigned long)e);
}

static int conn_write_finish(conn *c, uint32_t timeout_ms)
{
    DWORD n = 0, e;

    if (!c->write_pending)
        return 0;
    if (WaitForSingleObject(c->write_event, timeout_ms) != WAIT_OBJECT_0)
        CancelIoEx(c->pipe, &c->write_ov);
    c->write_pending = 0;
    if (!GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE)) {
        e = GetLastError();
        if (e == ERROR_OPERATION_ABORTED)
            return failf(c, "write of %lu bytes timed out after %u ms "
                         "(server not reading)", (unsigned long)c->write_len,
                         timeout_ms);
        return failf(c, "write failed: error %lu", (unsigned long)e);
    }
    if (n != c->write_len)
        return failf(c, "short write: %lu of %lu bytes", (unsigned long)n,
                     (unsigned long)c->write_len);
    return 0;
}

static int conn_write(conn *c, const void *data, size_t len)
{
    /* A megabyte crosses wineserver in 64 KiB steps; allow it time. */
    if (conn_write_start(c, data, len) != 0)
        return -1;
    return conn_write_finish(c, 2 * IO_TIMEOUT_MS);
}

/* One overlapped read into c->in. PH_OK with *got bytes, PH_ECLOSED when the
 * server closed the pipe, PH_ETIMEDOUT, or PH_ESYSERR + code. */
static ph_err read_some(conn *c, DWORD timeout_ms, DWORD *got)
{
    DWORD n = 0, e;

    ResetEvent(c->read_event);
    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (!ReadFile(c->pipe, c->in, READ_CHUNK, NULL, &c->read_ov)) {
        e = GetLastError();
        if (e != ERROR_IO_PENDING)
            return pipe_closed_error(e) ? PH_ECLOSED
                                        : (ph_err)(PH_ESYSERR + e);
        if (WaitForSingleObject(c->read_event, timeout_ms) != WAIT_OBJECT_0)
            CancelIoEx(c->pipe, &c->read_ov);
    }
    /* After a cancel this waits for the read to finish either way; data that
     * slipped in just before the cancel still counts. */
    if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE)) {
        e = GetLastError();
        if (e == ERROR_OPERATION_ABORTED)
            return PH_ETIMEDOUT;
        return pipe_closed_error(e) ? PH_ECLOSED : (ph_err)(PH_ESYSERR + e);
    }
    *got = n;
    return PH_OK;
}

/* Read the next frame. On PH_OK *f points into c's buffers until the next
 * read. Otherwise c->why says what happened: PH_ECLOSED (pipe closed),
 * PH_ETIMEDOUT, a decoder error (the server sent a malformed stream), or a
 * system error. */
static ph_err conn_read(conn *c, ph_frame *f, uint32_t timeout_ms)
{
    uint64_t deadline = ms_now() + timeout_ms;

    for (;;) {
        size_t used = 0;
        DWORD got = 0;
        ph_err err;

        if (c->in_off < c->in_len) {
            err = ph_decoder_next(&c->dec, c->in + c->in_off,
                                  c->in_len - c->in_off, &used, f);
            if (err == PH_OK) {
                c->in_off += used;
                return PH_OK;
            }
            if (err != PH_EAGAIN) {
                failf(c, "server sent a malformed stream: %s (%s)",
                      ph_strerror(err), c->dec.why);
                return err;
            }
        }
        /* Everything held has gone into the decoder. */
        c->in_off = c->in_len = 0;
        err = read_some(c, ms_left(deadline), &got);
        if (err == PH_ECLOSED) {
            failf(c, "closed by the server%s",
                  ph_decoder_idle(&c->dec) ? "" : " in the middle of a frame");
            return err;
        }
        if (err == PH_ETIMEDOUT) {
            failf(c, "no frame within %u ms", timeout_ms);
            return err;
        }
        if (err != PH_OK) {
            failf(c, "ReadFile failed: error %lu",
                  (unsigned long)(err - PH_ESYSERR));
            return err;
        }
        /* A zero-byte read is not an end of stream on a pipe: read again. */
        c->in_len = got;
    }
}

static void describe(const ph_frame *f, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "kind %u id %lu status %lu route_len %u payload_len %lu",
                     f->kind, (unsigned long)f->id, (unsigned long)f->status,
                     f->route_len, (unsigned long)f->payload_len);
    if (f->kind == PH_ERROR && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " message \"%.*s\"",
                 (int)(f->payload_len > 120 ? 120 : f->payload_len),
                 (const char *)f->payload);
}

static int append_request(ph_buf *b, const char *route, uint32_t id,
                          const void *payload, size_t len)
{
    ph_frame f;

    memset(&f, 0, sizeof f);
    f.kind = PH_REQUEST;
    f.id = id;
    f.route = route;
    f.route_len = (uint8_t)strlen(route);
    f.payload = payload;
    f.payload_len = (uint32_t)len;
    return ph_frame_append(b, &f) == PH_OK ? 0 : -1;
}

/* Send one REQUEST (built by the codec) in one WriteFile. */
static int send_request(conn *c, const char *route, uint32_t id,
                        const void *payload, size_t len)
{
    ph_buf b = {0};
    int rc;

    if (append_request(&b, route, id, payload, len) != 0) {
        ph_buf_free(&b);
        return failf(c, "could not encode a request to %s", route);
    }
    rc = conn_write(c, b.data, b.len);
    ph_buf_free(&b);
    return rc;
}

/* Read one frame and require a REPLY to id carrying exactly payload. */
static int expect_reply(conn *c, uint32_t id, const void *payload, size_t len)
{
    ph_frame f;
    char d[300];

    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for the reply to id %lu: %s",
                     (unsigned long)id, c->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0 || f.route_len != 0)
        return failf(c, "expected REPLY id %lu status 0 with no route, got %s",
                     (unsigned long)id, d);
    if (f.payload_len != len)
        return failf(c, "reply to id %lu: payload_len %lu, expected %lu",
                     (unsigned long)id, (unsigned long)f.payload_len,
                     (unsigned long)len);
    if (len && memcmp(f.payload, payload, len) != 0)
        return failf(c, "reply to id %lu: %lu payload bytes differ",
                     (unsigned long)id, (unsigned long)len);
    return 0;
}

/* Read one frame and require an ERROR with id and code and a message. */
static int expect_error(conn *c, uint32_t id, ph_err code)
{
    ph_frame f;
    char d[300];

    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for ERROR %s id %lu: %s", ph_err_name(code),
                     (unsigned long)id, c->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_ERROR || f.id != id || f.status != (uint32_t)code ||
        f.route_len != 0)
        return failf(c, "expected ERROR %s (%d) id %lu, got %s",
                     ph_err_name(code), (int)code, (unsigned long)id, d);
    if (f.payload_len == 0)
        return failf(c, "ERROR %s carries no message", ph_err_name(code));
    return 0;
}

/* Require that the server closes the connection (no more frames). */
static int expect_closed(conn *c)
{
    ph_frame f;
    ph_err err = conn_read(c, &f, IO_TIMEOUT_MS);
    char d[300];

    if (err == PH_ECLOSED)
        return 0;
    if (err == PH_OK) {
        describe(&f, d, sizeof d);
        return failf(c, "expected the pipe to close, got another frame: %s", d);
    }
    return failf(c, "expected the pipe to close: %s", c->why);
}

/* A whole round trip: send to route, require the reply to echo want. */
static int round_trip(conn *c, const char *route, uint32_t id,
                      const void *payload, size_t len, const void *want,
                      size_t want_len)
{
    if (send_request(c, route, id, payload, len) != 0)
        return -1;
    return expect_reply(c, id, want, want_len);
}

static int echo(conn *c, uint32_t id, const void *payload, size_t len)
{
    return round_trip(c, "sys.echo", id, payload, len, payload, len);
}

static int ping(conn *c, uint32_t id)
{
    return round_trip(c, "sys.ping", id, NULL, 0, NULL, 0);
}

/* Send a request and return its REPLY payload as a NUL-terminated string
 * (for the JSON routes). The caller frees it. */
static char *call_text(conn *c, const char *route, uint32_t id,
                       const char *payload)
{
    ph_frame f;
    char d[300], *s;

    if (send_request(c, route, id, payload, payload ? strlen(payload) : 0))
        return NULL;
    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return NULL;
    describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0) {
        failf(c, "%s: expected REPLY id %lu, got %s", route, (unsigned long)id,
              d);
        return NULL;
    }
    s = malloc(f.payload_len + 1u);
    if (!s) {
        failf(c, "out of memory");
        return NULL;
    }
    memcpy(s, f.payload, f.payload_len);
    s[f.payload_len] = '\0';
    return s;
}

/* Fail the running test with the helper's reason. */
#define CHECK_OK(c, expr)                                                     \
    do {                                                                      \
        if ((expr) != 0) {                                                    \
            PH_FAIL_HERE("%s: %s", #expr, (c)->why);                          \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_CONN(c, pipe)                                                   \
    do {                                                                      \
        (c) = conn_open(pipe);                                                \
        if (!(c)) {                                                           \
            PH_FAIL_HERE("could not connect to %s", (pipe));                  \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_DAEMON(name, extra, d)                                          \
    do {                                                                      \
        if (daemon_start((name), (extra), &(d)) != 0) {                       \
            PH_FAIL_HERE("pipehubd did not start on %s", (name));             \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_ALIVE(d)                                                        \
    do {                                                                      \
        DWORD ph__code = 0;                                                   \
        if (!daemon_alive((d), &ph__code)) {                                  \
            PH_FAIL_HERE("pipehubd on %s died, exit code %lu (0x%lx)",        \
                         (d)->pipe, (unsigned long)ph__code,                  \
                         (unsigned long)ph__code);                            \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- minimal JSON probing ----------------------------------------------- */

/* Where key's value starts in a flat JSON object, or NULL. Enough for the
 * sys.* replies: keys are plain and unique. */
static const char *json_value(const char *json, const char *key)
{
    char quoted[64];
    const char *p;

    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    p = strstr(json, quoted);
    if (!p)
        return NULL;
    p += strlen(quoted);
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static int json_u64(const char *json, const char *key, uint64_t *out)
{
    const char *p = json_value(json, key);
    char *end;

    if (!p || *p < '0' || *p > '9')
        return -1;
    *out = strtoull(p, &end, 10);
    return end == p ? -1 : 0;
}

static int json_is_string(const char *json, const char *key, const char *want)
{
    const char *p = json_value(json, key);
    size_t n;

    if (!p || *p != '"')
        return 0;
    if (!want)
        return strchr(p + 1, '"') != NULL;
    n = strlen(want);
    return strncmp(p + 1, want, n) == 0 && p[1 + n] == '"';
}

static int json_is_object(const char *json)
{
    size_t n = strlen(json);

    while (n && (json[n - 1] == ' ' || json[n - 1] == '\n' ||
                 json[n - 1] == '\r'))
        n--;
    while (*json == ' ' || *json == '\n' || *json == '\r') {
        json++;
        n--;
    }
    return n >= 2 && json[0] == '{' && json[n - 1] == '}';
}

/* ---- background echo workers ---------------------------------------------- */

/* One thread with its own connection doing echo round trips, either a fixed
 * number (rounds) or until *stop is set. */
typedef struct worker {
    const char *pipe;
    int index;
    int rounds;             /* 0: until stop */
    volatile LONG *stop;
    volatile LONG done;     /* round trips that succeeded */
    int failed;
    char why[500];
    HANDLE thread;
} worker;

static DWORD WINAPI worker_main(void *arg)
{
    worker *w = arg;
    uint64_t seed = g_seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(w->index + 1));
    uint8_t payload[1024];
    conn *c = conn_open(w->pipe);
    int i;

    if (!c) {
        w->failed = 1;
        snprintf(w->why, sizeof w->why, "worker %d could not connect",
                 w->index);
        return 0;
    }
    for (i = 0; w->rounds ? i < w->rounds : !*w->stop; i++) {
        /* Distinct payloads: random bytes led by the worker and round, so a
         * reply routed to the wrong connection or round cannot match. */
        size_t len = 8 + (size_t)(rng_next(&seed) % (sizeof payload - 8));
        uint32_t id = ((uint32_t)w->index << 20) | (uint32_t)(i + 1);

        fill_random(&seed, payload, len);
        ph_put_u32le(payload, (uint32_t)w->index);
        ph_put_u32le(payload + 4, (uint32_t)i);
        if (echo(c, id, payload, len) != 0) {
            w->failed = 1;
            snprintf(w->why, sizeof w->why, "worker %d round %d: %s",
                     w->index, i, c->why);
            break;
        }
        InterlockedIncrement(&w->done);
    }
    conn_close(c);
    return 0;
}

static int workers_start(worker *ws, int n, const char *pipe, int rounds,
                         volatile LONG *stop)
{
    int i;

    for (i = 0; i < n; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        ws[i].pipe = pipe;
        ws[i].index = i;
        ws[i].rounds = rounds;
        ws[i].stop = stop;
        ws[i].thread = CreateThread(NULL, 0, worker_main, &ws[i], 0, NULL);
        if (!ws[i].thread)
            return -1;
    }
    return 0;
}

/* Join all workers; returns the number still running at the deadline. */
static int workers_join(worker *ws, int n, uint32_t timeout_ms)
{
    uint64_t deadline = ms_now() + timeout_ms;
    int i, hung = 0;

    for (i = 0; i < n; i++) {
        if (!ws[i].thread)
            continue;
        if (WaitForSingleObject(ws[i].thread, ms_left(deadline)) !=
            WAIT_OBJECT_0) {
            hung++;
            continue;
        }
        CloseHandle(ws[i].thread);
        ws[i].thread = NULL;
    }
    return hung;
}

/* Wait until every worker has done at least min round trips (so they are
 * really busy when the test starts misbehaving). */
static int workers_warm(worker *ws, int n, LONG min, uint32_t timeout_ms)
{
    uint64_t deadline = ms_now() + timeout_ms;
    int i;

    for (;;) {
        int ready = 1;
        for (i = 0; i < n; i++) {
            if (ws[i].failed)
                return -1;
            if (ws[i].done < min)
                ready = 0;
        }
        if (ready)
            return 0;
        if (ms_left(deadline) == 0)
            return -1;
        Sleep(10);
    }
}

#define CHECK_WORKERS(ws, n)                                                  \
    do {                                                                      \
        int ph__i;                                                            \
        for (ph__i = 0; ph__i < (n); ph__i++) {                               \
            if ((ws)[ph__i].failed) {                                         \
                PH_FAIL_HERE("%s", (ws)[ph__i].why);                          \
                return;                                                       \
            }                                                                 \
        }                                                                     \
    } while (0)

/* ---- hand-built headers, for frames the codec refuses to encode --------- */

static void raw_header(uint8_t *h, uint32_t frame_len, uint8_t version,
                       uint8_t kind, uint8_t route_len, uint8_t flags,
                       uint32_t id)
{
    ph_put_u32le(h, frame_len);
    h[4] = version;
    h[5] = kind;
    h[6] = route_len;
    h[7] = flags;
    ph_put_u32le(h + 8, id);
    ph_put_u32le(h + 12, 0);
}

/* ---- cases ---------------------------------------------------------------- */

static void case_ping_echo_stats(void)
{
    char name[64];
    daemon *d;
    conn *c;
    uint64_t seed = g_seed;
    const size_t route_len = strlen("sys.echo");
    const size_t sizes[] = {0, 1, 2, 255, 4096, 64 * 1024, 64 * 1024 + 1,
                            PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN -
                                route_len};
    static const char *keys[] = {"uptime_ms", "connections_current",
                                 "connections_total", "frames_in",
                                 "frames_out", "bytes_in", "bytes_out",
                                 "errors_sent", "pending_instances"};
    uint64_t before[9], after[9];
    uint8_t *payload;
    char *s1, *s2;
    size_t i;
    uint32_t id = 1;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    CHECK_CONN(c, d->pipe);

    CHECK_OK(c, ping(c, id++));
    say("sys.ping ok");

    payload = malloc(PH_MAX_FRAME_DEFAULT);
    CHECK(payload != NULL);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_random(&seed, payload, sizes[i]);
        CHECK_OK(c, echo(c, id++, payload, sizes[i]));
        say("sys.echo of %lu bytes ok", (unsigned long)sizes[i]);
    }
    free(payload);

    s1 = call_text(c, "sys.stats", id++, NULL);
    CHECK_OK(c, s1 == NULL);
    say("stats: %s", s1);
    CHECK(json_is_object(s1));
    for (i = 0; i < 9; i++) {
        if (json_u64(s1, keys[i], &before[i]) != 0) {
            PH_FAIL_HERE("sys.stats has no number for \"%s\": %s", keys[i], s1);
            return;
        }
    }
    CHECK_OK(c, ping(c, id++));
    CHECK_OK(c, echo(c, id++, "counted", 7));
    s2 = call_text(c, "sys.stats", id++, NULL);
    CHECK_OK(c, s2 == NULL);
    say("stats: %s", s2);
    for (i = 0; i < 9; i++) {
        if (json_u64(s2, keys[i], &after[i]) != 0) {
            PH_FAIL_HERE("sys.stats has no number for \"%s\": %s", keys[i], s2);
            return;
        }
    }
    /* Between the two calls: ping, echo and the second stats came in (the
     * first stats' reply went out after it was counted, or not: >= 2). */
    CHECK(after[3] >= before[3] + 3);     /* frames_in */
    CHECK(after[4] >= before[4] + 2);     /* frames_out */
    CHECK(after[5] > before[5]);          /* bytes_in */
    CHECK(after[6] > before[6]);          /* bytes_out */
    CHECK(after[0] >= before[0]);         /* uptime_ms */
    CHECK(after[1] >= 1);                 /* connections_current: us */
    CHECK(after[2] >= 2);                 /* connections_total: probe + us */
    CHECK(after[2] >= after[1]);
    /* The echoes alone moved more than a megabyte each way. */
    CHECK(after[5] >= PH_MAX_FRAME_DEFAULT);
    CHECK(after[6] >= PH_MAX_FRAME_DEFAULT - PH_FRAME_HEADER_LEN);
    free(s1);
    free(s2);
    conn_close(c);
    CHECK_ALIVE(d);
}

static void case_concurrent64(void)
{
    enum { THREADS = 64, ROUNDS = 200 };
    static worker ws[THREADS];
    char name[64];
    daemon *d;
    conn *c;
    uint64_t t0;
    int hung, i;
    long total = 0;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    t0 = ms_now();
    CHECK(workers_start(ws, THREADS, d->pipe, ROUNDS, NULL) == 0);
    hung = workers_join(ws, THREADS, 150000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, THREADS);
    for (i = 0; i < THREADS; i++) {
        CHECK_EQ(ws[i].done, ROUNDS);
        total += ws[i].done;
    }
    say("%ld echo round trips on %d connections in %lu ms", total, THREADS,
        (unsigned long)(ms_now() - t0));
    CHECK_ALIVE(d);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 1));
    conn_close(c);
}

static void case_byte_at_a_time(void)
{
    char name[64];
    daemon *d;
    conn *c;
    ph_buf b = {0};
    uint64_t seed = g_seed;
    uint8_t big[300];
    static const char hello_name[] = "bytewise";
    size_t i;
    char *s;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    CHECK_CONN(c, d->pipe);

    fill_random(&seed, big, sizeof big);
    CHECK(append_request(&b, "sys.ping", 11, NULL, 0) == 0);
    CHECK(append_request(&b, "sys.echo", 12, "x", 1) == 0);
    CHECK(append_request(&b, "sys.echo", 13, big, sizeof big) == 0);
    CHECK(append_request(&b, "sys.echo", 14, NULL, 0) == 0);
    CHECK(append_request(&b, "no.such.route", 15, "?", 1) == 0);
    CHECK(append_request(&b, "sys.hello", 16, hello_name,
                         sizeof hello_name - 1) == 0);
    CHECK(append_request(&b, "sys.echo", 17, big, 100) == 0);
    say("writing %lu bytes of 7 frames, one byte per WriteFile",
        (unsigned long)b.len);
    for (i = 0; i < b.len; i++)
        CHECK_OK(c, conn_write(c, b.data + i, 1));
    ph_buf_free(&b);

    CHECK_OK(c, expect_reply(c, 11, NULL, 0));
    CHECK_OK(c, expect_reply(c, 12, "x", 1));
    CHECK_OK(c, expect_reply(c, 13, big, sizeof big));
    CHECK_OK(c, expect_reply(c, 14, NULL, 0));
    CHECK_OK(c, expect_error(c, 15, PH_ENOROUTE));
    {
        ph_frame f;
        char dsc[300];
        CHECK_EQ(conn_read(c, &f, IO_TIMEOUT_MS), PH_OK);
        describe(&f, dsc, sizeof dsc);
        if (f.kind != PH_REPLY || f.id != 16) {
            PH_FAIL_HERE("expected the sys.hello REPLY id 16, got %s", dsc);
            return;
        }
        s = malloc(f.payload_len + 1u);
        CHECK(s != NULL);
        memcpy(s, f.payload, f.payload_len);
        s[f.payload_len] = '\0';
        CHECK(json_is_string(s, "client", hello_name));
        free(s);
    }
    CHECK_OK(c, expect_reply(c, 17, big, 100));
    say("7 replies in order");
    /* And the connection is still in step afterwards. */
    CHECK_OK(c, ping(c, 18));
    conn_close(c);
    CHECK_ALIVE(d);
}

static void case_batch100(void)
{
    enum { N = 100 };
    char name[64];
    daemon *d;
    conn *c;
    ph_buf b = {0};
    uint64_t seed = g_seed;
    static uint8_t payloads[N][512];
    size_t lens[N];
    uint32_t ids[N];
    int i;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    CHECK_CONN(c, d->pipe);

    /* Ids are not sequential, so a server that makes them up (or reorders)
     * cannot pass by accident. */
    for (i = 0; i < N; i++) {
        ids[i] = (uint32_t)(rng_next(&seed) & 0x7fffffffu) | 1u;
        if (i % 3 == 2) {
            lens[i] = 0;
            CHECK(append_request(&b, "sys.ping", ids[i], NULL, 0) == 0);
        } else {
            lens[i] = (size_t)(rng_next(&seed) % sizeof payloads[i]);
            fill_random(&seed, payloads[i], lens[i]);
            CHECK(append_request(&b, "sys.echo", ids[i], payloads[i],
                                 lens[i]) == 0);
        }
    }
    say("one WriteFile of %lu bytes holding %d requests",
        (unsigned long)b.len, N);
    /* Read the replies while the write is in flight: a server may apply
     * back-pressure and stop reading until its replies are taken. */
    CHECK_OK(c, conn_write_start(c, b.data, b.len));
    for (i = 0; i < N; i++) {
        if (expect_reply(c, ids[i], payloads[i], lens[i]) != 0) {
            PH_FAIL_HERE("reply %d of %d: %s", i + 1, N, c->why);
            return;
        }
    }
    CHECK_OK(c, conn_write_finish(c, IO_TIMEOUT_MS));
    ph_buf_free(&b);
    say("%d replies in order with the right ids and payloads", N);
    CHECK_OK(c, ping(c, 1));
    conn_close(c);
    CHECK_ALIVE(d);
}

static void case_disconnect_midframe(void)
{
    enum { WORKERS = 4 };
    static worker ws[WORKERS];
    static volatile LONG stop;
    char name[64];
    daemon *d;
    conn *c;
    ph_buf b = {0};
    uint8_t payload[200], big_header[24];
    /* Cut points: inside frame_len, inside the header, right after it,
     * inside the route, inside the payload, one byte short. */
    const size_t cuts[] = {1, 3, 9, 16, 20, 100, 223};
    size_t i;
    int hung;
    LONG before = 0, after = 0;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    stop = 0;
    CHECK(workers_start(ws, WORKERS, d->pipe, 0, &stop) == 0);
    if (workers_warm(ws, WORKERS, 10, 30000) != 0) {
        stop = 1;
        workers_join(ws, WORKERS, 30000);
        CHECK_WORKERS(ws, WORKERS);
        PH_FAIL_HERE("the echo workers did not get going");
        return;
    }
    for (i = 0; i < WORKERS; i++)
        before += ws[i].done;

    memset(payload, 'p', sizeof payload);
    CHECK(append_request(&b, "sys.echo", 99, payload, sizeof payload) == 0);
    CHECK_EQ(b.len, 224);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_CONN(c, d->pipe);
        CHECK_OK(c, conn_write(c, b.data, cuts[i]));
        Sleep(20); /* let the server read the piece before the close */
        conn_close(c);
        say("wrote %lu of %lu bytes, closed", (unsigned long)cuts[i],
            (unsigned long)b.len);
    }
    /* A header announcing a full megabyte, then a close: the server may
     * have reserved room for it, and must let it go. */
    raw_header(big_header, PH_MAX_FRAME_DEFAULT, 1, PH_REQUEST, 8, 0, 7);
    memcpy(big_header + 16, "sys.echo", 8);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, conn_write(c, big_header, sizeof big_header));
    CHECK_OK(c, conn_write(c, payload, sizeof payload));
    Sleep(20);
    conn_close(c);
    say("announced 1 MiB, sent 224 bytes, closed");
    ph_buf_free(&b);

    /* The workers must keep going after all that. */
    Sleep(200);
    stop = 1;
    hung = workers_join(ws, WORKERS, 60000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, WORKERS);
    for (i = 0; i < WORKERS; i++)
        after += ws[i].done;
    say("workers did %ld round trips, %ld after the first cut", (long)after,
        (long)(after - before));
    CHECK(after > before);
    CHECK_ALIVE(d);

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 1));
    CHECK_OK(c, echo(c, 2, "after", 5));
    conn_close(c);
    say("a new client works afterwards");
}

/* Send a header announcing frame_len and the route that follows it, and
 * require ERROR TOO_LARGE id 0 and then a closed pipe. */
static int too_large_once(conn *c, uint32_t frame_len)
{
    uint8_t h[24];

    raw_header(h, frame_len, 1, PH_REQUEST, 8, 0, 1234);
    memcpy(h + 16, "sys.echo", 8);
    if (conn_write(c, h, sizeof h) != 0)
        return -1;
    if (expect_error(c, 0, PH_ETOOBIG) != 0)
        return -1;
    return expect_closed(c);
}

static void case_too_large(void)
{
    enum { WORKERS = 2 };
    static worker ws[WORKERS];
    static volatile LONG stop;
    char name[64], name_b[64], full_b[PH_PIPE_PATH_MAX + 1];
    daemon *d, *d2;
    conn *c;
    uint8_t *payload;
    uint64_t max_frame = 0;
    char *s;
    int hung;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    stop = 0;
    CHECK(workers_start(ws, WORKERS, d->pipe, 0, &stop) == 0);
    if (workers_warm(ws, WORKERS, 5, 30000) != 0) {
        stop = 1;
        workers_join(ws, WORKERS, 30000);
        CHECK_WORKERS(ws, WORKERS);
        PH_FAIL_HERE("the echo workers did not get going");
        return;
    }

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 1)); /* the connection was fine before */
    CHECK_OK(c, too_large_once(c, 0xFFFFFFFFu));
    conn_close(c);
    say("frame_len 0xFFFFFFFF: ERROR TOO_LARGE id 0, then closed");

    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, too_large_once(c, PH_MAX_FRAME_DEFAULT + 1));
    conn_close(c);
    say("frame_len 1 MiB + 1: ERROR TOO_LARGE id 0, then closed");

    stop = 1;
    hung = workers_join(ws, WORKERS, 60000);
    CHECK_EQ(hung, 0);
    CHECK_WORKERS(ws, WORKERS);
    say("the other clients kept working (%ld + %ld round trips)",
        (long)ws[0].done, (long)ws[1].done);
    CHECK_ALIVE(d);

    /* A second daemon with a small limit, named by its full path. */
    case_pipe(name_b, sizeof name_b, "-b");
    snprintf(full_b, sizeof full_b, "%s%s", PH_PIPE_PREFIX, name_b);
    CHECK_DAEMON(full_b, "--max-frame 4096", d2);
    CHECK_CONN(c, d2->pipe);
    s = call_text(c, "sys.hello", 1, NULL);
    CHECK_OK(c, s == NULL);
    say("hello: %s", s);
    CHECK(json_u64(s, "max_frame", &max_frame) == 0);
    CHECK_EQ(max_frame, 4096);
    free(s);
    /* Exactly the limit is allowed... */
    payload = calloc(1, 4096);
    CHECK(payload != NULL);
    CHECK_OK(c, echo(c, 2, payload, 4096 - PH_FRAME_HEADER_LEN - 8));
    free(payload);
    say("--max-frame 4096: a 4096-byte frame is echoed");
    /* ...one more byte is not. */
    CHECK_OK(c, too_large_once(c, 4097));
    conn_close(c);
    say("--max-frame 4096: frame_len 4097 gets TOO_LARGE id 0, then closed");
    CHECK_ALIVE(d2);
}

static void case_no_route(void)
{
    char name[64];
    daemon *d;
    conn *c;
    ph_buf b = {0};
    char long_route[PH_ROUTE_MAX + 1];
    static const char *routes[] = {"no.such.route", "sys.nothing", "sys",
                                   "a/b-c_d.e", "SYS.PING.X"};
    size_t i;
    uint32_t id = 100;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    CHECK_CONN(c, d->pipe);

    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        CHECK_OK(c, send_request(c, routes[i], id, "x", 1));
        CHECK_OK(c, expect_error(c, id, PH_ENOROUTE));
        id++;
        /* The connection stays usable. */
        CHECK_OK(c, ping(c, id++));
        say("%s: ERROR NO_ROUTE with its id; ping works after it", routes[i]);
    }
    memset(long_route, 'r', PH_ROUTE_MAX);
    long_route[PH_ROUTE_MAX] = '\0';
    CHECK_OK(c, send_request(c, long_route, 777, NULL, 0));
    CHECK_OK(c, expect_error(c, 777, PH_ENOROUTE));
    say("a 255-byte route: ERROR NO_ROUTE");

    /* Errors keep their place among replies sent together. */
    CHECK(append_request(&b, "sys.echo", 201, "a", 1) == 0);
    CHECK(append_request(&b, "nope", 202, NULL, 0) == 0);
    CHECK(append_request(&b, "sys.echo", 203, "b", 1) == 0);
    CHECK(append_request(&b, "nope", 204, NULL, 0) == 0);
    CHECK_OK(c, conn_write(c, b.data, b.len));
    ph_buf_free(&b);
    CHECK_OK(c, expect_reply(c, 201, "a", 1));
    CHECK_OK(c, expect_error(c, 202, PH_ENOROUTE));
    CHECK_OK(c, expect_reply(c, 203, "b", 1));
    CHECK_OK(c, expect_error(c, 204, PH_ENOROUTE));
    CHECK_OK(c, echo(c, 205, "still", 5));
    say("pipelined: replies and errors in request order");
    conn_close(c);
    CHECK_ALIVE(d);
}

typedef struct malformed {
    const char *what;
    uint8_t bytes[64];
    size_t len;
} malformed;

static void case_bad_frame(void)
{
    char name[64];
    daemon *d;
    conn *c;
    malformed m[16];
    size_t n = 0, i;
    ph_buf b = {0};

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);

    /* Each is a sys.ping REQUEST (id 42) broken in one way. */
#define PING(what_, len_, ver_, kind_, rlen_, flags_, route_)                 \
    do {                                                                      \
        m[n].what = (what_);                                                  \
        raw_header(m[n].bytes, (len_), (ver_), (kind_), (rlen_), (flags_), 42); \
        memcpy(m[n].bytes + 16, (route_), strlen(route_));                    \
        m[n].len = 16 + strlen(route_);                                       \
        n++;                                                                  \
    } while (0)
    PING("version 2", 24, 2, PH_REQUEST, 8, 0, "sys.ping");
    PING("version 0", 24, 0, PH_REQUEST, 8, 0, "sys.ping");
    PING("flags 0x01", 24, 1, PH_REQUEST, 8, 0x01, "sys.ping");
    PING("flags 0x80", 24, 1, PH_REQUEST, 8, 0x80, "sys.ping");
    PING("kind 9", 24, 1, 9, 8, 0, "sys.ping");
    PING("kind 0", 24, 1, 0, 8, 0, "sys.ping");
    PING("frame_len 8", 8, 1, PH_REQUEST, 0, 0, "");
    PING("frame_len 0", 0, 1, PH_REQUEST, 0, 0, "");
    PING("route_len 10 past frame_len 20", 20, 1, PH_REQUEST, 10, 0, "sys.");
    PING("route with a space", 24, 1, PH_REQUEST, 8, 0, "sys ping");
    PING("route with byte 0xC3", 24, 1, PH_REQUEST, 8, 0, "sys.\xC3ing");
    PING("REQUEST without a route", 16, 1, PH_REQUEST, 0, 0, "");
#undef PING

    for (i = 0; i < n; i++) {
        CHECK_CONN(c, d->pipe);
        CHECK_OK(c, conn_write(c, m[i].bytes, m[i].len));
        if (expect_error(c, 0, PH_EBADFRAME) != 0 || expect_closed(c) != 0) {
            PH_FAIL_HERE("%s: %s", m[i].what, c->why);
            conn_close(c);
            return;
        }
        conn_close(c);
        say("%s: ERROR BAD_FRAME id 0, then closed", m[i].what);
    }

    /* A good request and a bad frame in one write: the good one is answered
     * first, then the error, then the close. */
    CHECK(append_request(&b, "sys.echo", 5, "good", 4) == 0);
    CHECK(ph_buf_append(&b, m[0].bytes, m[0].len) == PH_OK);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, conn_write(c, b.data, b.len));
    ph_buf_free(&b);
    CHECK_OK(c, expect_reply(c, 5, "good", 4));
    CHECK_OK(c, expect_error(c, 0, PH_EBADFRAME));
    CHECK_OK(c, expect_closed(c));
    conn_close(c);
    say("good then bad: REPLY, ERROR BAD_FRAME, closed");

    CHECK_ALIVE(d);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 1));
    conn_close(c);
}

static void case_hello(void)
{
    char name[64];
    daemon *d;
    conn *c;
    uint64_t v = 0;
    char *s;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    CHECK_CONN(c, d->pipe);

    s = call_text(c, "sys.hello", 1, NULL);
    CHECK_OK(c, s == NULL);
    say("hello: %s", s);
    CHECK(json_is_object(s));
    CHECK(json_is_string(s, "server", NULL));
    CHECK(json_value(s, "version") != NULL);
    CHECK(json_u64(s, "protocol", &v) == 0);
    CHECK_EQ(v, 1);
    CHECK(json_u64(s, "max_frame", &v) == 0);
    CHECK_EQ(v, PH_MAX_FRAME_DEFAULT);
    free(s);

    s = call_text(c, "sys.hello", 2, "mytool");
    CHECK_OK(c, s == NULL);
    say("hello mytool: %s", s);
    CHECK(json_is_object(s));
    CHECK(strstr(s, "mytool") != NULL);
    CHECK(json_is_string(s, "client", "mytool"));
    CHECK(json_u64(s, "protocol", &v) == 0);
    CHECK_EQ(v, 1);
    free(s);
    conn_close(c);
    CHECK_ALIVE(d);
}

static void case_client_library(void)
{
    char name[64], missing[64];
    daemon *d;
    ph_client *cl = NULL;
    ph_reply r;
    ph_err err;
    uint8_t *big;
    uint64_t seed = g_seed;
    const size_t big_len = 64 * 1024;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);

    /* Bare name. */
    err = ph_client_connect(name, 5000, &cl);
    CHECK_EQ(err, PH_OK);
    CHECK(cl != NULL);

    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", "abc", 3, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.payload_len, 3);
    CHECK_MEM(r.payload, "abc", 3);
    CHECK_EQ(r.payload[3], '\0'); /* NUL-terminated for convenience */
    ph_reply_free(&r);
    say("sys.echo \"abc\" ok");

    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.ping", NULL, 0, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, 0);
    ph_reply_free(&r);
    say("sys.ping ok");

    big = malloc(big_len);
    CHECK(big != NULL);
    fill_random(&seed, big, big_len);
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", big, big_len, 10000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, big_len);
    CHECK_MEM(r.payload, big, big_len);
    ph_reply_free(&r);
    free(big);
    say("sys.echo of 64 KiB ok");

    /* An ERROR frame is an answer: PH_OK with kind ERROR. */
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "no.such.route", "x", 1, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_ERROR);
    CHECK_EQ(r.status, PH_ENOROUTE);
    ph_reply_free(&r);
    say("unknown route: kind ERROR status NO_ROUTE");

    /* And the connection still works after it. */
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.echo", "again", 5, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    CHECK_EQ(r.payload_len, 5);
    CHECK_MEM(r.payload, "again", 5);
    ph_reply_free(&r);
    ph_client_close(cl);
    cl = NULL;

    /* Full path name. */
    err = ph_client_connect(d->pipe, 5000, &cl);
    CHECK_EQ(err, PH_OK);
    memset(&r, 0, sizeof r);
    err = ph_client_call(cl, "sys.ping", NULL, 0, 5000, &r);
    CHECK_EQ(err, PH_OK);
    CHECK_EQ(r.kind, PH_REPLY);
    ph_reply_free(&r);
    ph_client_close(cl);
    cl = NULL;
    say("connect by full path ok");

    /* Nothing serves this name: PH_ENOTFOUND, and promptly. */
    case_pipe(missing, sizeof missing, "-missing");
    {
        uint64_t t0 = ms_now();
        err = ph_client_connect(missing, 3000, &cl);
        CHECK_EQ(err, PH_ENOTFOUND);
        CHECK(cl == NULL);
        say("missing pipe: PH_ENOTFOUND after %lu ms",
            (unsigned long)(ms_now() - t0));
    }
    CHECK_ALIVE(d);
}

/* After the case: every daemon it started must still be running. */
/* ---- settings from a config file (issue 3) --------------------------------- */

/* Write text to a fresh .ini file in the temp folder; its path goes to out. */
static int write_ini(const char *text, char *out, size_t cap)
{
    char dir[MAX_PATH];
    FILE *f;

    if (!GetTempPathA(sizeof dir, dir))
        return -1;
    snprintf(out, cap, "%sph-%s-%lu-%lu.ini", dir, g_case,
             (unsigned long)GetCurrentProcessId(), (unsigned long)GetTickCount());
    f = fopen(out, "wb");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return 0;
}

/* Run "pipehubd run ARGS" and wait for it to exit on its own; *code gets its
 * exit code. -1 when it is still running after timeout_ms (it is killed). */
static int run_to_exit(const char *args, uint32_t timeout_ms, DWORD *code)
{
    PROCESS_INFORMATION pi;
    STARTUPINFOA si;
    char cmd[1024];
    int rc = 0;

    snprintf(cmd, sizeof cmd, "\"%s\" run %s", g_daemon_exe, args);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    say("running: %s", cmd);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        return -1;
    if (g_job)
        AssignProcessToJobObject(g_job, pi.hProcess);
    if (WaitForSingleObject(pi.hProcess, timeout_ms) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        rc = -1;
    } else if (!GetExitCodeProcess(pi.hProcess, code)) {
        rc = -1;
    }
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    return rc;
}

static void case_max_connections(void)
{
    char name[64], ini[MAX_PATH + 64], extra[MAX_PATH + 80];
    conn *a, *b, *c, *d2;
    daemon *d;

    CHECK(write_ini("[server]\npending_instances = 1\nmax_connections = 2\n",
                    ini, sizeof ini) == 0);
    snprintf(extra, sizeof extra, "--config \"%s\"", ini);
    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, extra, d);
    CHECK_CONN(a, d->pipe);
    CHECK_OK(a, ping(a, 1));
    CHECK_CONN(b, d->pipe);
    CHECK_OK(b, ping(b, 1));
    /* The third is told why, then closed; the first two do not notice. */
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, expect_error(c, 0, PH_EBUSY));
    CHECK_OK(c, expect_closed(c));
    conn_close(c);
    CHECK_OK(a, echo(a, 2, "still here", 10));
    CHECK_OK(b, echo(b, 2, "me too", 6));
    /* A freed slot serves the next client. */
    conn_close(b);
    Sleep(300);
    CHECK_CONN(d2, d->pipe);
    CHECK_OK(d2, ping(d2, 1));
    conn_close(d2);
    conn_close(a);
    DeleteFileA(ini);
    CHECK_ALIVE(d);
}

static void case_idle_timeout(void)
{
    char name[64], ini[MAX_PATH + 64], extra[MAX_PATH + 80];
    conn *idle, *busy;
    daemon *d;
    uint64_t start;
    int i;

    CHECK(write_ini("[limits]\nidle_timeout_ms = 1500\n", ini, sizeof ini) == 0);
    snprintf(extra, sizeof extra, "--config \"%s\"", ini);
    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, extra, d);
    CHECK_CONN(idle, d->pipe);
    CHECK_OK(idle, ping(idle, 1));
    CHECK_CONN(busy, d->pipe);
    start = ms_now();
    /* busy talks every 250 ms for 4 s; idle says nothing and is closed
     * between 1.5 s and 1.5 s + one check (1 s) + slack. */
    for (i = 0; i < 16; i++) {
        CHECK_OK(busy, ping(busy, (uint32_t)i + 1));
        Sleep(250);
    }
    CHECK_OK(idle, expect_closed(idle));
    say("idle connection closed; busy one still served after %llu ms",
        (unsigned long long)(ms_now() - start));
    CHECK_OK(busy, ping(busy, 99));
    conn_close(idle);
    conn_close(busy);
    DeleteFileA(ini);
    CHECK_ALIVE(d);
}

static void case_second_server(void)
{
    char name[64], args[200];
    DWORD code = 0;
    daemon *d;
    conn *c;

    case_pipe(name, sizeof name, "");
    CHECK_DAEMON(name, NULL, d);
    /* On Windows FILE_FLAG_FIRST_PIPE_INSTANCE refuses the second server;
     * Wine ignores that flag, and the probe open catches it there. */
    snprintf(args, sizeof args, "--pipe %s", name);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 1));
    conn_close(c);
    CHECK_ALIVE(d);
}

static void case_bad_config_refused(void)
{
    char ini[MAX_PATH + 64], args[MAX_PATH + 200], name[64];
    DWORD code = 0;

    case_pipe(name, sizeof name, "");
    /* An invalid security descriptor: the daemon must not start with some
     * other DACL than the one asked for. */
    CHECK(write_ini("[security]\nsddl = D:(this is not SDDL)\n", ini,
                    sizeof ini) == 0);
    snprintf(args, sizeof args, "--pipe %s --config \"%s\"", name, ini);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    DeleteFileA(ini);
    /* A file with a typo. */
    CHECK(write_ini("[server]\nmax_conections = 5\n", ini, sizeof ini) == 0);
    snprintf(args, sizeof args, "--pipe %s --config \"%s\"", name, ini);
    CHECK_EQ(run_to_exit(args, 15000, &code), 0);
    CHECK(code != 0);
    DeleteFileA(ini);
}

/* Clients that open the name and close it at once while the daemon starts
 * and refills (what a readiness probe does) must not stop it: a client that
 * came and went before ConnectNamedPipe leaves the instance in a state
 * (ERROR_NO_DATA) the server has to get past. */
typedef struct prober {
    const char *pipe;
    volatile LONG *stop;
    LONG opened;
} prober;

static DWORD WINAPI prober_main(void *arg)
{
    prober *p = arg;
    HANDLE h;

    while (!*p->stop) {
        h = CreateFileA(p->pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                        OPEN_EXISTING, 0, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            p->opened++;
        }
    }
    return 0;
}

static void case_probe_storm(void)
{
    char name[64], full[PH_PIPE_PATH_MAX + 1];
    volatile LONG stop = 0;
    prober ps[4];
    HANDLE th[4];
    daemon *d;
    conn *c;
    int i, round;
    LONG opened = 0;

    case_pipe(name, sizeof name, "");
    CHECK(ph_pipe_path(name, full, sizeof full) == PH_OK);
    for (i = 0; i < 4; i++) {
        ps[i].pipe = full;
        ps[i].stop = &stop;
        ps[i].opened = 0;
        th[i] = CreateThread(NULL, 0, prober_main, &ps[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    CHECK_DAEMON(name, NULL, d);
    /* Keep probing through connects and refills for a while. */
    for (round = 0; round < 20; round++) {
        CHECK_CONN(c, d->pipe);
        CHECK_OK(c, ping(c, 1));
        conn_close(c);
        CHECK_ALIVE(d);
    }
    stop = 1;
    WaitForMultipleObjects(4, th, TRUE, 10000);
    for (i = 0; i < 4; i++) {
        opened += ps[i].opened;
        CloseHandle(th[i]);
    }
    say("probers opened and closed the pipe %ld times", (long)opened);
    CHECK(opened > 0);
    CHECK_CONN(c, d->pipe);
    CHECK_OK(c, ping(c, 2));
    conn_close(c);
    CHECK_ALIVE(d);
}

/* The [security] sddl is the pipe's DACL: a client it denies cannot open the
 * pipe. Real Windows only: Wine lets every client through any DACL. */
static void case_dacl_denies(void)
{
    char name[64], ini[MAX_PATH + 64], extra[MAX_PATH + 80], text[512];
    TOKEN_USER *tu = NULL;
    char *sid = NULL;
    DWORD need = 0, e = 0;
    HANDLE tok, h;
    daemon *d;

    if (ph_under_wine())
        SKIP("Wine ignores pipe DACLs: every client connects");
    /* Deny this user reading and writing the pipe's data, but not creating
     * instances of it (0x4), which the daemon, running as this user too,
     * needs. Deny ACEs come first, so being an administrator does not help. */
    CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    GetTokenInformation(tok, TokenUser, NULL, 0, &need);
    tu = malloc(need);
    CHECK(tu != NULL);
    CHECK(GetTokenInformation(tok, TokenUser, tu, need, &need));
    CloseHandle(tok);
    CHECK(ConvertSidToStringSidA(tu->User.Sid, &sid));
    snprintf(text, sizeof text,
             "[security]\nsddl = D:P(D;;0x3;;;%s)(A;;GA;;;OW)(A;;GA;;;SY)"
             "(A;;GA;;;BA)\n", sid);
    LocalFree(sid);
    free(tu);
    CHECK(write_ini(text, ini, sizeof ini) == 0);
    snprintf(extra, sizeof extra, "--config \"%s\"", ini);
    case_pipe(name, sizeof name, "");
    g_ready_when_denied = 1;
    CHECK_DAEMON(name, extra, d);
    g_ready_when_denied = 0;
    h = open_pipe(d->pipe, 2000, &e);
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    CHECK(h == INVALID_HANDLE_VALUE);
    CHECK_EQ(e, ERROR_ACCESS_DENIED);
    DeleteFileA(ini);
    CHECK_ALIVE(d);
}

static void servers_survived(void)
{
    int i;

    for (i = 0; i < g_ndaemons; i++)
        CHECK_ALIVE(&g_daemons[i]);
}

/* ---- hold mode, for ctrl_c.sh ------------------------------------------- */

/* Open n connections, ping each, print "ready", then wait until the server
 * closes every one of them (it is being stopped with Ctrl+C). */
static int hold_main(int n, const char *name)
{
    char pipe[PH_PIPE_PATH_MAX + 1];
    conn **cs;
    uint64_t deadline;
    int i, closed = 0, told = 0;

    if (n <= 0 || ph_pipe_path(name, pipe, sizeof pipe) != PH_OK) {
        fprintf(stderr, "hold: bad arguments\n");
        return 2;
    }
    cs = calloc((size_t)n, sizeof *cs);
    if (!cs)
        return 2;
    for (i = 0; i < n; i++) {
        cs[i] = conn_open(pipe);
        if (!cs[i]) {
            fprintf(stderr, "hold: connection %d could not open %s\n", i, pipe);
            return 2;
        }
        if (ping(cs[i], (uint32_t)i + 1) != 0) {
            fprintf(stderr, "hold: ping on connection %d: %s\n", i, cs[i]->why);
            return 2;
        }
    }
    printf("ready\n");
    fflush(stdout);

    /* The closes come all at once, so one shared deadline is enough. */
    deadline = ms_now() + 30000;
    for (i = 0; i < n; i++) {
        for (;;) {
            ph_frame f;
            char d[300];
            ph_err err = conn_read(cs[i], &f, ms_left(deadline));
            if (err == PH_ECLOSED) {
                closed++;
                break;
            }
            if (err != PH_OK) {
                fprintf(stderr, "hold: connection %d: %s\n", i, cs[i]->why);
                break;
            }
            if (f.kind == PH_EVENT && f.route_len == 12 &&
                memcmp(f.route, "sys.shutdown", 12) == 0) {
                told++;
                continue;
            }
            describe(&f, d, sizeof d);
            fprintf(stderr, "hold: connection %d got an unasked frame: %s\n", i,
                    d);
        }
    }
    printf("%d of %d connections closed by the server, %d told sys.shutdown "
           "first\n", closed, n, told);
    fflush(stdout);
    for (i = 0; i < n; i++)
        conn_close(cs[i]);
    free(cs);
    return closed == n && told == n ? 0 : 1;
}

/* ---- main ----------------------------------------------------------------- */

#define CASES(X)                                                              \
    X(ping_echo_stats)                                                        \
    X(concurrent64)                                                           \
    X(byte_at_a_time)                                                         \
    X(batch100)                                                               \
    X(disconnect_midframe)                                                    \
    X(too_large)                                                              \
    X(no_route)                                                               \
    X(bad_frame)                                                              \
    X(hello)                                                                  \
    X(client_library)                                                         \
    X(max_connections)                                                        \
    X(idle_timeout)                                                           \
    X(second_server)                                                          \
    X(bad_config_refused)                                                     \
    X(probe_storm)                                                            \
    X(dacl_denies)

static void usage(void)
{
    fprintf(stderr, "usage: test_server CASE PATH_TO_PIPEHUBD_EXE\n"
                    "       test_server hold N PIPE\n"
                    "cases:");
#define X(n) fprintf(stderr, " %s", #n);
    CASES(X)
#undef X
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    int found = 0;

    if (argc == 4 && strcmp(argv[1], "hold") == 0)
        return hold_main(atoi(argv[2]), argv[3]);
    if (argc != 3) {
        usage();
        return 2;
    }
    g_case = argv[1];
    if (resolve_exe(argv[2]) != 0) {
        fprintf(stderr, "cannot resolve %s\n", argv[2]);
        return 2;
    }
    g_seed = ((uint64_t)GetTickCount64() << 20) ^ GetCurrentProcessId() ^
             0x5DEECE66Dull;
    printf("case %s, daemon %s, seed 0x%016llx\n", g_case, g_daemon_exe,
           (unsigned long long)g_seed);
    fflush(stdout);

    /* Should this process die mid-case, closing the job kills its daemons, so
     * no stray pipehubd keeps ctest's output pipe open. */
    g_job = CreateJobObjectA(NULL, NULL);
    if (g_job) {
        memset(&lim, 0, sizeof lim);
        lim.BasicLimitInformation.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        SetInformationJobObject(g_job, JobObjectExtendedLimitInformation, &lim,
                                sizeof lim);
    }

#define X(n)                                                                  \
    if (strcmp(g_case, #n) == 0) {                                            \
        found = 1;                                                            \
        PH_RUN(case_##n);                                                     \
    }
    CASES(X)
#undef X
    if (!found) {
        usage();
        return 2;
    }
    PH_RUN(servers_survived);
    daemons_stop();
    return ph_test_summary();
}
