/* Acceptance tests of the hardening issue (issue 9): no client can hold the
 * hub hostage. Each case starts its own pipehubd on its own pipe name
 * (ph-CASE-PID) with a config file of small limits and talks to it in raw
 * frames (common/ codec), never through the client library.
 *
 *   test_harden CASE PATH_TO_PIPEHUBD_EXE   run one case (see CASES below)
 *   test_harden traffic N PIPE              N clients in steady sys.echo
 *                                           traffic until the server stops
 *                                           (tests/wine/stop_busy.sh)
 *
 * Every abusive case asserts both sides:
 *   - the bad clients are dropped within their deadline: not before it (a
 *     lower bound) and not later than the deadline plus 2.5 s (the server
 *     checks once a second; the rest is slack for a loaded Wine), with the
 *     ERROR where one is promised, and the limit's sys.stats counter grows
 *     by exactly the number of bad clients;
 *   - a well-behaved client on another connection (the pinger) keeps getting
 *     correct sys.echo answers, and the median of its round-trip times
 *     during the attack is at most twice the median before it (a few
 *     hundred pings each, printed on an "rtt:" line). Floods are paced and
 *     measured interleaved with quiet windows (see window_tick). The pinger
 *     also pings a reference pipehubd that nobody attacks, in turn with the
 *     attacked one; its "rtt:" line (reported, never judged) tells a slower
 *     machine from a slower server.
 * Every wait has a timeout, so a hung server fails a case instead of hanging
 * it. After the case the daemons must still be running.
 *
 * Running a case by hand: send its stderr (which the daemons share) to a
 * file or a pipe, not to /dev/null. Wine takes /dev/null for a character
 * device, and an fprintf to stderr then costs ~45 us per byte (1.4 ms for
 * a 90-byte log line, measured here; 3-5 us to a file or pipe), paid under
 * the daemon's log lock: every logged connect then stalls all clients. */
#include <windows.h>
#include <sddl.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "harness.h"
#include "options.h"
#include "wine_util.h"

#define IO_TIMEOUT_MS 10000u      /* one expected frame */
#define CONNECT_TIMEOUT_MS 20000u /* waiting for the pipe to be served */
#define READ_CHUNK (64u * 1024u)  /* Wine moves 64 KiB reads best */
#define CLIENT_MAX_FRAME (8u * PH_MAX_FRAME_DEFAULT)
#define SLACK_MS 2500u            /* past a deadline: check period + load */
#define TICK_MS 20u               /* GetTickCount64's granularity, at worst */
#define POLL_MS 100u              /* sys.clients polls while waiting */
#define LISTED_SLACK_MS 300u      /* a poll at most this before a deadline */
#define RTT_BASE_SAMPLES 300      /* pings before an attack */
#define RTT_MIN_SAMPLES 300       /* pings during it, at least */
#define RTT_MAX_RATIO 2.0

/* Wire codes, spelled out so the test does not depend on err.h's names. */
enum {
    E_NO_ROUTE = 3,
    E_FORBIDDEN = 4,
    E_BUSY = 5,
    E_TIMEOUT = 7
};

static const char *g_case;
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

static uint64_t ms_now(void) { return GetTickCount64(); }

static DWORD ms_left(uint64_t deadline)
{
    uint64_t now = ms_now();

    return now >= deadline ? 0 : (DWORD)(deadline - now);
}

static uint64_t us_now(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER t;

    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (uint64_t)(t.QuadPart / freq.QuadPart * 1000000 +
                      t.QuadPart % freq.QuadPart * 1000000 / freq.QuadPart);
}

/* Wall clock as Unix ms (sys.clients' connected_ms). */
static uint64_t unix_ms(void)
{
    FILETIME ft;
    uint64_t t;

    GetSystemTimeAsFileTime(&ft);
    t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
    return (t - 116444736000000000ull) / 10000u;
}

/* Bytes that follow from (tag, seq): a reply carrying another request's
 * payload, or a corrupted one, is caught. The first 8 bytes are tag, seq. */
static void fill(uint8_t *p, size_t len, uint32_t tag, uint32_t seq)
{
    uint32_t x = tag * 2654435761u ^ (seq + 1u) * 40503u;
    size_t i;

    for (i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    if (len >= 8) {
        ph_put_u32le(p, tag);
        ph_put_u32le(p + 4, seq);
    }
}

/* ---- the daemon under test ------------------------------------------------ */

typedef struct daemon {
    PROCESS_INFORMATION pi;
    char pipe[PH_PIPE_PATH_MAX + 1]; /* full \\.\pipe\ path */
} daemon;

#define MAX_DAEMONS 2
static daemon g_daemons[MAX_DAEMONS];
static int g_ndaemons;
static HANDLE g_job; /* kills the daemons if this process dies first */

static int daemon_alive(const daemon *d, DWORD *exit_code)
{
    if (WaitForSingleObject(d->pi.hProcess, 0) == WAIT_TIMEOUT)
        return 1;
    if (!GetExitCodeProcess(d->pi.hProcess, exit_code))
        *exit_code = (DWORD)-1;
    return 0;
}

/* Open the pipe, waiting while it is busy or not there yet. *t_try is the
 * time just before the CreateFile that succeeded (the connection cannot be
 * older than that). */
static HANDLE open_pipe_at(const char *pipe, uint32_t timeout_ms, DWORD *err,
                           uint64_t *t_try)
{
    uint64_t deadline = ms_now() + timeout_ms;

    for (;;) {
        uint64_t t = ms_now();
        HANDLE h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                               OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        DWORD e, left;

        if (h != INVALID_HANDLE_VALUE) {
            if (t_try)
                *t_try = t;
            return h;
        }
        e = GetLastError();
        left = ms_left(deadline);
        if (left == 0 || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND)) {
            *err = e;
            return INVALID_HANDLE_VALUE;
        }
        if (e == ERROR_PIPE_BUSY)
            WaitNamedPipeA(pipe, left < 1000 ? left : 1000);
        else
            Sleep(20);
    }
}

/* Start "pipehubd run --pipe NAME EXTRA" and wait until its pipe opens. */
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
        h = open_pipe_at(d->pipe, 250, &e, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            break;
        }
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

static void case_pipe(char *out, size_t cap)
{
    snprintf(out, cap, "ph-%s-%lu", g_case,
             (unsigned long)GetCurrentProcessId());
}

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

/* ---- the raw client ------------------------------------------------------- */

typedef struct conn {
    HANDLE pipe;
    HANDLE read_event;
    HANDLE write_event;
    OVERLAPPED read_ov;
    OVERLAPPED write_ov;
    int read_pending;       /* read_ov is in flight (watchers only) */
    int write_pending;      /* write_ov is in flight */
    DWORD write_len;        /* bytes the pending write should move */
    ph_decoder dec;         /* frames arrive as a byte stream */
    uint8_t *in;            /* received bytes not yet given to dec */
    size_t in_len, in_off;
    uint32_t ctl;           /* ids of the test's control requests */
    uint32_t id;            /* conn_id from sys.hello, 0 until asked */
    uint64_t t_open;        /* just before the CreateFile that opened it */
    char why[600];          /* the last failure, for the test's message */
} conn;

static void conn_close(conn *c)
{
    DWORD n;

    if (!c)
        return;
    if (c->pipe != INVALID_HANDLE_VALUE && c->pipe != NULL) {
        if (c->write_pending) {
            CancelIoEx(c->pipe, &c->write_ov);
            GetOverlappedResult(c->pipe, &c->write_ov, &n, TRUE);
        }
        if (c->read_pending) {
            CancelIoEx(c->pipe, &c->read_ov);
            GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE);
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

static conn *conn_open_quiet(const char *pipe, DWORD *err)
{
    conn *c = calloc(1, sizeof *c);

    *err = 0;
    if (!c)
        return NULL;
    c->pipe = INVALID_HANDLE_VALUE;
    c->ctl = 0x40000000u;
    c->in = malloc(READ_CHUNK);
    c->read_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->write_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!c->in || !c->read_event || !c->write_event)
        goto fail;
    ph_decoder_init(&c->dec, CLIENT_MAX_FRAME);
    c->pipe = open_pipe_at(pipe, CONNECT_TIMEOUT_MS, err, &c->t_open);
    if (c->pipe == INVALID_HANDLE_VALUE)
        goto fail;
    return c;

fail:
    conn_close(c);
    return NULL;
}

static conn *conn_open(const char *pipe)
{
    DWORD e = 0;
    conn *c = conn_open_quiet(pipe, &e);

    if (!c)
        fprintf(stderr, "open %s failed: error %lu\n", pipe, (unsigned long)e);
    return c;
}

static uint32_t next_ctl(conn *c) { return ++c->ctl; }

static int pipe_closed_error(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA ||
           e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_HANDLE_EOF;
}

/* Set c->why (the arguments may include c->why itself). Returns -1. */
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

/* Wait for the pending write. A timeout cancels it and fails. */
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
        if (pipe_closed_error(e))
            return failf(c, "closed (write error %lu)", (unsigned long)e);
        return failf(c, "write failed: error %lu", (unsigned long)e);
    }
    if (n != c->write_len)
        return failf(c, "short write: %lu of %lu bytes", (unsigned long)n,
                     (unsigned long)c->write_len);
    return 0;
}

static int conn_write(conn *c, const void *data, size_t len)
{
    if (conn_write_start(c, data, len) != 0)
        return -1;
    return conn_write_finish(c, 2 * IO_TIMEOUT_MS);
}

/* One overlapped read of up to cap bytes into c->in: PH_OK with *got bytes,
 * PH_ECLOSED, PH_ETIMEDOUT, or PH_ESYSERR + code. */
static ph_err read_some(conn *c, DWORD cap, DWORD timeout_ms, DWORD *got)
{
    DWORD n = 0, e;

    ResetEvent(c->read_event);
    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (!ReadFile(c->pipe, c->in, cap, NULL, &c->read_ov)) {
        e = GetLastError();
        if (e != ERROR_IO_PENDING)
            return pipe_closed_error(e) ? PH_ECLOSED
                                        : (ph_err)(PH_ESYSERR + e);
        if (WaitForSingleObject(c->read_event, timeout_ms) != WAIT_OBJECT_0)
            CancelIoEx(c->pipe, &c->read_ov);
    }
    if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE)) {
        e = GetLastError();
        if (e == ERROR_OPERATION_ABORTED)
            return PH_ETIMEDOUT;
        return pipe_closed_error(e) ? PH_ECLOSED : (ph_err)(PH_ESYSERR + e);
    }
    *got = n;
    return PH_OK;
}

/* The next frame, without reading the pipe: PH_OK, PH_EAGAIN when the bytes
 * held make no whole frame, or a decoder error. */
static ph_err conn_try_frame(conn *c, ph_frame *f)
{
    size_t used = 0;
    ph_err err;

    if (c->in_off >= c->in_len)
        return PH_EAGAIN;
    err = ph_decoder_next(&c->dec, c->in + c->in_off, c->in_len - c->in_off,
                          &used, f);
    if (err == PH_OK) {
        c->in_off += used;
        return PH_OK;
    }
    c->in_off = c->in_len = 0;
    if (err != PH_EAGAIN)
        failf(c, "server sent a malformed stream: %s (%s)", ph_strerror(err),
              c->dec.why);
    return err;
}

/* Read the next frame, reading at most cap bytes at a time. On PH_OK *f
 * points into c's buffers until the next read; otherwise c->why says what
 * happened. */
static ph_err conn_read_cap(conn *c, ph_frame *f, uint32_t timeout_ms,
                            DWORD cap)
{
    uint64_t deadline = ms_now() + timeout_ms;

    for (;;) {
        DWORD got = 0;
        ph_err err = conn_try_frame(c, f);

        if (err == PH_OK)
            return PH_OK;
        if (err != PH_EAGAIN)
            return err;
        err = read_some(c, cap, ms_left(deadline), &got);
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
        c->in_off = 0;
        c->in_len = got;
    }
}

static ph_err conn_read(conn *c, ph_frame *f, uint32_t timeout_ms)
{
    return conn_read_cap(c, f, timeout_ms, READ_CHUNK);
}

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {"?", "REQUEST", "REPLY", "EVENT",
                                        "ERROR"};
    return k <= 4 ? names[k] : "?";
}

/* "EVENT id 0 status 0 route 'a.b' payload 3 bytes "xyz"" */
static void describe(const ph_frame *f, char *out, size_t cap)
{
    uint32_t i, show = f->payload_len > 120 ? 120 : f->payload_len;
    int printable = 1, n;

    for (i = 0; i < show; i++)
        if (f->payload[i] < 0x20 || f->payload[i] > 0x7e)
            printable = 0;
    n = snprintf(out, cap, "%s id %lu status %lu route '%.*s' payload %lu bytes",
                 kind_name(f->kind), (unsigned long)f->id,
                 (unsigned long)f->status, (int)f->route_len,
                 f->route ? f->route : "", (unsigned long)f->payload_len);
    if (printable && show && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " \"%.*s%s\"", (int)show,
                 (const char *)f->payload, show < f->payload_len ? "..." : "");
}

static int route_is(const ph_frame *f, const char *route)
{
    size_t n = strlen(route);

    return f->route_len == n && (n == 0 || memcmp(f->route, route, n) == 0);
}

static int payload_is(const ph_frame *f, const void *p, size_t len)
{
    return f->payload_len == len && (len == 0 || memcmp(f->payload, p, len) == 0);
}

static int append_frame(ph_buf *b, uint8_t kind, const char *route,
                        uint32_t id, uint32_t status, const void *payload,
                        size_t len)
{
    ph_frame f;

    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.id = id;
    f.status = status;
    f.route = route ? route : "";
    f.route_len = (uint8_t)strlen(f.route);
    f.payload = payload;
    f.payload_len = (uint32_t)len;
    return ph_frame_append(b, &f) == PH_OK ? 0 : -1;
}

static int send_frame(conn *c, uint8_t kind, const char *route, uint32_t id,
                      uint32_t status, const void *payload, size_t len)
{
    ph_buf b = {0};
    int rc;

    if (append_frame(&b, kind, route, id, status, payload, len) != 0) {
        ph_buf_free(&b);
        return failf(c, "could not encode a %s to '%s'", kind_name(kind),
                     route ? route : "");
    }
    rc = conn_write(c, b.data, b.len);
    ph_buf_free(&b);
    return rc;
}

static int send_request(conn *c, const char *route, uint32_t id,
                        const void *payload, size_t len)
{
    return send_frame(c, PH_REQUEST, route, id, 0, payload, len);
}

/* Read one frame, which must be a REPLY to id carrying exactly payload. */
static int expect_reply(conn *c, uint32_t id, const void *payload, size_t len)
{
    ph_frame f;
    char d[400];

    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for the REPLY to id %lu: %s",
                     (unsigned long)id, c->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0 || f.route_len != 0)
        return failf(c, "expected REPLY id %lu status 0 with no route, got %s",
                     (unsigned long)id, d);
    if (!payload_is(&f, payload, len))
        return failf(c, "REPLY to id %lu has the wrong payload: %s (expected "
                     "%lu bytes)", (unsigned long)id, d, (unsigned long)len);
    return 0;
}

/* The text of an ERROR frame's message, NUL-terminated, in out. */
static void error_text(const ph_frame *f, char *out, size_t cap)
{
    size_t n = f->payload_len < cap - 1 ? f->payload_len : cap - 1;

    memcpy(out, f->payload, n);
    out[n] = '\0';
}

/* Read one frame, which must be an ERROR to id with code, a message, and
 * (when needle is given) needle inside the message. */
static int expect_error(conn *c, uint32_t id, uint32_t code, const char *needle)
{
    ph_frame f;
    char d[400], text[300];

    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for ERROR %s id %lu: %s",
                     ph_err_name((ph_err)code), (unsigned long)id, c->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_ERROR || f.id != id || f.status != code)
        return failf(c, "expected ERROR %s (%lu) id %lu, got %s",
                     ph_err_name((ph_err)code), (unsigned long)code,
                     (unsigned long)id, d);
    if (f.payload_len == 0)
        return failf(c, "ERROR %s carries no message", ph_err_name((ph_err)code));
    error_text(&f, text, sizeof text);
    if (needle && !strstr(text, needle))
        return failf(c, "ERROR %s message \"%s\" does not contain \"%s\"",
                     ph_err_name((ph_err)code), text, needle);
    return 0;
}

/* The pipe must be closed by the server now, at a frame boundary, with no
 * frame before the close. */
static int expect_closed(conn *c, uint32_t timeout_ms)
{
    ph_frame f;
    char d[400];
    ph_err err = conn_read(c, &f, timeout_ms);

    if (err == PH_ECLOSED)
        return ph_decoder_idle(&c->dec) ? 0 : failf(c, "%s", c->why);
    if (err == PH_OK) {
        describe(&f, d, sizeof d);
        return failf(c, "expected the server to close the pipe, got %s", d);
    }
    return failf(c, "expected the server to close the pipe: %s", c->why);
}

/* The barrier: a sys.ping whose reply must be the very next frame. */
static int barrier(conn *c)
{
    uint32_t id = next_ctl(c);
    ph_frame f;
    char d[400];

    if (send_request(c, "sys.ping", id, NULL, 0) != 0)
        return failf(c, "barrier ping: %s", c->why);
    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for the barrier ping's reply: %s", c->why);
    if (f.kind == PH_REPLY && f.id == id && f.status == 0 && f.payload_len == 0)
        return 0;
    describe(&f, d, sizeof d);
    return failf(c, "expected nothing before the barrier ping's reply, got %s",
                 d);
}

/* Send a request and return its REPLY payload as a NUL-terminated string
 * (for the JSON routes); the caller frees it. NULL with c->why on failure. */
static char *call_text(conn *c, const char *route, const char *payload)
{
    uint32_t id = next_ctl(c);
    ph_frame f;
    char d[400], *s;

    if (send_request(c, route, id, payload, payload ? strlen(payload) : 0)) {
        failf(c, "%s: %s", route, c->why);
        return NULL;
    }
    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK) {
        failf(c, "%s: %s", route, c->why);
        return NULL;
    }
    describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0) {
        failf(c, "%s %s: expected REPLY id %lu, got %s", route,
              payload ? payload : "", (unsigned long)id, d);
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

/* A control request whose answer must be an empty REPLY. */
static int ctl_ok(conn *c, const char *route, const char *payload)
{
    uint32_t id = next_ctl(c);

    if (send_request(c, route, id, payload, strlen(payload)) != 0 ||
        expect_reply(c, id, NULL, 0) != 0)
        return failf(c, "%s '%s': %s", route, payload, c->why);
    return 0;
}

/* A control request whose answer must be ERROR code (message has needle). */
static int ctl_err(conn *c, const char *route, const char *payload,
                   uint32_t code, const char *needle)
{
    uint32_t id = next_ctl(c);

    if (send_request(c, route, id, payload, strlen(payload)) != 0 ||
        expect_error(c, id, code, needle) != 0)
        return failf(c, "%s '%s': %s", route, payload, c->why);
    return 0;
}

/* ---- minimal JSON probing ------------------------------------------------- */

static const char *json_value(const char *json, const char *key)
{
    char quoted[80];
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

/* Copy the JSON string at p (unescaping \\ and \" only) into out; the end
 * (after the closing quote) goes to *end. */
static int json_take_str(const char *p, char *out, size_t cap,
                         const char **end)
{
    size_t n = 0;

    if (!p || *p != '"' || cap == 0)
        return -1;
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 >= cap)
            return -1;
        out[n++] = *p;
    }
    out[n] = '\0';
    if (*p != '"')
        return -1;
    if (end)
        *end = p + 1;
    return 0;
}

static int json_str(const char *json, const char *key, char *out, size_t cap)
{
    return json_take_str(json_value(json, key), out, cap, NULL);
}

static int json_bool(const char *json, const char *key, int *out)
{
    const char *p = json_value(json, key);

    if (p && strncmp(p, "true", 4) == 0)
        *out = 1;
    else if (p && strncmp(p, "false", 5) == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* key's value must be an array of strings: they go, joined by single
 * spaces in their order, to out. */
static int json_str_list(const char *json, const char *key, char *out,
                         size_t cap)
{
    const char *p = json_value(json, key);
    size_t n = 0;
    char s[300];

    if (!p || *p != '[' || cap == 0)
        return -1;
    out[0] = '\0';
    for (p++;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ']')
            return 0;
        if (json_take_str(p, s, sizeof s, &p) != 0)
            return -1;
        if (n + strlen(s) + 2 > cap)
            return -1;
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", s);
    }
}

/* The next flat object of a JSON array (arrays of strings inside it are
 * fine; objects are not): copied into out, *pp moved past it. 0, or -1 at
 * the end. */
static int json_next_object(const char **pp, char *out, size_t cap)
{
    const char *p = strchr(*pp, '{'), *end;
    size_t n;

    if (!p || !(end = strchr(p, '}')))
        return -1;
    n = (size_t)(end - p) + 1;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    *pp = end + 1;
    return 0;
}

/* ---- the hub's views ------------------------------------------------------ */

static int hello_id(conn *c)
{
    char *s = call_text(c, "sys.hello", NULL);
    uint64_t v = 0;

    if (!s)
        return -1;
    if (json_u64(s, "conn_id", &v) != 0 || v == 0 || v > UINT32_MAX) {
        failf(c, "sys.hello has no usable conn_id: %s", s);
        free(s);
        return -1;
    }
    c->id = (uint32_t)v;
    free(s);
    return 0;
}

/* The sys.stats keys these cases read. */
enum {
    ST_CUR,
    ST_TOTAL,
    ST_PENDING,
    ST_ERRORS,
    ST_L_CONN,
    ST_L_USER,
    ST_L_FIRST,
    ST_L_FRAME,
    ST_L_STALL,
    ST_L_QUEUED,
    ST_L_ROUTES,
    ST_L_SUBS,
    ST_DENIED,
    ST_SLOW,
    ST_N
};
static const char *const k_stat[ST_N] = {
    "connections_current", "connections_total", "pending_instances",
    "errors_sent", "limit_max_connections", "limit_max_connections_per_user",
    "limit_first_frame_timeout", "limit_frame_timeout", "limit_send_stall",
    "limit_max_queued_bytes", "limit_max_routes", "limit_max_subscriptions",
    "access_denied", "slow_disconnects"};

typedef struct hstats {
    uint64_t v[ST_N];
} hstats;

static int hub_stats_q(conn *c, hstats *st, int show)
{
    char *s = call_text(c, "sys.stats", NULL);
    int i;

    if (!s)
        return -1;
    for (i = 0; i < ST_N; i++) {
        if (json_u64(s, k_stat[i], &st->v[i]) != 0) {
            failf(c, "sys.stats has no number for \"%s\": %s", k_stat[i], s);
            free(s);
            return -1;
        }
    }
    if (show)
        say("sys.stats: %s", s);
    free(s);
    return 0;
}

static int hub_stats(conn *c, hstats *st) { return hub_stats_q(c, st, 1); }

/* Poll sys.stats until connections_current is want (0), or timeout (-1). */
static int wait_current(conn *c, uint64_t want, uint32_t timeout_ms,
                        uint64_t *waited)
{
    uint64_t t0 = ms_now();
    hstats s;

    for (;;) {
        if (hub_stats_q(c, &s, 0) != 0)
            return -1;
        if (s.v[ST_CUR] == want) {
            *waited = ms_now() - t0;
            return 0;
        }
        if (ms_now() - t0 >= timeout_ms)
            return failf(c, "connections_current is %llu, not %llu, %u ms on",
                         (unsigned long long)s.v[ST_CUR],
                         (unsigned long long)want, timeout_ms);
        Sleep(50);
    }
}

/* ---- checks --------------------------------------------------------------- */

#define CHECK_OK(c, expr)                                                     \
    do {                                                                      \
        if ((expr) != 0) {                                                    \
            PH_FAIL_HERE("%s: %s", #expr, (c)->why);                          \
            return;                                                           \
        }                                                                     \
    } while (0)

/* Connect, and learn the connection's conn_id. */
#define CHECK_CLIENT(c, pipe)                                                 \
    do {                                                                      \
        (c) = conn_open(pipe);                                                \
        if (!(c)) {                                                           \
            PH_FAIL_HERE("could not connect to %s", (pipe));                  \
            return;                                                           \
        }                                                                     \
        CHECK_OK((c), hello_id(c));                                           \
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

/* A sys.stats counter must have grown by exactly want. */
#define CHECK_GREW(a, b, key, want)                                           \
    do {                                                                      \
        uint64_t ph__d = (b).v[key] - (a).v[key];                             \
        if (ph__d != (uint64_t)(want)) {                                      \
            PH_FAIL_HERE("sys.stats %s grew by %llu, expected %llu "          \
                         "(before %llu, after %llu)", k_stat[key],            \
                         (unsigned long long)ph__d,                           \
                         (unsigned long long)(want),                          \
                         (unsigned long long)(a).v[key],                      \
                         (unsigned long long)(b).v[key]);                     \
            return;                                                           \
        }                                                                     \
    } while (0)

/* Start a daemon whose config file holds ini (NULL: no file). */
#define CHECK_DAEMON_INI(ini_text, d)                                         \
    do {                                                                      \
        char ph__name[64], ph__ini[MAX_PATH + 64], ph__extra[MAX_PATH + 80];  \
        int ph__rc;                                                           \
        case_pipe(ph__name, sizeof ph__name);                                 \
        ph__extra[0] = '\0';                                                  \
        if (ini_text) {                                                       \
            CHECK(write_ini((ini_text), ph__ini, sizeof ph__ini) == 0);       \
            say("config: %s", (const char *)(ini_text));                      \
            snprintf(ph__extra, sizeof ph__extra, "--config \"%s\"", ph__ini);\
        }                                                                     \
        ph__rc = daemon_start(ph__name, ph__extra[0] ? ph__extra : NULL, &(d)); \
        if (ini_text)                                                         \
            DeleteFileA(ph__ini); /* read at start; no reload here */         \
        if (ph__rc != 0) {                                                    \
            PH_FAIL_HERE("pipehubd did not start on %s", ph__name);           \
            return;                                                           \
        }                                                                     \
    } while (0)

/* A measured time t (ms) must lie in lo..hi; lo is relaxed by the clock's
 * granularity. */
#define CHECK_WITHIN(what, t, lo, hi)                                         \
    do {                                                                      \
        uint64_t ph__t = (t), ph__lo = (lo), ph__hi = (hi);                   \
        if (ph__t + TICK_MS < ph__lo || ph__t > ph__hi) {                     \
            PH_FAIL_HERE("%s after %llu ms, expected %llu..%llu ms", (what),  \
                         (unsigned long long)ph__t,                           \
                         (unsigned long long)ph__lo,                          \
                         (unsigned long long)ph__hi);                         \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- sys.clients ---------------------------------------------------------- */

/* Connections the test expects the hub to drop: when the last poll that
 * listed each was sent (the hub listed it at that time or later) and when
 * the first poll that did not list it was answered (it was gone by then);
 * 0: not yet. */
typedef struct tracked {
    uint32_t id;
    uint64_t last_seen, gone_at;
} tracked;

/* One sys.clients poll: update each tracked connection; the number of
 * listed connections and the sum of their queued bytes go to *listed and
 * *queued. Returns the number of tracked connections gone, or -1. */
static int track_poll(conn *ctl, tracked *t, int n, int *listed,
                      uint64_t *queued)
{
    uint64_t sent = ms_now(), now;
    char *s = call_text(ctl, "sys.clients", NULL);
    char obj[4096];
    const char *p;
    int i, gone = 0;

    if (!s)
        return -1;
    now = ms_now();
    *listed = 0;
    *queued = 0;
    for (i = 0; i < n; i++) {
        int found = 0;
        for (p = s; json_next_object(&p, obj, sizeof obj) == 0;) {
            uint64_t id = 0;
            if (json_u64(obj, "conn_id", &id) == 0 && id == t[i].id) {
                found = 1;
                break;
            }
        }
        if (found && t[i].gone_at == 0)
            t[i].last_seen = sent;
        else if (!found && t[i].gone_at == 0)
            t[i].gone_at = now;
        if (t[i].gone_at != 0)
            gone++;
    }
    for (p = s; json_next_object(&p, obj, sizeof obj) == 0;) {
        uint64_t q = 0;
        (*listed)++;
        if (json_u64(obj, "queued", &q) == 0)
            *queued += q;
    }
    free(s);
    return gone;
}

/* The sys.clients object of conn id, copied into out; -1 when not listed. */
static int clients_row(conn *ctl, uint32_t id, char *out, size_t cap)
{
    char *s = call_text(ctl, "sys.clients", NULL);
    const char *p;

    if (!s)
        return -1;
    for (p = s; json_next_object(&p, out, cap) == 0;) {
        uint64_t v = 0;
        if (json_u64(out, "conn_id", &v) == 0 && v == id) {
            free(s);
            return 0;
        }
    }
    failf(ctl, "sys.clients does not list conn %lu: %.400s", (unsigned long)id,
          s);
    free(s);
    return -1;
}

/* ---- the well-behaved client: sys.echo round trips on its own thread ------ */

enum { PH_BEFORE, PH_DURING, PH_AFTER, PH_NPHASE, PH_OFF = PH_NPHASE };
#define PINGER_CAP 100000
#define PINGER_PAYLOAD 64

typedef struct pinger {
    conn *c;
    conn *ref;                  /* optional: a reference pipehubd, pinged
                                   in turn with c */
    HANDLE thread;
    volatile LONG stop;
    volatile LONG phase;        /* where the next round trip is counted */
    uint32_t *us[PH_NPHASE];    /* round-trip times, microseconds */
    volatile LONG n[PH_NPHASE];
    uint32_t *ref_us[PH_NPHASE];
    volatile LONG ref_n[PH_NPHASE];
    volatile LONG answered;
    volatile LONG failed;
    char why[700];
} pinger;

static DWORD WINAPI pinger_main(void *arg)
{
    pinger *p = arg;
    conn *c = p->c;
    uint8_t pl[PINGER_PAYLOAD];
    uint32_t seq = 0;

    while (!p->stop) {
        LONG phase = p->phase;
        uint64_t t0;
        uint32_t us;

        seq++;
        fill(pl, sizeof pl, 0x50494e47u, seq);
        t0 = us_now();
        if (send_request(c, "sys.echo", seq, pl, sizeof pl) != 0 ||
            expect_reply(c, seq, pl, sizeof pl) != 0) {
            snprintf(p->why, sizeof p->why, "pinger (conn %lu), round trip "
                     "%lu: %s", (unsigned long)c->id, (unsigned long)seq,
                     c->why);
            InterlockedExchange(&p->failed, 1);
            break;
        }
        us = (uint32_t)(us_now() - t0);
        InterlockedIncrement(&p->answered);
        if (phase < PH_NPHASE && p->n[phase] < PINGER_CAP) {
            p->us[phase][p->n[phase]] = us;
            InterlockedIncrement(&p->n[phase]);
        }
        Sleep(1); /* a client, not a load generator */
        if (p->ref) {
            t0 = us_now();
            if (send_request(p->ref, "sys.echo", seq, pl, sizeof pl) != 0 ||
                expect_reply(p->ref, seq, pl, sizeof pl) != 0) {
                snprintf(p->why, sizeof p->why, "pinger of the reference "
                         "daemon, round trip %lu: %s", (unsigned long)seq,
                         p->ref->why);
                InterlockedExchange(&p->failed, 1);
                break;
            }
            us = (uint32_t)(us_now() - t0);
            if (phase < PH_NPHASE && p->ref_n[phase] < PINGER_CAP) {
                p->ref_us[phase][p->ref_n[phase]] = us;
                InterlockedIncrement(&p->ref_n[phase]);
            }
            Sleep(1);
        }
    }
    return 0;
}

static int pinger_start(pinger *p, conn *c, conn *ref)
{
    int i;

    memset(p, 0, sizeof *p);
    p->c = c;
    p->ref = ref;
    p->phase = PH_OFF;
    for (i = 0; i < PH_NPHASE; i++) {
        p->us[i] = malloc(PINGER_CAP * sizeof *p->us[i]);
        p->ref_us[i] = malloc(PINGER_CAP * sizeof *p->ref_us[i]);
        if (!p->us[i] || !p->ref_us[i])
            return -1;
    }
    p->thread = CreateThread(NULL, 0, pinger_main, p, 0, NULL);
    return p->thread ? 0 : -1;
}

/* Count the next round trips as "before", until there are n of them. */
static int pinger_baseline(pinger *p, LONG n)
{
    uint64_t deadline = ms_now() + 30000;

    InterlockedExchange(&p->phase, PH_BEFORE);
    while (p->n[PH_BEFORE] < n && !p->failed && ms_left(deadline))
        Sleep(10);
    return p->n[PH_BEFORE] >= n ? 0 : -1;
}

static void pinger_phase(pinger *p, LONG phase)
{
    InterlockedExchange(&p->phase, phase);
}

/* Wait until at least n round trips were counted in phase. */
static void pinger_wait(pinger *p, LONG phase, LONG n, uint32_t timeout_ms)
{
    uint64_t deadline = ms_now() + timeout_ms;

    while (p->n[phase] < n && !p->failed && ms_left(deadline))
        Sleep(10);
}

/* Forget every round trip counted so far (for a second measurement). */
static void pinger_reset(pinger *p)
{
    LONG seen;
    uint64_t deadline = ms_now() + 5000;
    int i;

    pinger_phase(p, PH_OFF);
    /* Let a round trip that began in a counted phase finish. */
    seen = p->answered;
    while (p->answered < seen + 2 && !p->failed && ms_left(deadline))
        Sleep(1);
    for (i = 0; i < PH_NPHASE; i++) {
        InterlockedExchange(&p->n[i], 0);
        InterlockedExchange(&p->ref_n[i], 0);
    }
}

/* Stop and join; 0 when it ended in time and never failed. */
static int pinger_stop(pinger *p)
{
    int i, rc = 0;

    if (p->thread) {
        InterlockedExchange(&p->stop, 1);
        if (WaitForSingleObject(p->thread, 15000) != WAIT_OBJECT_0)
            rc = -1;
        else
            CloseHandle(p->thread);
        p->thread = NULL;
    }
    for (i = 0; i < PH_NPHASE; i++) {
        free(p->us[i]);
        free(p->ref_us[i]);
        p->us[i] = p->ref_us[i] = NULL;
    }
    return p->failed ? -1 : rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Median and 90th percentile of n samples (sorted in place). */
static void summary(uint32_t *us, LONG n, uint32_t *median, uint32_t *p90)
{
    *median = *p90 = 0;
    if (n == 0)
        return;
    qsort(us, (size_t)n, sizeof *us, cmp_u32);
    *median = us[n / 2];
    *p90 = us[(size_t)n * 9 / 10];
}

static void pinger_summary(pinger *p, int phase, uint32_t *median,
                           uint32_t *p90)
{
    summary(p->us[phase], p->n[phase], median, p90);
}

/* The good client's verdict: it never failed, it had enough round trips
 * before and during, and (when enforce) its median round trip during the
 * attack is at most RTT_MAX_RATIO times the one before. Prints an "rtt:"
 * line either way. 0, or -1 with why. */
static int pinger_verdict(pinger *p, const char *what, int enforce, char *why,
                          size_t cap)
{
    uint32_t mb, pb, md, pd;
    double r;

    if (p->failed) {
        snprintf(why, cap, "the well-behaved client failed: %s", p->why);
        return -1;
    }
    pinger_summary(p, PH_BEFORE, &mb, &pb);
    pinger_summary(p, PH_DURING, &md, &pd);
    r = mb ? (double)md / mb : 0.0;
    say("rtt: %s, %s: median %lu us before (n=%ld, p90 %lu), %lu us during "
        "(n=%ld, p90 %lu): ratio %.2f%s", g_case, what, (unsigned long)mb,
        (long)p->n[PH_BEFORE], (unsigned long)pb, (unsigned long)md,
        (long)p->n[PH_DURING], (unsigned long)pd, r,
        enforce ? "" : " (reported, not judged)");
    if (p->ref) {
        uint32_t rmb, rpb, rmd, rpd;
        summary(p->ref_us[PH_BEFORE], p->ref_n[PH_BEFORE], &rmb, &rpb);
        summary(p->ref_us[PH_DURING], p->ref_n[PH_DURING], &rmd, &rpd);
        say("rtt: %s, reference (an idle pipehubd, pinged in turn): median "
            "%lu us before (n=%ld, p90 %lu), %lu us during (n=%ld, p90 %lu): "
            "ratio %.2f", g_case, (unsigned long)rmb,
            (long)p->ref_n[PH_BEFORE], (unsigned long)rpb,
            (unsigned long)rmd, (long)p->ref_n[PH_DURING],
            (unsigned long)rpd, rmb ? (double)rmd / rmb : 0.0);
    }
    if (p->n[PH_BEFORE] < RTT_BASE_SAMPLES || p->n[PH_DURING] < RTT_MIN_SAMPLES) {
        snprintf(why, cap, "too few round trips to judge: %ld before, %ld "
                 "during (want %d and %d)", (long)p->n[PH_BEFORE],
                 (long)p->n[PH_DURING], RTT_BASE_SAMPLES, RTT_MIN_SAMPLES);
        return enforce ? -1 : 0;
    }
    if (enforce && r > RTT_MAX_RATIO) {
        snprintf(why, cap, "the well-behaved client's median round trip went "
                 "from %lu us to %lu us during %s (x%.2f, at most x%.1f "
                 "allowed)", (unsigned long)mb, (unsigned long)md, what, r,
                 RTT_MAX_RATIO);
        return -1;
    }
    return 0;
}

#define CHECK_PINGER_X(p, what, enforce)                                      \
    do {                                                                      \
        char ph__why[900];                                                    \
        if (pinger_verdict((p), (what), (enforce), ph__why,                   \
                           sizeof ph__why) != 0) {                            \
            PH_FAIL_HERE("%s", ph__why);                                      \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_PINGER(p, what) CHECK_PINGER_X((p), (what), 1)

/* Floods, for attacks that come in units (waves of connections, batches
 * of requests), are measured interleaved and paced:
 *   - paced: each unit is followed by a pause as long as it took, so the
 *     flood runs at half the rate this machine can drive it. At full rate
 *     the flooding thread, pipehubd and wineserver (one thread for every
 *     process) saturate a 2-core Wine box, and then every server on it,
 *     an idle one too, answers slower: the reference daemon's "rtt:" line
 *     shows that;
 *   - interleaved: the attack runs in windows of at least WINDOW_MS, each
 *     followed by a quiet window as long (at most 1 s). Round trips in
 *     attack windows count as "during"; those in quiet windows join the
 *     baseline taken before the first as "before", so a change in the
 *     machine's load (other programs on a shared machine) weighs on both
 *     sides alike. */
#define WINDOW_MS 100u
#define MAX_ATTACK_MS 30000u /* a flood stops here, enough round trips or not */

typedef struct window {
    pinger *p;
    uint64_t t0, start, unit_us;
    int quiet_windows, units;
} window;

static void window_begin(window *w, pinger *p)
{
    w->p = p;
    w->quiet_windows = w->units = 0;
    pinger_phase(p, PH_DURING);
    w->t0 = w->start = ms_now();
    w->unit_us = us_now();
}

/* After each unit of the attack: the pause, and a quiet window when the
 * attack window is over. Returns 1 once both sides have enough round trips
 * (the caller then stops the attack). */
static int window_tick(window *w)
{
    uint64_t unit = us_now() - w->unit_us, on;

    w->units++;
    Sleep((DWORD)(unit > 1000000 ? 1000 : (unit + 999) / 1000));
    on = ms_now() - w->start;
    if (on >= WINDOW_MS) {
        pinger_phase(w->p, PH_BEFORE);
        Sleep(on > 1000 ? 1000 : (DWORD)on);
        w->quiet_windows++;
        if (w->p->n[PH_DURING] >= RTT_MIN_SAMPLES &&
            w->p->n[PH_BEFORE] >= RTT_BASE_SAMPLES + RTT_MIN_SAMPLES / 2) {
            pinger_phase(w->p, PH_AFTER);
            return 1;
        }
        pinger_phase(w->p, PH_DURING);
        w->start = ms_now();
    }
    w->unit_us = us_now();
    return 0;
}

#define CHECK_PINGER_STOPPED(p)                                               \
    do {                                                                      \
        if (pinger_stop(p) != 0) {                                            \
            PH_FAIL_HERE("the well-behaved client: %s",                       \
                         (p)->why[0] ? (p)->why : "did not stop");            \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- watching clients that the server should drop ------------------------- */

/* A bad client that reads: every frame it gets and when, and when the pipe
 * broke. */
typedef struct watched {
    conn *c;
    uint64_t t0;          /* the deadline runs from here (at the latest) */
    uint64_t t0_late;     /* ... and at the earliest from here */
    uint64_t t_err;       /* the first ERROR frame came; 0 = none */
    uint64_t t_close;     /* the pipe broke; 0 = not yet */
    uint32_t err_code, err_id;
    char err_msg[256];
    int frames;           /* frames of any kind */
    char first_other[300];/* the first frame that was not the ERROR */
    int others;
    int bad;              /* the stream broke mid-frame or the read failed */
    char bad_why[200];
    int bytes_sent;       /* slowloris: bytes trickled */
    int write_refused;    /* a write failed: the pipe was closed */
} watched;

static void watch_issue(watched *w)
{
    conn *c = w->c;
    DWORD e;

    ResetEvent(c->read_event);
    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (!ReadFile(c->pipe, c->in, READ_CHUNK, NULL, &c->read_ov) &&
        (e = GetLastError()) != ERROR_IO_PENDING) {
        if (pipe_closed_error(e)) {
            w->t_close = ms_now();
        } else {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "ReadFile error %lu",
                     (unsigned long)e);
        }
        return;
    }
    c->read_pending = 1;
}

/* The read of w completed (its event is set). */
static void watch_done(watched *w)
{
    conn *c = w->c;
    DWORD n = 0, e;
    size_t off = 0;

    c->read_pending = 0;
    if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE)) {
        e = GetLastError();
        if (pipe_closed_error(e)) {
            w->t_close = ms_now();
            if (!ph_decoder_idle(&c->dec)) {
                w->bad = 1;
                snprintf(w->bad_why, sizeof w->bad_why,
                         "closed in the middle of a frame");
            }
        } else {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "read error %lu",
                     (unsigned long)e);
        }
        return;
    }
    while (off < n) {
        ph_frame f;
        size_t used = 0;
        ph_err err = ph_decoder_next(&c->dec, c->in + off, n - off, &used, &f);

        if (err == PH_EAGAIN)
            break;
        if (err != PH_OK) {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "malformed stream: %s",
                     c->dec.why);
            return;
        }
        off += used;
        w->frames++;
        if (f.kind == PH_ERROR && w->t_err == 0) {
            w->t_err = ms_now();
            w->err_code = f.status;
            w->err_id = f.id;
            error_text(&f, w->err_msg, sizeof w->err_msg);
        } else {
            if (w->others++ == 0)
                describe(&f, w->first_other, sizeof w->first_other);
        }
    }
    watch_issue(w);
}

/* Handle completions for up to ms; returns how many are still open. */
static int watch_wait(watched *ws, int n, DWORD ms)
{
    HANDLE ev[MAXIMUM_WAIT_OBJECTS];
    int idx[MAXIMUM_WAIT_OBJECTS], k = 0, i, open = 0;
    DWORD r;

    for (i = 0; i < n && k < MAXIMUM_WAIT_OBJECTS; i++) {
        if (ws[i].c->read_pending) {
            ev[k] = ws[i].c->read_event;
            idx[k++] = i;
        }
    }
    if (k == 0)
        return 0;
    r = WaitForMultipleObjects((DWORD)k, ev, FALSE, ms);
    if (r < WAIT_OBJECT_0 + (DWORD)k) {
        for (i = 0; i < k; i++)
            if (WaitForSingleObject(ev[i], 0) == WAIT_OBJECT_0)
                watch_done(&ws[idx[i]]);
    }
    for (i = 0; i < n; i++)
        if (ws[i].c->read_pending)
            open++;
    return open;
}

/* Each watched client must have got exactly one frame, ERROR code id 0
 * with needle in its message, then the close; its ERROR came between lo
 * and hi ms after its t0 (lo from t0, hi from t0_late); the close at most
 * SLACK_MS after the ERROR. The times go to *first and *last. */
static int watch_verdict(watched *ws, int n, uint32_t code, const char *needle,
                         uint64_t lo, uint64_t hi, uint64_t *first,
                         uint64_t *last, char *why, size_t cap)
{
    int i;

    *first = UINT64_MAX;
    *last = 0;
    for (i = 0; i < n; i++) {
        watched *w = &ws[i];
        uint64_t at = w->t_err ? w->t_err - w->t0 : 0;
        uint64_t at_late = w->t_err ? w->t_err - w->t0_late : 0;

        if (w->bad) {
            snprintf(why, cap, "bad client %d: %s", i, w->bad_why);
            return -1;
        }
        if (w->t_err == 0) {
            snprintf(why, cap, "bad client %d got no ERROR (%d other frames, "
                     "first: %s; %s)", i, w->others, w->first_other,
                     w->t_close ? "then the pipe was closed" : "still open");
            return -1;
        }
        if (w->err_code != code || w->err_id != 0 ||
            (needle && !strstr(w->err_msg, needle))) {
            snprintf(why, cap, "bad client %d: expected ERROR %s id 0 naming "
                     "\"%s\", got ERROR %lu id %lu \"%s\"", i,
                     ph_err_name((ph_err)code), needle ? needle : "",
                     (unsigned long)w->err_code, (unsigned long)w->err_id,
                     w->err_msg);
            return -1;
        }
        if (w->others) {
            snprintf(why, cap, "bad client %d got %d frames besides the "
                     "ERROR, first: %s", i, w->others, w->first_other);
            return -1;
        }
        if (w->t_close == 0 || w->t_close - w->t_err > SLACK_MS) {
            snprintf(why, cap, "bad client %d: the pipe was %s after its "
                     "ERROR", i, w->t_close ? "closed too long" : "not closed");
            return -1;
        }
        if (at + TICK_MS < lo || at_late > hi) {
            snprintf(why, cap, "bad client %d: ERROR %s after %llu ms (%llu "
                     "from its latest start), expected %llu..%llu ms", i,
                     ph_err_name((ph_err)code), (unsigned long long)at,
                     (unsigned long long)at_late, (unsigned long long)lo,
                     (unsigned long long)hi);
            return -1;
        }
        if (at < *first)
            *first = at;
        if (at > *last)
            *last = at;
    }
    return 0;
}

/* ---- echo batches --------------------------------------------------------- */

/* count sys.echo requests of size payload bytes, ids first.., tag tag. */
static int echo_batch(ph_buf *b, uint32_t tag, uint32_t first, int count,
                      size_t size)
{
    uint8_t *pl = malloc(size ? size : 1);
    int k, rc = 0;

    if (!pl)
        return -1;
    for (k = 0; k < count && rc == 0; k++) {
        fill(pl, size, tag, first + (uint32_t)k);
        rc = append_frame(b, PH_REQUEST, "sys.echo", first + (uint32_t)k, 0,
                          pl, size);
    }
    free(pl);
    return rc;
}

/* Read the echo replies of such a batch, in order. With may_close, the
 * pipe may break after any number of them (a dropped client reads what
 * is left); the replies read go to *got. */
static int read_echoes(conn *c, uint32_t tag, uint32_t first, int count,
                       size_t size, int may_close, int *got)
{
    uint8_t *pl = malloc(size ? size : 1);
    int k;

    *got = 0;
    if (!pl)
        return failf(c, "out of memory");
    for (k = 0; k < count; k++) {
        ph_frame f;
        char d[400];
        ph_err err = conn_read(c, &f, IO_TIMEOUT_MS);

        if (err == PH_ECLOSED && may_close && ph_decoder_idle(&c->dec)) {
            free(pl);
            return 0;
        }
        if (err != PH_OK) {
            free(pl);
            return failf(c, "echo reply %d of %d: %s", k + 1, count, c->why);
        }
        fill(pl, size, tag, first + (uint32_t)k);
        if (f.kind != PH_REPLY || f.id != first + (uint32_t)k ||
            !payload_is(&f, pl, size)) {
            describe(&f, d, sizeof d);
            free(pl);
            return failf(c, "expected the echo of request %lu (%lu bytes), "
                         "got %s", (unsigned long)(first + (uint32_t)k),
                         (unsigned long)size, d);
        }
        (*got)++;
    }
    free(pl);
    if (may_close) {
        /* All of them came: the pipe must still break (it was dropped). */
        if (expect_closed(c, IO_TIMEOUT_MS) != 0)
            return -1;
    }
    return 0;
}

/* ---- cases ---------------------------------------------------------------- */

/* Start the daemon, a control connection and the pinger; and a reference
 * daemon (defaults, never attacked) that the pinger pings in turn, so its
 * "rtt:" lines show what the machine and Wine did meanwhile. */
#define SETUP(ini, d, ctl, pg)                                                \
    do {                                                                      \
        conn *ph__pc, *ph__ref;                                                \
        daemon *ph__rd;                                                       \
        char ph__rn[80];                                                      \
        CHECK_DAEMON_INI((ini), d);                                           \
        snprintf(ph__rn, sizeof ph__rn, "ph-%s-%lu-ref", g_case,              \
                 (unsigned long)GetCurrentProcessId());                       \
        if (daemon_start(ph__rn, NULL, &ph__rd) != 0) {                       \
            PH_FAIL_HERE("the reference pipehubd did not start");             \
            return;                                                           \
        }                                                                     \
        CHECK_CLIENT(ctl, (d)->pipe);                                         \
        CHECK_CLIENT(ph__pc, (d)->pipe);                                      \
        CHECK_CLIENT(ph__ref, ph__rd->pipe);                                   \
        CHECK(pinger_start((pg), ph__pc, ph__ref) == 0);                       \
    } while (0)

#define CHECK_BASELINE(pg)                                                    \
    do {                                                                      \
        if (pinger_baseline((pg), RTT_BASE_SAMPLES) != 0) {                   \
            PH_FAIL_HERE("no baseline: %ld round trips in 30 s%s%s",          \
                         (long)(pg)->n[PH_BEFORE], (pg)->failed ? ": " : "",  \
                         (pg)->failed ? (pg)->why : "");                      \
            return;                                                           \
        }                                                                     \
    } while (0)

/* silent: clients that connect and never send, and clients that send part
 * of a first frame and stop, get ERROR TIMEOUT naming first_frame_timeout_ms
 * 2000..4500 ms after they connected and are closed; a client that sent one
 * frame and then says nothing for longer than the deadline twice over is
 * not touched. */
static void case_silent(void)
{
    enum { SILENT = 48, PARTIAL = 8, N = SILENT + PARTIAL, DEADLINE = 2000 };
    static watched ws[N];
    static pinger pg;
    daemon *d;
    conn *ctl, *quiet;
    hstats s0, s1;
    uint64_t t_quiet, first, last, waited;
    char why[600];
    int i;

    SETUP("[limits]\nfirst_frame_timeout_ms = 2000\n", d, ctl, &pg);
    CHECK_CLIENT(quiet, d->pipe); /* one frame, then silence */
    t_quiet = ms_now();
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    memset(ws, 0, sizeof ws);
    for (i = 0; i < N; i++) {
        ws[i].c = conn_open(d->pipe);
        CHECK(ws[i].c != NULL);
        ws[i].t0 = ws[i].c->t_open;
        ws[i].t0_late = ms_now();
        if (i >= SILENT) {
            /* 7 bytes of a header: the first frame never becomes whole. */
            static const uint8_t part[7] = {40, 0, 0, 0, 1, 1, 8};
            CHECK_OK(ws[i].c, conn_write(ws[i].c, part, sizeof part));
        }
        watch_issue(&ws[i]);
    }
    say("%d silent clients and %d that sent 7 bytes of a header connected in "
        "%llu ms", SILENT, PARTIAL,
        (unsigned long long)(ws[N - 1].t0_late - ws[0].t0));
    {
        uint64_t deadline = ws[N - 1].t0_late + DEADLINE + SLACK_MS + 2000;
        while (watch_wait(ws, N, 100) > 0 && ms_left(deadline))
            ;
    }
    pinger_phase(&pg, PH_OFF);
    if (watch_verdict(ws, N, E_TIMEOUT, "first_frame_timeout_ms", DEADLINE,
                      DEADLINE + SLACK_MS, &first, &last, why,
                      sizeof why) != 0) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    say("drop: all %d got ERROR TIMEOUT \"%s\" %llu..%llu ms after connecting "
        "(deadline %d ms), then the close", N, ws[0].err_msg,
        (unsigned long long)first, (unsigned long long)last, DEADLINE);
    CHECK_PINGER(&pg, "56 silent connections");

    /* The quiet client has said nothing for more than twice the deadline. */
    while (ms_now() - t_quiet < 2 * DEADLINE + 1000)
        Sleep(100);
    CHECK_OK(quiet, barrier(quiet));
    say("a client silent for %llu ms after its first frame still answers",
        (unsigned long long)(ms_now() - t_quiet));
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_FIRST, N);
    CHECK_GREW(s0, s1, ST_L_FRAME, 0);
    for (i = 0; i < N; i++)
        conn_close(ws[i].c);
    conn_close(quiet);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* The honest sender of the slowloris case: one large sys.echo frame in
 * 64 KiB pieces, 100 ms apart (in all well within frame_timeout_ms), then
 * its echo. */
typedef struct honest {
    conn *c;
    size_t size;
    uint32_t piece, gap_ms;
    uint64_t send_ms;
    int failed;
    char why[700];
} honest;

static DWORD WINAPI honest_main(void *arg)
{
    honest *h = arg;
    ph_buf b = {0};
    size_t off;
    uint64_t t0;
    int got = 0;

    if (echo_batch(&b, 0x484f4e45u, 1, 1, h->size) != 0) {
        snprintf(h->why, sizeof h->why, "could not encode");
        h->failed = 1;
        return 0;
    }
    t0 = ms_now();
    for (off = 0; off < b.len; off += h->piece) {
        size_t n = b.len - off < h->piece ? b.len - off : h->piece;
        if (off)
            Sleep(h->gap_ms);
        if (conn_write(h->c, b.data + off, n) != 0) {
            snprintf(h->why, sizeof h->why, "honest sender (conn %lu), at "
                     "byte %lu of %lu, %llu ms in: %s", (unsigned long)h->c->id,
                     (unsigned long)off, (unsigned long)b.len,
                     (unsigned long long)(ms_now() - t0), h->c->why);
            h->failed = 1;
            ph_buf_free(&b);
            return 0;
        }
    }
    h->send_ms = ms_now() - t0;
    ph_buf_free(&b);
    if (read_echoes(h->c, 0x484f4e45u, 1, 1, h->size, 0, &got) != 0 ||
        barrier(h->c) != 0) {
        snprintf(h->why, sizeof h->why, "honest sender (conn %lu), after "
                 "sending for %llu ms: %s", (unsigned long)h->c->id,
                 (unsigned long long)h->send_ms, h->c->why);
        h->failed = 1;
    }
    return 0;
}

/* slowloris: clients that have sent a frame, then send a frame's first 24
 * bytes and one more byte every 300 ms get ERROR TIMEOUT naming
 * frame_timeout_ms 3000..5500 ms after their first byte and are closed;
 * meanwhile a 900 KiB frame that arrives in 64 KiB pieces over ~1.5 s is
 * served. */
static void case_slowloris(void)
{
    enum { N = 30, DEADLINE = 3000, TRICKLE_MS = 300 };
    static watched ws[N];
    static pinger pg;
    static honest hs;
    daemon *d;
    conn *ctl;
    hstats s0, s1;
    HANDLE th;
    uint8_t head[24];
    uint64_t first, last, next, deadline, waited;
    char why[600];
    int i, open;

    SETUP("[limits]\nframe_timeout_ms = 3000\n", d, ctl, &pg);
    memset(&hs, 0, sizeof hs);
    CHECK_CLIENT(hs.c, d->pipe);
    hs.size = 900u * 1024u;
    hs.piece = 64u * 1024u;
    hs.gap_ms = 100;
    memset(ws, 0, sizeof ws);
    for (i = 0; i < N; i++)
        CHECK_CLIENT(ws[i].c, d->pipe); /* its first frame: sys.hello */
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    th = CreateThread(NULL, 0, honest_main, &hs, 0, NULL);
    CHECK(th != NULL);
    /* A sys.echo frame of 224 bytes: its header and route now, then the
     * payload a byte at a time. */
    {
        ph_frame f;
        uint8_t full[224], pl[200];
        size_t len = 0;
        memset(&f, 0, sizeof f);
        memset(pl, 'x', sizeof pl);
        f.kind = PH_REQUEST;
        f.id = 7;
        f.route = "sys.echo";
        f.route_len = 8;
        f.payload = pl;
        f.payload_len = sizeof pl;
        CHECK(ph_frame_encode(&f, full, sizeof full, &len) == PH_OK);
        CHECK_EQ(len, sizeof full);
        memcpy(head, full, sizeof head);
    }
    for (i = 0; i < N; i++) {
        ws[i].t0 = ms_now();
        CHECK_OK(ws[i].c, conn_write(ws[i].c, head, sizeof head));
        ws[i].t0_late = ms_now();
        ws[i].bytes_sent = sizeof head;
        watch_issue(&ws[i]);
    }
    next = ms_now() + TRICKLE_MS;
    deadline = ws[N - 1].t0_late + DEADLINE + SLACK_MS + 2000;
    do {
        DWORD left = ms_left(next);
        open = watch_wait(ws, N, left);
        if (ms_left(next) == 0) {
            static const uint8_t x = 'x';
            for (i = 0; i < N; i++) {
                if (ws[i].t_close || ws[i].write_refused || ws[i].bad)
                    continue;
                if (conn_write(ws[i].c, &x, 1) != 0)
                    ws[i].write_refused = 1;
                else
                    ws[i].bytes_sent++;
            }
            next += TRICKLE_MS;
        }
    } while (open > 0 && ms_left(deadline));
    if (WaitForSingleObject(th, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the honest sender did not finish in 60 s");
        return;
    }
    CloseHandle(th);
    pinger_phase(&pg, PH_OFF);
    if (watch_verdict(ws, N, E_TIMEOUT, "frame_timeout_ms", DEADLINE,
                      DEADLINE + SLACK_MS, &first, &last, why,
                      sizeof why) != 0) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    say("drop: all %d got ERROR TIMEOUT \"%s\" %llu..%llu ms after their first "
        "byte (deadline %d ms), having trickled %d..%d bytes of a %d-byte "
        "frame, then the close", N, ws[0].err_msg, (unsigned long long)first,
        (unsigned long long)last, DEADLINE, ws[0].bytes_sent,
        ws[N - 1].bytes_sent, 224);
    if (hs.failed) {
        PH_FAIL_HERE("%s", hs.why);
        return;
    }
    say("the honest %lu-byte frame took %llu ms in %lu-byte pieces and was "
        "echoed", (unsigned long)hs.size, (unsigned long long)hs.send_ms,
        (unsigned long)hs.piece);
    if (hs.send_ms >= DEADLINE - 500) {
        PH_FAIL_HERE("sending the honest frame took %llu ms: too close to the "
                     "%d ms deadline to show anything",
                     (unsigned long long)hs.send_ms, DEADLINE);
        return;
    }
    CHECK_PINGER(&pg, "30 slowloris connections and one slow honest frame");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_FRAME, N);
    CHECK_GREW(s0, s1, ST_L_FIRST, 0);
    for (i = 0; i < N; i++)
        conn_close(ws[i].c);
    conn_close(hs.c);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* A client that pipelines many big requests and reads the replies slowly
 * but steadily. */
typedef struct steady {
    conn *c;
    int count;
    size_t size;
    DWORD read_size, gap_ms;
    uint64_t ms;
    int failed;
    char why[700];
} steady;

static DWORD WINAPI steady_main(void *arg)
{
    steady *s = arg;
    ph_buf b = {0};
    uint8_t *pl = malloc(s->size);
    uint64_t t0 = ms_now();
    int k;

    if (!pl || echo_batch(&b, 0x53544459u, 1, s->count, s->size) != 0) {
        snprintf(s->why, sizeof s->why, "out of memory");
        s->failed = 1;
        goto done;
    }
    if (conn_write_start(s->c, b.data, b.len) != 0) {
        snprintf(s->why, sizeof s->why, "steady reader: %s", s->c->why);
        s->failed = 1;
        goto done;
    }
    for (k = 0; k < s->count; k++) {
        ph_frame f;
        char d[400];
        /* Read read_size bytes at a time, gap_ms apart. */
        for (;;) {
            ph_err err = conn_try_frame(s->c, &f);
            DWORD got = 0;
            if (err == PH_OK)
                break;
            if (err == PH_EAGAIN) {
                Sleep(s->gap_ms);
                err = read_some(s->c, s->read_size, IO_TIMEOUT_MS, &got);
                if (err == PH_OK) {
                    s->c->in_off = 0;
                    s->c->in_len = got;
                    continue;
                }
            }
            snprintf(s->why, sizeof s->why, "steady reader (conn %lu), "
                     "reply %d of %d, %llu ms in: %s", (unsigned long)s->c->id,
                     k + 1, s->count, (unsigned long long)(ms_now() - t0),
                     err == PH_ECLOSED ? "closed by the server"
                                       : ph_strerror(err));
            s->failed = 1;
            goto done;
        }
        fill(pl, s->size, 0x53544459u, (uint32_t)k + 1);
        if (f.kind != PH_REPLY || f.id != (uint32_t)k + 1 ||
            !payload_is(&f, pl, s->size)) {
            describe(&f, d, sizeof d);
            snprintf(s->why, sizeof s->why, "steady reader: expected the echo "
                     "of %d, got %s", k + 1, d);
            s->failed = 1;
            goto done;
        }
    }
    if (conn_write_finish(s->c, IO_TIMEOUT_MS) != 0 || barrier(s->c) != 0) {
        snprintf(s->why, sizeof s->why, "steady reader after all replies: %s",
                 s->c->why);
        s->failed = 1;
    }
    s->ms = ms_now() - t0;
done:
    free(pl);
    ph_buf_free(&b);
    return 0;
}

/* stalled_reader: with send_queue_bytes = 65536 and send_stall_timeout_ms =
 * 2000, clients that pipeline 1 MiB of sys.echo requests and never read are
 * closed 2000..4500 ms after they started writing (sys.clients still listed
 * them at 1700 ms or later); what they can still read is a prefix of their
 * replies, in order; their pending write fails. A client that pipelines
 * 2 MiB and reads 16 KiB every 50 ms (over 6 s at the quota) is not closed
 * and gets every reply. */
static void case_stalled_reader(void)
{
    enum { N = 4, DEADLINE = 2000, COUNT = 64, SIZE = 16 * 1024 };
    static pinger pg;
    static steady sr;
    conn *bad[N];
    tracked tr[N + 1];
    uint64_t t0[N], t0_late[N], deadline, waited;
    ph_buf b[N];
    daemon *d;
    conn *ctl;
    hstats s0, s1;
    HANDLE th;
    int i, gone = 0, listed = 0;
    uint64_t queued = 0;

    SETUP("[limits]\nsend_queue_bytes = 65536\nsend_stall_timeout_ms = 2000\n",
          d, ctl, &pg);
    memset(&sr, 0, sizeof sr);
    CHECK_CLIENT(sr.c, d->pipe);
    sr.count = 128;
    sr.size = SIZE;
    sr.read_size = 16 * 1024;
    sr.gap_ms = 50;
    memset(b, 0, sizeof b);
    for (i = 0; i < N; i++) {
        CHECK_CLIENT(bad[i], d->pipe);
        CHECK(echo_batch(&b[i], 0xBAD00000u + (uint32_t)i, 1, COUNT, SIZE) == 0);
        tr[i].id = bad[i]->id;
        tr[i].last_seen = tr[i].gone_at = 0;
    }
    tr[N].id = sr.c->id;
    tr[N].last_seen = tr[N].gone_at = 0;
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    th = CreateThread(NULL, 0, steady_main, &sr, 0, NULL);
    CHECK(th != NULL);
    for (i = 0; i < N; i++) {
        t0[i] = ms_now();
        CHECK_OK(bad[i], conn_write_start(bad[i], b[i].data, b[i].len));
        t0_late[i] = ms_now();
    }
    deadline = t0_late[N - 1] + DEADLINE + SLACK_MS + 2000;
    while (gone < N && ms_left(deadline)) {
        int g = track_poll(ctl, tr, N + 1, &listed, &queued);
        CHECK_OK(ctl, g < 0);
        gone = g - (tr[N].gone_at != 0);
        if (tr[N].gone_at != 0)
            break;
        Sleep(POLL_MS);
    }
    pinger_phase(&pg, PH_AFTER);
    if (tr[N].gone_at != 0) {
        PH_FAIL_HERE("the steady reader (conn %lu) was dropped %llu ms in",
                     (unsigned long)sr.c->id,
                     (unsigned long long)(tr[N].gone_at - t0[0]));
        return;
    }
    for (i = 0; i < N; i++) {
        char what[120];
        if (tr[i].gone_at == 0) {
            PH_FAIL_HERE("stalled reader %d (conn %lu) still listed %llu ms "
                         "after it began writing (deadline %d ms)", i,
                         (unsigned long)tr[i].id,
                         (unsigned long long)(ms_now() - t0[i]), DEADLINE);
            return;
        }
        snprintf(what, sizeof what, "stalled reader %d last listed", i);
        /* Listed until the deadline (less LISTED_SLACK_MS: polls are
         * POLL_MS apart, more on a loaded machine), gone soon after it. */
        CHECK_WITHIN(what, tr[i].last_seen - t0[i], DEADLINE - LISTED_SLACK_MS,
                     DEADLINE + SLACK_MS);
        snprintf(what, sizeof what, "stalled reader %d gone", i);
        CHECK_WITHIN(what, tr[i].gone_at - t0_late[i], DEADLINE,
                     DEADLINE + SLACK_MS);
        say("drop: stalled reader %d (conn %lu): listed at %llu ms, gone at "
            "%llu ms (deadline %d ms)", i, (unsigned long)tr[i].id,
            (unsigned long long)(tr[i].last_seen - t0[i]),
            (unsigned long long)(tr[i].gone_at - t0[i]), DEADLINE);
    }
    for (i = 0; i < N; i++) {
        int got = 0;
        if (conn_write_finish(bad[i], 5000) == 0) {
            PH_FAIL_HERE("stalled reader %d: its 1 MiB write completed, though "
                         "the server stopped reading at its quota", i);
            return;
        }
        CHECK_OK(bad[i], read_echoes(bad[i], 0xBAD00000u + (uint32_t)i, 1,
                                     COUNT, SIZE, 1, &got));
        say("stalled reader %d: write failed (%s); %d of %d replies left in "
            "its pipe, in order, then the close", i, bad[i]->why, got, COUNT);
        CHECK(got < COUNT);
    }
    if (WaitForSingleObject(th, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the steady reader did not finish in 60 s");
        return;
    }
    CloseHandle(th);
    if (sr.failed) {
        PH_FAIL_HERE("%s", sr.why);
        return;
    }
    say("the steady reader got all %d replies of %d bytes in %llu ms (reading "
        "%lu bytes every %lu ms), never dropped", sr.count, (int)sr.size,
        (unsigned long long)sr.ms, (unsigned long)sr.read_size,
        (unsigned long)sr.gap_ms);
    CHECK(sr.ms > 3 * DEADLINE); /* it spent longer than the deadline at it */
    CHECK_PINGER(&pg, "4 stalled readers and a slow steady one");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_STALL, N);
    for (i = 0; i < N; i++) {
        conn_close(bad[i]);
        ph_buf_free(&b[i]);
    }
    conn_close(sr.c);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* queued_cap: max_queued_bytes = 1 MiB, send_queue_bytes = 1 MiB (so no
 * single client is at its own quota). Two small non-readers queue 150 KiB of
 * replies each, then four big ones 600 KiB each. Whatever the timing, the
 * server must drop the biggest until the total is under 1 MiB: one big one
 * plus the two small ones fit (at most 900 KiB), two big ones do not (each
 * holds at least 600 KiB less a 64 KiB pipe buffer), so exactly three big
 * ones go, within 3.5 s of the last write; the others, the pinger and the
 * control connection keep working and get every reply. */
static void case_queued_cap(void)
{
    enum { BIG = 4, SMALL = 2, N = BIG + SMALL, PIECE = 60 * 1024,
           BIG_COUNT = 10, SMALL_COUNT = 5, SMALL_PIECE = 30 * 1024,
           CAP = 1048576, PERIOD = 1000 };
    static pinger pg;
    conn *cs[N];
    tracked tr[N];
    ph_buf b[N];
    uint64_t t_fill, deadline, total = 0, settled = 0, waited;
    daemon *d;
    conn *ctl;
    hstats s0, s1;
    int i, gone = 0, listed = 0, dropped_big = 0;

    SETUP("[limits]\nmax_queued_bytes = 1048576\nsend_queue_bytes = 1048576\n"
          "send_stall_timeout_ms = 60000\n", d, ctl, &pg);
    memset(b, 0, sizeof b);
    for (i = 0; i < N; i++) {
        int big = i < BIG;
        CHECK_CLIENT(cs[i], d->pipe);
        CHECK(echo_batch(&b[i], 0xCA900000u + (uint32_t)i, 1,
                         big ? BIG_COUNT : SMALL_COUNT,
                         big ? PIECE : SMALL_PIECE) == 0);
        tr[i].id = cs[i]->id;
        tr[i].last_seen = tr[i].gone_at = 0;
    }
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    for (i = BIG; i < N; i++)
        CHECK_OK(cs[i], conn_write(cs[i], b[i].data, b[i].len));
    Sleep(200);
    for (i = 0; i < BIG; i++)
        CHECK_OK(cs[i], conn_write_start(cs[i], b[i].data, b[i].len));
    for (i = 0; i < BIG; i++) {
        /* Under the quota: the server reads it all. */
        CHECK_OK(cs[i], conn_write_finish(cs[i], IO_TIMEOUT_MS));
    }
    t_fill = ms_now();
    /* Until three are gone, then two more check periods to see no more go. */
    deadline = t_fill + PERIOD + SLACK_MS + 2000;
    for (;;) {
        int g = track_poll(ctl, tr, N, &listed, &total);
        CHECK_OK(ctl, g < 0);
        gone = g;
        if (gone >= BIG - 1 && settled == 0)
            settled = ms_now() + 2 * PERIOD + 200;
        if ((settled && ms_now() >= settled) || ms_left(deadline) == 0)
            break;
        Sleep(POLL_MS);
    }
    pinger_phase(&pg, PH_AFTER);
    for (i = 0; i < N; i++) {
        if (tr[i].gone_at == 0)
            continue;
        if (i >= BIG) {
            PH_FAIL_HERE("small client %d (conn %lu, 150 KiB) was dropped: it "
                         "never held the most", i, (unsigned long)tr[i].id);
            return;
        }
        dropped_big++;
        CHECK_WITHIN("a big non-reader gone", tr[i].gone_at - t_fill, 0,
                     PERIOD + SLACK_MS);
        say("drop: big non-reader %d (conn %lu) gone %llu ms after the last "
            "write completed", i, (unsigned long)tr[i].id,
            (unsigned long long)(tr[i].gone_at - t_fill));
    }
    say("after the drops: %d connections listed, %llu bytes queued in all "
        "(cap %d)", listed, (unsigned long long)total, CAP);
    if (dropped_big != BIG - 1) {
        PH_FAIL_HERE("%d of the %d big non-readers were dropped; the cap "
                     "allows exactly one of them with the small ones",
                     dropped_big, BIG);
        return;
    }
    CHECK(total <= CAP);
    for (i = 0; i < N; i++) {
        int big = i < BIG, got = 0, count = big ? BIG_COUNT : SMALL_COUNT;
        CHECK_OK(cs[i], read_echoes(cs[i], 0xCA900000u + (uint32_t)i, 1, count,
                                    big ? PIECE : SMALL_PIECE,
                                    tr[i].gone_at != 0, &got));
        if (tr[i].gone_at == 0) {
            CHECK_OK(cs[i], barrier(cs[i]));
            say("%s non-reader %d kept: all %d replies, in order", big ? "big"
                : "small", i, count);
        } else {
            say("big non-reader %d dropped: %d of %d replies left in its "
                "pipe, in order, then the close", i, got, count);
        }
    }
    CHECK_PINGER(&pg, "non-readers past max_queued_bytes");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 2 + N - (BIG - 1), 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_QUEUED, BIG - 1);
    CHECK_GREW(s0, s1, ST_L_STALL, 0);
    for (i = 0; i < N; i++) {
        conn_close(cs[i]);
        ph_buf_free(&b[i]);
    }
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* Open a connection and send one sys.ping (id 1): 1 = answered (the
 * connection is kept in *out), 0 = ERROR BUSY naming the limit then the
 * close, -1 = anything else (why). *busy_ms: from the ping to the ERROR. */
static int try_join(const char *pipe, const char *needle, conn **out,
                    uint64_t *busy_ms, char *why, size_t cap)
{
    conn *c = conn_open(pipe);
    ph_frame f;
    char d[400], text[300];
    uint64_t t0;

    *out = NULL;
    if (!c) {
        snprintf(why, cap, "could not connect");
        return -1;
    }
    t0 = ms_now();
    if (send_request(c, "sys.ping", 1, NULL, 0) != 0 ||
        conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK) {
        snprintf(why, cap, "%s", c->why);
        conn_close(c);
        return -1;
    }
    describe(&f, d, sizeof d);
    if (f.kind == PH_REPLY && f.id == 1) {
        *out = c;
        return 1;
    }
    if (f.kind != PH_ERROR || f.status != E_BUSY || f.id != 0) {
        snprintf(why, cap, "expected a REPLY or ERROR BUSY id 0, got %s", d);
        conn_close(c);
        return -1;
    }
    error_text(&f, text, sizeof text);
    *busy_ms = ms_now() - t0;
    if (!strstr(text, needle)) {
        snprintf(why, cap, "ERROR BUSY \"%s\" does not name \"%s\"", text,
                 needle);
        conn_close(c);
        return -1;
    }
    if (expect_closed(c, IO_TIMEOUT_MS) != 0) {
        snprintf(why, cap, "after ERROR BUSY: %s", c->why);
        conn_close(c);
        return -1;
    }
    conn_close(c);
    return 0;
}

/* per_user: max_connections_per_user = 5 and every client here is one
 * account (the control connection and the pinger are two of the five). A
 * sixth gets ERROR BUSY naming the limit at its first bytes and is closed;
 * once one closes, a new one is accepted. Then floods: 4 waves of 60
 * connections, each sending a ping, against 3 free places: exactly 3 of
 * each wave are served, 57 get BUSY; the pinger does not notice. */
static void case_per_user(void)
{
    enum { LIMIT = 5, MIN_WAVES = 4, FLOOD = 60 };
    static pinger pg;
    static conn *fl[FLOOD];
    const char *needle = "max_connections_per_user (5)";
    conn *a[3], *x, *y;
    daemon *d;
    conn *ctl;
    hstats s0, s1;
    uint64_t busy_ms = 0, worst_busy = 0, waited, t_flood;
    window win;
    char why[600];
    int i, w, rc, refused = 0;

    SETUP("[limits]\nmax_connections_per_user = 5\n", d, ctl, &pg);
    for (i = 0; i < 3; i++)
        CHECK_CLIENT(a[i], d->pipe);
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_BASELINE(&pg);
    pinger_phase(&pg, PH_DURING);

    rc = try_join(d->pipe, needle, &x, &busy_ms, why, sizeof why);
    if (rc != 0) {
        PH_FAIL_HERE("the sixth connection of one account: %s",
                     rc > 0 ? "was served" : why);
        return;
    }
    refused++;
    say("the sixth connection: ERROR BUSY naming %s %llu ms after its first "
        "bytes, then the close", needle, (unsigned long long)busy_ms);
    CHECK_WITHIN("ERROR BUSY", busy_ms, 0, SLACK_MS);

    /* One leaves: its place is free again once the server has seen it go. */
    conn_close(a[0]);
    CHECK_OK(ctl, wait_current(ctl, LIMIT - 1, 5000, &waited));
    rc = try_join(d->pipe, needle, &y, &busy_ms, why, sizeof why);
    if (rc != 1) {
        PH_FAIL_HERE("after one of five closed (gone from the counts in %llu "
                     "ms), a new connection: %s", (unsigned long long)waited,
                     rc == 0 ? "ERROR BUSY" : why);
        return;
    }
    say("one closed (the server counted it gone in %llu ms): a new one is "
        "served", (unsigned long long)waited);
    conn_close(y);
    conn_close(a[1]);
    conn_close(a[2]);

    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    t_flood = ms_now();
    /* At least MIN_WAVES, and on until the pinger has had its round trips,
     * in attack windows and quiet ones. */
    window_begin(&win, &pg);
    for (w = 0; ms_now() - win.t0 < MAX_ATTACK_MS; w++) {
        int served = 0, busy = 0;
        for (i = 0; i < FLOOD; i++) {
            fl[i] = conn_open(d->pipe);
            CHECK(fl[i] != NULL);
        }
        for (i = 0; i < FLOOD; i++)
            CHECK_OK(fl[i], send_request(fl[i], "sys.ping", 1, NULL, 0));
        for (i = 0; i < FLOOD; i++) {
            ph_frame f;
            char dsc[400], text[300];
            uint64_t t = ms_now();
            CHECK_OK(fl[i], conn_read(fl[i], &f, IO_TIMEOUT_MS) != PH_OK);
            describe(&f, dsc, sizeof dsc);
            if (f.kind == PH_REPLY && f.id == 1) {
                served++;
                continue;
            }
            error_text(&f, text, sizeof text);
            if (f.kind != PH_ERROR || f.status != E_BUSY || f.id != 0 ||
                !strstr(text, needle)) {
                PH_FAIL_HERE("wave %d, connection %d: expected a REPLY or "
                             "ERROR BUSY naming %s, got %s", w, i, needle, dsc);
                return;
            }
            CHECK_OK(fl[i], expect_closed(fl[i], IO_TIMEOUT_MS));
            if (ms_now() - t > worst_busy)
                worst_busy = ms_now() - t;
            busy++;
        }
        if (w < 2)
            say("flood wave %d: %d connections at once with 3 places free: "
                "%d served, %d ERROR BUSY then closed", w, FLOOD, served,
                busy);
        if (served != LIMIT - 2) {
            PH_FAIL_HERE("wave %d: %d of %d served; the limit leaves exactly %d "
                         "places", w, served, FLOOD, LIMIT - 2);
            return;
        }
        refused += busy;
        for (i = 0; i < FLOOD; i++)
            conn_close(fl[i]);
        /* The wave is over when the server has seen its clients go. */
        CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
        if (window_tick(&win) && w + 1 >= MIN_WAVES)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    say("%d waves of %d in %llu ms (%d quiet windows between), each: exactly "
        "3 served, the rest ERROR BUSY then closed, at worst %llu ms after "
        "the ping", w + 1, FLOOD, (unsigned long long)(ms_now() - t_flood),
        win.quiet_windows, (unsigned long long)worst_busy);
    CHECK_PINGER(&pg, "floods to max_connections_per_user");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_USER, refused);
    CHECK_GREW(s0, s1, ST_L_CONN, 0);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* Register spec and require the reply JSON to say state. */
static int reg(conn *c, const char *spec, const char *state)
{
    char *s = call_text(c, "sys.register", spec);
    char want[64];

    if (!s)
        return failf(c, "sys.register '%s': %s", spec, c->why);
    snprintf(want, sizeof want, "\"state\":\"%s\"", state);
    if (!strstr(s, want)) {
        failf(c, "sys.register '%s': expected state %s, got %s", spec, state,
              s);
        free(s);
        return -1;
    }
    free(s);
    return 0;
}

/* The routes and subscriptions sys.clients lists for conn id. */
static int clients_lists(conn *ctl, uint32_t id, char *routes, char *subs,
                         size_t cap)
{
    char obj[4096];

    if (clients_row(ctl, id, obj, sizeof obj) != 0)
        return -1;
    if (json_str_list(obj, "routes", routes, cap) != 0 ||
        json_str_list(obj, "subscriptions", subs, cap) != 0)
        return failf(ctl, "sys.clients row of conn %lu has no routes or "
                     "subscriptions list: %s", (unsigned long)id, obj);
    return 0;
}

#define CHECK_LISTS(ctl, id, want_routes, want_subs)                          \
    do {                                                                      \
        char ph__r[1024], ph__s[1024];                                        \
        CHECK_OK(ctl, clients_lists((ctl), (id), ph__r, ph__s, sizeof ph__r));\
        if (strcmp(ph__r, (want_routes)) != 0 ||                              \
            strcmp(ph__s, (want_subs)) != 0) {                                \
            PH_FAIL_HERE("sys.clients, conn %lu: routes [%s] subscriptions "  \
                         "[%s], expected [%s] and [%s]", (unsigned long)(id), \
                         ph__r, ph__s, (want_routes), (want_subs));           \
            return;                                                           \
        }                                                                     \
    } while (0)

/* table_limits: max_routes_per_client = 3, max_subscriptions_per_client = 3.
 * A fourth sys.register / sys.subscribe gets ERROR BUSY naming the limit;
 * repeating one held changes nothing and is no error; giving one up makes
 * room; the limits are per connection. Then a client pipelines 1000 of
 * each past the limits: every one is refused, its tables stay at 3, it
 * stays connected, and the pinger does not notice. */
static void case_table_limits(void)
{
    enum { FLOOD = 1000, BATCH = 100 };
    static pinger pg;
    const char *rneedle = "max_routes_per_client (3)";
    const char *sneedle = "max_subscriptions_per_client (3)";
    conn *a, *b2, *p;
    daemon *d;
    conn *ctl;
    hstats s0, s1, s2;
    ph_buf buf = {0};
    window win;
    char *s;
    int i, k;

    SETUP("[limits]\nmax_routes_per_client = 3\n"
          "max_subscriptions_per_client = 3\n", d, ctl, &pg);
    CHECK_CLIENT(a, d->pipe);
    CHECK_CLIENT(b2, d->pipe);
    CHECK_CLIENT(p, d->pipe);
    CHECK_OK(ctl, hub_stats(ctl, &s0));

    CHECK_OK(a, reg(a, "tl.r1", "serving"));
    CHECK_OK(a, reg(a, "tl.r2", "serving"));
    CHECK_OK(a, reg(a, "tl.r3.*", "serving"));
    CHECK_OK(a, ctl_err(a, "sys.register", "tl.r4", E_BUSY, rneedle));
    CHECK_OK(a, reg(a, "tl.r1", "serving")); /* held: no error, no change */
    CHECK_OK(a, ctl_ok(a, "sys.unregister", "tl.r2"));
    CHECK_OK(a, reg(a, "tl.r4", "serving"));
    CHECK_OK(a, ctl_err(a, "sys.register", "tl.r5", E_BUSY, rneedle));
    CHECK_OK(b2, reg(b2, "tl.b1", "serving"));
    CHECK_OK(b2, reg(b2, "tl.b2", "serving"));
    CHECK_OK(b2, reg(b2, "tl.b3", "serving"));
    CHECK_OK(b2, ctl_err(b2, "sys.register", "tl.b4", E_BUSY, rneedle));
    say("routes: a 4th sys.register got ERROR BUSY naming %s; a repeat was "
        "no error; an unregister made room; another connection has its own 3",
        rneedle);

    CHECK_OK(a, ctl_ok(a, "sys.subscribe", "tl.t1"));
    CHECK_OK(a, ctl_ok(a, "sys.subscribe", "tl.t2"));
    CHECK_OK(a, ctl_ok(a, "sys.subscribe", "tl.*"));
    CHECK_OK(a, ctl_err(a, "sys.subscribe", "tl.t4", E_BUSY, sneedle));
    CHECK_OK(a, ctl_ok(a, "sys.subscribe", "tl.t1")); /* held */
    CHECK_OK(a, ctl_ok(a, "sys.unsubscribe", "tl.t2"));
    CHECK_OK(a, ctl_ok(a, "sys.subscribe", "tl.t4"));
    CHECK_OK(a, ctl_err(a, "sys.subscribe", "*", E_BUSY, sneedle));
    CHECK_OK(b2, ctl_ok(b2, "sys.subscribe", "tl.b.1"));
    say("subscriptions: the same with %s", sneedle);
    CHECK_LISTS(ctl, a->id, "tl.r1 tl.r3.* tl.r4", "tl.t1 tl.* tl.t4");
    CHECK_LISTS(ctl, b2->id, "tl.b1 tl.b2 tl.b3", "tl.b.1");
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_L_ROUTES, 3);
    CHECK_GREW(s0, s1, ST_L_SUBS, 2);

    /* What a held route and a subscription still do. */
    CHECK_OK(p, send_request(p, "tl.r4", 9, "q", 1));
    {
        ph_frame f;
        char dsc[400];
        CHECK_OK(a, conn_read(a, &f, IO_TIMEOUT_MS) != PH_OK);
        describe(&f, dsc, sizeof dsc);
        if (f.kind != PH_REQUEST || !route_is(&f, "tl.r4")) {
            PH_FAIL_HERE("provider: expected the REQUEST 'tl.r4', got %s", dsc);
            return;
        }
        CHECK_OK(a, send_frame(a, PH_REPLY, NULL, f.id, 0, "r", 1));
        CHECK_OK(p, expect_reply(p, 9, "r", 1));
    }
    CHECK_OK(p, send_request(p, "tl.r5", 10, "q", 1));
    CHECK_OK(p, expect_error(p, 10, E_NO_ROUTE, NULL));

    /* The flood. */
    CHECK_BASELINE(&pg);
    /* At least FLOOD of each, and on until the pinger has had its round
     * trips, in attack windows and quiet ones. */
    window_begin(&win, &pg);
    for (k = 0; ms_now() - win.t0 < MAX_ATTACK_MS; ) {
        buf.len = 0;
        for (i = k; i < k + BATCH; i++) {
            char name[32];
            snprintf(name, sizeof name, "tl.flood%d", i);
            CHECK(append_frame(&buf, PH_REQUEST, "sys.register", 2 * i + 1, 0,
                               name, strlen(name)) == 0);
            CHECK(append_frame(&buf, PH_REQUEST, "sys.subscribe", 2 * i + 2, 0,
                               name, strlen(name)) == 0);
        }
        CHECK_OK(a, conn_write(a, buf.data, buf.len));
        for (i = k; i < k + BATCH; i++) {
            CHECK_OK(a, expect_error(a, 2 * i + 1, E_BUSY, rneedle));
            CHECK_OK(a, expect_error(a, 2 * i + 2, E_BUSY, sneedle));
        }
        k += BATCH;
        if (window_tick(&win) && k >= FLOOD)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ph_buf_free(&buf);
    say("%d sys.register and %d sys.subscribe past the limits: each got ERROR "
        "BUSY", k, k);
    CHECK_OK(a, barrier(a));
    CHECK_LISTS(ctl, a->id, "tl.r1 tl.r3.* tl.r4", "tl.t1 tl.* tl.t4");
    s = call_text(ctl, "sys.routes", NULL);
    CHECK_OK(ctl, s == NULL);
    if (strstr(s, "tl.flood")) {
        PH_FAIL_HERE("sys.routes lists a refused route: %.300s", s);
        free(s);
        return;
    }
    free(s);
    CHECK_PINGER(&pg, "requests past the table limits");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, hub_stats(ctl, &s2));
    CHECK_GREW(s1, s2, ST_L_ROUTES, k);
    CHECK_GREW(s1, s2, ST_L_SUBS, k);
    conn_close(a);
    conn_close(b2);
    conn_close(p);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* The connect-and-close load of connect_close_1000. */
typedef struct churner {
    const char *pipe;
    int count, done, failed;
    volatile LONG *enough; /* past count, go on until this is set */
    DWORD err;
} churner;

static DWORD WINAPI churner_main(void *arg)
{
    churner *k = arg;

    for (k->done = 0; k->done < k->count || (!*k->enough && k->done < 20000);
         k->done++) {
        DWORD e = 0;
        HANDLE h = open_pipe_at(k->pipe, CONNECT_TIMEOUT_MS, &e, NULL);
        if (h == INVALID_HANDLE_VALUE) {
            k->failed = 1;
            k->err = e;
            break;
        }
        CloseHandle(h);
    }
    return 0;
}

/* connect_close_1000: clients that connect and close without a byte.
 * First 1000 of them at full speed from two threads (and on until the
 * pinger has had its round trips): the server answers throughout and
 * after, a new client is served, and connections_current is back to its
 * base within 5 s of the last close (half the default first-frame
 * deadline: the server must see the closes, not time them out); no limit
 * fired. The pinger's round trips during that flood are reported, not
 * judged: at full speed it saturates a 2-core Wine box (the reference
 * daemon slows down too). Then the same churn paced and interleaved (see
 * window_tick), with the pinger judged. */
static void case_connect_close_1000(void)
{
    enum { THREADS = 2, PER = 500, UNIT = 25 };
    static pinger pg;
    static churner ks[THREADS];
    static volatile LONG enough;
    HANDLE th[THREADS];
    daemon *d;
    conn *ctl, *c;
    hstats s0, s1;
    window win;
    uint64_t t0, ms, waited;
    int i, total = 0, paced = 0;

    SETUP(NULL, d, ctl, &pg);
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_EQ(s0.v[ST_CUR], 2);
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    t0 = ms_now();
    for (i = 0; i < THREADS; i++) {
        ks[i].pipe = d->pipe;
        ks[i].count = PER;
        ks[i].enough = &enough;
        th[i] = CreateThread(NULL, 0, churner_main, &ks[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    /* 1000 at least, and on until the pinger has had its round trips. */
    pinger_wait(&pg, PH_DURING, RTT_MIN_SAMPLES, 60000);
    InterlockedExchange(&enough, 1);
    if (WaitForMultipleObjects(THREADS, th, TRUE, 120000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("1000 connects and closes took over 120 s");
        return;
    }
    ms = ms_now() - t0;
    pinger_phase(&pg, PH_AFTER);
    for (i = 0; i < THREADS; i++) {
        CloseHandle(th[i]);
        total += ks[i].done;
        if (ks[i].failed) {
            PH_FAIL_HERE("churner %d: connect %d failed with error %lu", i,
                         ks[i].done + 1, (unsigned long)ks[i].err);
            return;
        }
    }
    say("%d connects and closes without a byte in %llu ms, from %d threads",
        total, (unsigned long long)ms, THREADS);
    CHECK(total >= THREADS * PER);
    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    say("connections_current back to 2 %llu ms after the last close",
        (unsigned long long)waited);
    CHECK_CLIENT(c, d->pipe);
    CHECK_OK(c, barrier(c));
    CHECK_PINGER_X(&pg, "connects and closes at full speed", 0);

    /* Paced, interleaved, judged. */
    pinger_reset(&pg);
    CHECK_BASELINE(&pg);
    window_begin(&win, &pg);
    while (ms_now() - win.t0 < MAX_ATTACK_MS) {
        for (i = 0; i < UNIT; i++) {
            DWORD e = 0;
            HANDLE h = open_pipe_at(d->pipe, CONNECT_TIMEOUT_MS, &e, NULL);
            if (h == INVALID_HANDLE_VALUE) {
                PH_FAIL_HERE("paced churn: connect %d failed with error %lu",
                             paced + 1, (unsigned long)e);
                return;
            }
            CloseHandle(h);
            paced++;
        }
        if (window_tick(&win) && paced >= THREADS * PER)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    say("%d more connects and closes, paced, in %llu ms (%d quiet windows "
        "between)", paced, (unsigned long long)(ms_now() - win.t0),
        win.quiet_windows);
    CHECK(paced >= THREADS * PER);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(c, barrier(c));
    CHECK_PINGER(&pg, "connects and closes, paced");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    say("connections_total grew by %llu", (unsigned long long)(s1.v[ST_TOTAL] -
                                                               s0.v[ST_TOTAL]));
    CHECK_GREW(s0, s1, ST_L_CONN, 0);
    CHECK_GREW(s0, s1, ST_L_USER, 0);
    CHECK_GREW(s0, s1, ST_L_FIRST, 0);
    conn_close(c);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* One client of the burst. */
typedef struct burster {
    const char *pipe;
    HANDLE go;
    uint64_t t_go_ms, served_ms;
    uint32_t id;
    int ok;
    char why[600];
} burster;

static DWORD WINAPI burster_main(void *arg)
{
    burster *b = arg;
    conn *c;

    WaitForSingleObject(b->go, INFINITE);
    c = conn_open(b->pipe);
    if (!c) {
        snprintf(b->why, sizeof b->why, "could not connect");
        return 0;
    }
    if (send_request(c, "sys.ping", 1, NULL, 0) != 0 ||
        expect_reply(c, 1, NULL, 0) != 0 || hello_id(c) != 0) {
        snprintf(b->why, sizeof b->why, "%s", c->why);
        conn_close(c);
        return 0;
    }
    b->served_ms = ms_now() - b->t_go_ms;
    b->id = c->id;
    b->ok = 1;
    conn_close(c);
    return 0;
}

/* burst: 10 x pending_instances clients (40) connect at the same moment
 * (threads released together): every one is served (sys.ping, then
 * sys.hello with its own conn_id); no one gets BUSY. */
static void case_burst(void)
{
    enum { MAXN = 64 };
    static burster bs[MAXN];
    HANDLE th[MAXN], go;
    daemon *d;
    conn *ctl;
    hstats s0, s1;
    uint64_t t0, worst = 0, waited;
    int i, j, n;

    CHECK_DAEMON_INI("[server]\npending_instances = 4\n", d);
    CHECK_CLIENT(ctl, d->pipe);
    CHECK_OK(ctl, hub_stats(ctl, &s0));
    CHECK_EQ(s0.v[ST_PENDING], 4);
    n = (int)(10 * s0.v[ST_PENDING]);
    go = CreateEventA(NULL, TRUE, FALSE, NULL);
    CHECK(go != NULL);
    for (i = 0; i < n; i++) {
        memset(&bs[i], 0, sizeof bs[i]);
        bs[i].pipe = d->pipe;
        bs[i].go = go;
        th[i] = CreateThread(NULL, 0, burster_main, &bs[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    Sleep(200);
    t0 = ms_now();
    for (i = 0; i < n; i++)
        bs[i].t_go_ms = t0;
    SetEvent(go);
    if (WaitForMultipleObjects((DWORD)n, th, TRUE, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the burst was not over in 60 s");
        return;
    }
    for (i = 0; i < n; i++) {
        CloseHandle(th[i]);
        if (!bs[i].ok) {
            PH_FAIL_HERE("burst client %d of %d: %s", i, n, bs[i].why);
            return;
        }
        for (j = 0; j < i; j++)
            CHECK(bs[j].id != bs[i].id);
        if (bs[i].served_ms > worst)
            worst = bs[i].served_ms;
    }
    CloseHandle(go);
    say("all %d clients of the burst (10 x pending_instances %llu) were "
        "served, the last %llu ms after the start", n,
        (unsigned long long)s0.v[ST_PENDING], (unsigned long long)worst);
    CHECK_OK(ctl, wait_current(ctl, 1, 5000, &waited));
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK(s1.v[ST_TOTAL] - s0.v[ST_TOTAL] >= (uint64_t)n);
    CHECK_GREW(s0, s1, ST_L_CONN, 0);
    CHECK_GREW(s0, s1, ST_L_USER, 0);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* The test's own user SID as a string ("S-1-5-..."), into out. */
static int own_sid(char *out, size_t cap)
{
    HANDLE tok;
    TOKEN_USER *tu;
    DWORD need = 0;
    char *s = NULL;
    int rc = -1;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return -1;
    GetTokenInformation(tok, TokenUser, NULL, 0, &need);
    tu = malloc(need ? need : 1);
    if (tu && GetTokenInformation(tok, TokenUser, tu, need, &need) &&
        ConvertSidToStringSidA(tu->User.Sid, &s)) {
        rc = (size_t)snprintf(out, cap, "%s", s) < cap ? 0 : -1;
        LocalFree(s);
    }
    free(tu);
    CloseHandle(tok);
    return rc;
}

/* Serve one forwarded request on p: it must be route with payload. */
static int serve_one(conn *p, const char *route, const char *payload,
                     const char *reply)
{
    ph_frame f;
    char d[400];

    if (conn_read(p, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(p, "waiting for a forwarded '%s': %s", route, p->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_REQUEST || !route_is(&f, route) ||
        !payload_is(&f, payload, strlen(payload)))
        return failf(p, "expected a forwarded REQUEST '%s' \"%s\", got %s",
                     route, payload, d);
    return send_frame(p, PH_REPLY, NULL, f.id, 0, reply, strlen(reply));
}

static int expect_event(conn *c, const char *route, const char *payload)
{
    ph_frame f;
    char d[400];

    if (conn_read(c, &f, IO_TIMEOUT_MS) != PH_OK)
        return failf(c, "waiting for EVENT '%s': %s", route, c->why);
    describe(&f, d, sizeof d);
    if (f.kind != PH_EVENT || !route_is(&f, route) ||
        !payload_is(&f, payload, strlen(payload)))
        return failf(c, "expected EVENT '%s' \"%s\", got %s", route, payload,
                     d);
    return 0;
}

static char g_access_ini[2048];

/* access: [route.NAME] rules. The test client is neither SYSTEM nor
 * NT AUTHORITY\SYSTEM: a call, provide, subscribe or publish rule naming
 * only those refuses it with ERROR FORBIDDEN naming the rule, counted in
 * access_denied, and nothing reaches anyone; a rule naming its own SID lets
 * it through; a prefix rule covers the routes under it; a '*' subscriber
 * does not get events of a topic whose subscribe rule refuses it. Then 1000
 * pipelined refused calls: each FORBIDDEN, the caller stays connected, the
 * pinger does not notice. */
static void access_rules(void)
{
    enum { FLOOD = 1000, BATCH = 100 };
    static pinger pg;
    char sid[200];
    const char *ini;
    daemon *d;
    conn *ctl, *c, *p, *sa, *sw;
    hstats s0, s1, s2;
    ph_buf buf = {0};
    window win;
    int i, k, denied = 0;

    CHECK(own_sid(sid, sizeof sid) == 0);
    snprintf(g_access_ini, sizeof g_access_ini,
             "[route.acc.secret]\ncall = SY\n\n"
             "[route.acc.named]\ncall = NT AUTHORITY\\SYSTEM\n\n"
             "[route.acc.mine]\ncall = SY, %s\n\n"
             "[route.acc.wild.*]\ncall = SY\n\n"
             "[route.acc.prov]\nprovide = SY\n\n"
             "[route.acc.topic]\nsubscribe = SY\n\n"
             "[route.acc.pub]\npublish = SY\n", sid);
    ini = g_access_ini;
    SETUP(ini, d, ctl, &pg);
    CHECK_CLIENT(c, d->pipe);
    CHECK_CLIENT(p, d->pipe);
    CHECK_CLIENT(sa, d->pipe);
    CHECK_CLIENT(sw, d->pipe);
    say("the test runs as %s", sid);
    /* Providers for the call rules (providing them is not restricted). */
    CHECK_OK(p, reg(p, "acc.secret", "serving"));
    CHECK_OK(p, reg(p, "acc.named", "serving"));
    CHECK_OK(p, reg(p, "acc.mine", "serving"));
    CHECK_OK(p, reg(p, "acc.wild.*", "serving"));
    CHECK_OK(ctl, hub_stats(ctl, &s0));

    CHECK_OK(c, ctl_err(c, "acc.secret", "x", E_FORBIDDEN,
                        "[route.acc.secret] call"));
    CHECK_OK(c, ctl_err(c, "acc.named", "x", E_FORBIDDEN,
                        "[route.acc.named] call"));
    CHECK_OK(c, ctl_err(c, "acc.wild.deep.er", "x", E_FORBIDDEN,
                        "[route.acc.wild.*] call"));
    denied += 3;
    CHECK_OK(p, barrier(p)); /* none of them reached the provider */
    CHECK_OK(c, send_request(c, "acc.mine", 5, "m", 1));
    CHECK_OK(p, serve_one(p, "acc.mine", "m", "mine"));
    CHECK_OK(c, expect_reply(c, 5, "mine", 4));
    say("call: SY and NT AUTHORITY\\SYSTEM refuse the test's SID, a prefix "
        "rule covers acc.wild.deep.er, a rule listing the SID lets it call");

    CHECK_OK(c, ctl_err(c, "sys.register", "acc.prov", E_FORBIDDEN,
                        "[route.acc.prov] provide"));
    denied++;
    CHECK_OK(c, ctl_err(c, "acc.prov", "x", E_NO_ROUTE, NULL));
    say("provide: sys.register refused naming the rule; nobody serves it");

    CHECK_OK(sa, ctl_err(sa, "sys.subscribe", "acc.topic", E_FORBIDDEN,
                         "[route.acc.topic] subscribe"));
    denied++;
    CHECK_OK(sa, ctl_ok(sa, "sys.subscribe", "acc.pub"));
    CHECK_OK(sw, ctl_ok(sw, "sys.subscribe", "*"));
    CHECK_OK(c, send_frame(c, PH_EVENT, "acc.topic", 0, 0, "t", 1));
    CHECK_OK(c, send_frame(c, PH_EVENT, "acc.other", 0, 0, "o", 1));
    CHECK_OK(c, barrier(c));
    CHECK_OK(sw, expect_event(sw, "acc.other", "o"));
    CHECK_OK(sw, barrier(sw)); /* not acc.topic, though '*' matches it */
    say("subscribe: refused naming the rule; a '*' subscriber gets acc.other "
        "and not acc.topic");

    CHECK_OK(c, send_frame(c, PH_EVENT, "acc.pub", 0, 0, "p", 1));
    CHECK_OK(c, expect_error(c, 0, E_FORBIDDEN, "[route.acc.pub] publish"));
    denied++;
    CHECK_OK(c, barrier(c));
    CHECK_OK(sa, barrier(sa)); /* its acc.pub subscription heard nothing */
    CHECK_OK(sw, barrier(sw));
    say("publish: refused naming the rule; no subscriber got it");
    CHECK_OK(ctl, hub_stats(ctl, &s1));
    CHECK_GREW(s0, s1, ST_DENIED, denied);

    CHECK_BASELINE(&pg);
    window_begin(&win, &pg);
    for (k = 0; ms_now() - win.t0 < MAX_ATTACK_MS; ) {
        buf.len = 0;
        for (i = k; i < k + BATCH; i++)
            CHECK(append_frame(&buf, PH_REQUEST, "acc.secret", (uint32_t)i + 1,
                               0, "x", 1) == 0);
        CHECK_OK(c, conn_write(c, buf.data, buf.len));
        for (i = k; i < k + BATCH; i++)
            CHECK_OK(c, expect_error(c, (uint32_t)i + 1, E_FORBIDDEN,
                                     "[route.acc.secret] call"));
        k += BATCH;
        if (window_tick(&win) && k >= FLOOD)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ph_buf_free(&buf);
    CHECK_OK(c, barrier(c));
    CHECK_OK(p, barrier(p));
    say("%d pipelined refused calls: each ERROR FORBIDDEN, the caller still "
        "connected, nothing reached the provider", k);
    CHECK_PINGER(&pg, "refused calls");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, hub_stats(ctl, &s2));
    CHECK_GREW(s1, s2, ST_DENIED, k);
    conn_close(c);
    conn_close(p);
    conn_close(sa);
    conn_close(sw);
    conn_close(pg.c);
    conn_close(pg.ref);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* min_integrity = high refuses a client below high integrity. The test's
 * own integrity is read from sys.clients; when it is high or more (as
 * under Wine, which runs every process elevated) the refusal cannot be
 * shown here and this says SKIP; tests/unit/test_hub.c covers the logic. */
static void access_min_integrity(void)
{
    daemon *d;
    conn *c;
    char obj[4096], integ[64];

    CHECK_DAEMON_INI("[route.acc.high]\nmin_integrity = high\n\n"
                     "[route.acc.sys]\nmin_integrity = system\n", d);
    CHECK_CLIENT(c, d->pipe);
    CHECK_OK(c, clients_row(c, c->id, obj, sizeof obj));
    if (json_str(obj, "integrity", integ, sizeof integ) != 0) {
        PH_FAIL_HERE("sys.clients has no integrity: %s", obj);
        return;
    }
    say("sys.clients says this client's integrity is \"%s\"", integ);
    /* Whatever the client's level, system is above it (the test does not
     * run as SYSTEM). */
    if (strcmp(integ, "system") != 0) {
        CHECK_OK(c, ctl_err(c, "acc.sys", "x", E_FORBIDDEN,
                            "[route.acc.sys] min_integrity"));
        say("min_integrity = system refused a %s client, naming the rule",
            integ);
    }
    if (strcmp(integ, "high") == 0 || strcmp(integ, "system") == 0) {
        conn_close(c);
        SKIP("min_integrity = high: this client runs at high integrity (Wine "
             "runs every process elevated), so a refused medium client cannot "
             "be shown here; tests/unit/test_hub.c covers the rule");
    }
    CHECK_OK(c, ctl_err(c, "acc.high", "x", E_FORBIDDEN,
                        "[route.acc.high] min_integrity"));
    say("min_integrity = high refused a %s client, naming the rule", integ);
    conn_close(c);
    CHECK_ALIVE(d);
}

/* clients_view: sys.clients lists every connection of this test with the
 * right conn_id, pid, SID, executable, routes, subscriptions and monitor
 * flag, a plausible connected_ms and growing frame and byte counts; a
 * closed connection leaves the list. */
static void case_clients_view(void)
{
    daemon *d;
    conn *ctl, *a, *b2, *m;
    char obj[4096], sid[200], got_sid[200], exe[1024];
    uint64_t v, now, fin1 = 0, fin2 = 0, bin = 0;
    const char *want_exe = "test_harden.exe";
    size_t el = strlen(want_exe);
    int flag = -1, i;
    conn *all[4];

    CHECK(own_sid(sid, sizeof sid) == 0);
    CHECK_DAEMON_INI(NULL, d);
    CHECK_CLIENT(ctl, d->pipe);
    CHECK_CLIENT(a, d->pipe);
    CHECK_CLIENT(b2, d->pipe);
    CHECK_CLIENT(m, d->pipe);
    CHECK_OK(a, reg(a, "cv.a", "serving"));
    CHECK_OK(a, reg(a, "cv.b.*", "serving"));
    CHECK_OK(b2, ctl_ok(b2, "sys.subscribe", "cv.t"));
    CHECK_OK(b2, ctl_ok(b2, "sys.subscribe", "cv.*"));
    CHECK_OK(m, ctl_ok(m, "sys.monitor", "cv.*"));

    all[0] = ctl;
    all[1] = a;
    all[2] = b2;
    all[3] = m;
    now = unix_ms();
    for (i = 0; i < 4; i++) {
        CHECK_OK(ctl, clients_row(ctl, all[i]->id, obj, sizeof obj));
        if (i == 0)
            say("sys.clients row of the control connection: %s", obj);
        CHECK(json_u64(obj, "pid", &v) == 0);
        CHECK_EQ(v, GetCurrentProcessId());
        if (json_str(obj, "sid", got_sid, sizeof got_sid) != 0 ||
            strcmp(got_sid, sid) != 0) {
            PH_FAIL_HERE("conn %lu: sid should be %s: %s",
                         (unsigned long)all[i]->id, sid, obj);
            return;
        }
        if (json_str(obj, "exe", exe, sizeof exe) != 0 || strlen(exe) < el ||
            _stricmp(exe + strlen(exe) - el, want_exe) != 0) {
            PH_FAIL_HERE("conn %lu: exe should end with %s: %s",
                         (unsigned long)all[i]->id, want_exe, obj);
            return;
        }
        CHECK(json_u64(obj, "connected_ms", &v) == 0);
        if (v + 60000 < now || v > now + 60000) {
            PH_FAIL_HERE("conn %lu: connected_ms %llu, now is %llu (Unix ms)",
                         (unsigned long)all[i]->id, (unsigned long long)v,
                         (unsigned long long)now);
            return;
        }
        CHECK(json_u64(obj, "frames_in", &v) == 0);
        CHECK(v >= 1); /* sys.hello at least */
        CHECK(json_u64(obj, "bytes_in", &v) == 0);
        CHECK(v >= 25);
        CHECK(json_u64(obj, "queued", &v) == 0);
        CHECK(json_u64(obj, "inflight", &v) == 0);
        CHECK_EQ(v, 0);
        CHECK(json_bool(obj, "monitor", &flag) == 0);
        CHECK_EQ(flag, all[i] == m);
        CHECK(json_bool(obj, "admin", &flag) == 0);
        {
            char integ[64];
            CHECK(json_str(obj, "integrity", integ, sizeof integ) == 0);
            CHECK(json_str(obj, "account", exe, sizeof exe) == 0);
        }
    }
    CHECK_LISTS(ctl, a->id, "cv.a cv.b.*", "");
    CHECK_LISTS(ctl, b2->id, "", "cv.t cv.*");
    CHECK_LISTS(ctl, m->id, "", "");
    CHECK_LISTS(ctl, ctl->id, "", "");
    say("all 4 connections listed with pid %lu, sid %s, exe ...\\%s, their "
        "routes, subscriptions and monitor flag",
        (unsigned long)GetCurrentProcessId(), sid, want_exe);

    /* Counts grow with traffic. */
    CHECK_OK(ctl, clients_row(ctl, b2->id, obj, sizeof obj));
    CHECK(json_u64(obj, "frames_in", &fin1) == 0);
    for (i = 0; i < 10; i++)
        CHECK_OK(b2, barrier(b2));
    CHECK_OK(ctl, clients_row(ctl, b2->id, obj, sizeof obj));
    CHECK(json_u64(obj, "frames_in", &fin2) == 0);
    CHECK(json_u64(obj, "bytes_in", &bin) == 0);
    CHECK_EQ(fin2 - fin1, 10);
    CHECK(json_u64(obj, "frames_out", &v) == 0);
    CHECK(v >= 10);

    /* A closed connection leaves the list. */
    {
        uint32_t gone = a->id;
        uint64_t t0 = ms_now();
        conn_close(a);
        for (;;) {
            char *s = call_text(ctl, "sys.clients", NULL);
            const char *p;
            int found = 0;
            CHECK_OK(ctl, s == NULL);
            for (p = s; json_next_object(&p, obj, sizeof obj) == 0;)
                if (json_u64(obj, "conn_id", &v) == 0 && v == gone)
                    found = 1;
            free(s);
            if (!found)
                break;
            if (ms_now() - t0 > 5000) {
                PH_FAIL_HERE("conn %lu closed 5 s ago and is still listed",
                             (unsigned long)gone);
                return;
            }
            Sleep(50);
        }
        say("a closed connection left the list within %llu ms",
            (unsigned long long)(ms_now() - t0));
    }
    conn_close(b2);
    conn_close(m);
    conn_close(ctl);
    CHECK_ALIVE(d);
}

/* ---- traffic: the clients of tests/wine/stop_busy.sh ---------------------- */

#define TRAFFIC_PER_THREAD 50

typedef struct tclient {
    conn *c;
    uint32_t seq;
    int ended;          /* the pipe broke */
    int saw_shutdown;   /* sys.shutdown came before the break */
    int write_closed;   /* a write found the pipe closed */
} tclient;

typedef struct tthread {
    tclient *cl;
    int n;
    volatile LONG rounds;
    volatile LONG replies;
    int failed;
    char why[700];
} tthread;

static volatile LONG g_traffic_stop;

/* After the shutdown event (or without it): only the close may come. */
static int traffic_end(tthread *t, tclient *k)
{
    ph_frame f;
    char d[400];
    ph_err err = conn_read(k->c, &f, IO_TIMEOUT_MS);

    if (err == PH_ECLOSED && ph_decoder_idle(&k->c->dec)) {
        k->ended = 1;
        return 0;
    }
    if (err == PH_OK)
        describe(&f, d, sizeof d);
    snprintf(t->why, sizeof t->why, "conn %lu after sys.shutdown: expected "
             "the close, got %s", (unsigned long)k->c->id,
             err == PH_OK ? d : k->c->why);
    t->failed = 1;
    return -1;
}

static DWORD WINAPI traffic_main_thread(void *arg)
{
    tthread *t = arg;
    uint8_t pl[48];
    int i, open = t->n;

    while (open > 0 && !t->failed && !g_traffic_stop) {
        for (i = 0; i < t->n; i++) {
            tclient *k = &t->cl[i];
            if (k->ended || k->write_closed)
                continue;
            k->seq++;
            fill(pl, sizeof pl, k->c->id, k->seq);
            if (send_request(k->c, "sys.echo", k->seq, pl, sizeof pl) != 0)
                k->write_closed = 1;
        }
        for (i = 0; i < t->n && !t->failed; i++) {
            tclient *k = &t->cl[i];
            ph_frame f;
            char d[400];
            ph_err err;

            if (k->ended)
                continue;
            err = conn_read(k->c, &f, IO_TIMEOUT_MS);
            if (err == PH_ECLOSED && ph_decoder_idle(&k->c->dec)) {
                k->ended = 1;
                open--;
                continue;
            }
            if (err != PH_OK) {
                snprintf(t->why, sizeof t->why, "conn %lu: %s",
                         (unsigned long)k->c->id, k->c->why);
                t->failed = 1;
                break;
            }
            describe(&f, d, sizeof d);
            if (f.kind == PH_EVENT && route_is(&f, "sys.shutdown")) {
                if (!payload_is(&f, "server stopping", 15)) {
                    snprintf(t->why, sizeof t->why, "conn %lu: %s",
                             (unsigned long)k->c->id, d);
                    t->failed = 1;
                    break;
                }
                k->saw_shutdown = 1;
                if (traffic_end(t, k) != 0)
                    break;
                open--;
                continue;
            }
            fill(pl, sizeof pl, k->c->id, k->seq);
            if (k->write_closed || f.kind != PH_REPLY || f.id != k->seq ||
                !payload_is(&f, pl, sizeof pl)) {
                snprintf(t->why, sizeof t->why, "conn %lu: expected the echo "
                         "of request %lu%s, got %s", (unsigned long)k->c->id,
                         (unsigned long)k->seq,
                         k->write_closed ? " (whose write failed)" : "", d);
                t->failed = 1;
                break;
            }
            InterlockedIncrement(&t->replies);
        }
        InterlockedIncrement(&t->rounds);
    }
    return 0;
}

/* traffic N PIPE: N clients in steady traffic (one sys.echo in flight
 * each). Prints "ready" once every client has had a round trip, then goes
 * on until every client's pipe is closed by the server. Exit 0 when every
 * client saw sys.shutdown then the close, or a clean close (at a frame
 * boundary), and every reply before it was right; 1 otherwise. */
static int traffic_main(int n, const char *name)
{
    char pipe[PH_PIPE_PATH_MAX + 1];
    tclient *cl;
    tthread *ts;
    HANDLE *th;
    int nt = (n + TRAFFIC_PER_THREAD - 1) / TRAFFIC_PER_THREAD, i, failed = 0;
    int shut = 0, closed = 0;
    LONG replies = 0;
    uint64_t t0;

    if (n < 1 || n > 1000 || ph_pipe_path(name, pipe, sizeof pipe) != PH_OK) {
        fprintf(stderr, "traffic: bad arguments\n");
        return 2;
    }
    cl = calloc((size_t)n, sizeof *cl);
    ts = calloc((size_t)nt, sizeof *ts);
    th = calloc((size_t)nt, sizeof *th);
    if (!cl || !ts || !th)
        return 2;
    for (i = 0; i < n; i++) {
        cl[i].c = conn_open(pipe);
        if (!cl[i].c || hello_id(cl[i].c) != 0) {
            fprintf(stderr, "traffic: client %d could not connect: %s\n", i,
                    cl[i].c ? cl[i].c->why : "no pipe");
            return 1;
        }
    }
    for (i = 0; i < nt; i++) {
        ts[i].cl = cl + i * TRAFFIC_PER_THREAD;
        ts[i].n = i == nt - 1 ? n - i * TRAFFIC_PER_THREAD : TRAFFIC_PER_THREAD;
        th[i] = CreateThread(NULL, 0, traffic_main_thread, &ts[i], 0, NULL);
        if (!th[i])
            return 2;
    }
    for (t0 = ms_now();;) {
        int ready = 1;
        for (i = 0; i < nt; i++)
            if (ts[i].rounds < 2 || ts[i].failed)
                ready = 0;
        if (ready)
            break;
        if (ms_now() - t0 > 60000) {
            fprintf(stderr, "traffic: not every client had a round trip in "
                    "60 s\n");
            for (i = 0; i < nt; i++)
                if (ts[i].failed)
                    fprintf(stderr, "traffic: %s\n", ts[i].why);
            return 1;
        }
        Sleep(20);
    }
    printf("ready\n");
    fflush(stdout);
    /* Until the server stops; the script bounds how long that may take. */
    if (WaitForMultipleObjects((DWORD)nt, th, TRUE, 170000) != WAIT_OBJECT_0) {
        InterlockedExchange(&g_traffic_stop, 1);
        fprintf(stderr, "traffic: clients still open after 170 s\n");
        return 1;
    }
    for (i = 0; i < nt; i++) {
        replies += ts[i].replies;
        if (ts[i].failed) {
            fprintf(stderr, "traffic: %s\n", ts[i].why);
            failed = 1;
        }
    }
    for (i = 0; i < n; i++) {
        if (cl[i].saw_shutdown)
            shut++;
        else if (cl[i].ended)
            closed++;
    }
    printf("%d clients: %d saw sys.shutdown then the close, %d a clean close "
           "without it; %ld replies checked\n", n, shut, closed, (long)replies);
    fflush(stdout);
    if (shut + closed != n)
        failed = 1;
    return failed;
}

/* ---- main ----------------------------------------------------------------- */

static void servers_survived(void)
{
    int i;

    for (i = 0; i < g_ndaemons; i++)
        CHECK_ALIVE(&g_daemons[i]);
}

#define CASES(X)                                                              \
    X(silent)                                                                 \
    X(slowloris)                                                              \
    X(stalled_reader)                                                         \
    X(queued_cap)                                                             \
    X(per_user)                                                               \
    X(table_limits)                                                           \
    X(connect_close_1000)                                                     \
    X(burst)                                                                  \
    X(clients_view)

static void usage(void)
{
    fprintf(stderr, "usage: test_harden CASE PATH_TO_PIPEHUBD_EXE\n"
                    "       test_harden traffic N PIPE\ncases:");
#define X(n) fprintf(stderr, " %s", #n);
    CASES(X)
#undef X
    fprintf(stderr, " access\n");
}

int main(int argc, char **argv)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
    int found = 0;

    if (argc == 4 && strcmp(argv[1], "traffic") == 0)
        return traffic_main(atoi(argv[2]), argv[3]);
    if (argc != 3) {
        usage();
        return 2;
    }
    g_case = argv[1];
    if (ph_dos_path(argv[2], g_daemon_exe, sizeof g_daemon_exe) != 0) {
        fprintf(stderr, "cannot resolve %s\n", argv[2]);
        return 2;
    }
    printf("case %s, daemon %s, pid %lu%s\n", g_case, g_daemon_exe,
           (unsigned long)GetCurrentProcessId(),
           ph_under_wine() ? ", under Wine" : "");
    fflush(stdout);

    g_job = CreateJobObjectA(NULL, NULL);
    if (g_job) {
        memset(&lim, 0, sizeof lim);
        lim.BasicLimitInformation.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        SetInformationJobObject(g_job, JobObjectExtendedLimitInformation, &lim,
                                sizeof lim);
    }

    if (strcmp(g_case, "access") == 0) {
        /* Two tests, so the skipped side shows as skipped. */
        found = 1;
        PH_RUN(access_rules);
        PH_RUN(servers_survived);
        daemons_stop();
        PH_RUN(access_min_integrity);
    }
#define X(n)                                                                  \
    else if (strcmp(g_case, #n) == 0) {                                       \
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
