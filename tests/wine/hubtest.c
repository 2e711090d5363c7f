/* The Wine integration tests' shared library: see hubtest.h. */
#include "hubtest.h"

#include <sddl.h>

#include <stdarg.h>

const char *ht_case_name;

static char daemon_exe[MAX_PATH * 2];
static HANDLE job; /* kills the daemons if this process dies first */
static ht_daemon daemons[HT_MAX_DAEMONS];

/* ---- the process and its clock ------------------------------------------- */

void ht_say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("  ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

uint64_t ht_ms_now(void)
{
    return GetTickCount64();
}

DWORD ht_ms_left(uint64_t deadline)
{
    uint64_t now = ht_ms_now();

    return now >= deadline ? 0 : (DWORD)(deadline - now);
}

uint64_t ht_unix_ms(void)
{
    FILETIME ft;
    uint64_t t;

    GetSystemTimeAsFileTime(&ft);
    t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
    return (t - 116444736000000000ull) / 10000u;
}

int ht_under_wine(void)
{
    return GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version") !=
           NULL;
}

/* ctest hands a test a Unix path (/tmp/build/pipehubd.exe); CreateProcess
 * wants a DOS one. Wine exports the converter from kernel32; without it, the
 * default Z: drive maps the Unix root. A path that is not a Unix one is
 * copied as it is. Returns 0, or -1 when out is too small. */
int ht_dos_path(const char *path, char *out, size_t cap)
{
    typedef WCHAR *(CDECL * to_dos_fn)(const char *);
    to_dos_fn to_dos;
    WCHAR *w;
    size_t i;

    if (path[0] != '/')
        return (size_t)snprintf(out, cap, "%s", path) < cap ? 0 : -1;
    to_dos = (to_dos_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleA("kernel32.dll"), "wine_get_dos_file_name");
    if (to_dos && (w = to_dos(path)) != NULL) {
        int n =
            WideCharToMultiByte(CP_ACP, 0, w, -1, out, (int)cap, NULL, NULL);
        HeapFree(GetProcessHeap(), 0, w);
        return n > 0 ? 0 : -1;
    }
    if ((size_t)snprintf(out, cap, "Z:%s", path) >= cap)
        return -1;
    for (i = 0; out[i]; i++)
        if (out[i] == '/')
            out[i] = '\\';
    return 0;
}

int ht_own_sid(char *out, size_t cap)
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

int ht_join(HANDLE *thread, volatile LONG *stop, uint32_t timeout_ms)
{
    int rc = 0;

    if (*thread == NULL)
        return 0;
    InterlockedExchange(stop, 1);
    if (WaitForSingleObject(*thread, timeout_ms) != WAIT_OBJECT_0)
        rc = -1;
    else
        CloseHandle(*thread);
    *thread = NULL;
    return rc;
}

int ht_write_ini(const char *text, char *out, size_t cap)
{
    char dir[MAX_PATH];
    FILE *f;

    if (!GetTempPathA(sizeof dir, dir))
        return -1;
    snprintf(out, cap, "%sph-%s-%lu-%lu.ini", dir,
             ht_case_name ? ht_case_name : "test",
             (unsigned long)GetCurrentProcessId(),
             (unsigned long)GetTickCount());
    f = fopen(out, "wb");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return 0;
}

/* ---- the daemon under test ----------------------------------------------- */

int ht_init(const char *exe)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;

    if (ht_dos_path(exe, daemon_exe, sizeof daemon_exe) != 0)
        return -1;
    job = CreateJobObjectA(NULL, NULL);
    if (job) {
        memset(&lim, 0, sizeof lim);
        lim.BasicLimitInformation.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &lim,
                                sizeof lim);
    }
    return 0;
}

const char *ht_daemon_exe(void)
{
    return daemon_exe;
}

void ht_adopt(HANDLE process)
{
    if (job)
        AssignProcessToJobObject(job, process);
}

void ht_pipe_name(char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "ph-%s-%lu%s", ht_case_name ? ht_case_name : "test",
             (unsigned long)GetCurrentProcessId(), suffix ? suffix : "");
}

int ht_daemon_alive(const ht_daemon *d, DWORD *exit_code)
{
    if (WaitForSingleObject(d->pi.hProcess, 0) == WAIT_TIMEOUT)
        return 1;
    if (!GetExitCodeProcess(d->pi.hProcess, exit_code))
        *exit_code = (DWORD)-1;
    return 0;
}

static int start(const char *name, const char *extra, int denied_is_ready,
                 ht_daemon **out)
{
    STARTUPINFOA si;
    ht_daemon *d = NULL;
    char cmd[1024];
    uint64_t deadline;
    int i;

    for (i = 0; i < HT_MAX_DAEMONS && !d; i++)
        if (!daemons[i].running)
            d = &daemons[i];
    if (!d) {
        fprintf(stderr, "more than %d daemons at once\n", HT_MAX_DAEMONS);
        return -1;
    }
    memset(d, 0, sizeof *d);
    if (ph_pipe_path(name, d->pipe, sizeof d->pipe) != PH_OK) {
        fprintf(stderr, "bad pipe name %s\n", name);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "\"%s\" run --pipe %s%s%s", daemon_exe, name,
             extra ? " " : "", extra ? extra : "");

    /* Inherit our std handles explicitly so the daemon's log lands in the
     * test output even when stdio is a pipe from ctest. */
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_ERROR_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    SetHandleInformation(si.hStdInput, HANDLE_FLAG_INHERIT,
                         HANDLE_FLAG_INHERIT);
    SetHandleInformation(si.hStdError, HANDLE_FLAG_INHERIT,
                         HANDLE_FLAG_INHERIT);
    ht_say("starting: %s", cmd);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si,
                        &d->pi)) {
        fprintf(stderr, "CreateProcess(%s) failed: %lu\n", cmd,
                (unsigned long)GetLastError());
        return -1;
    }
    /* From here it is ours, served or not: servers_survived reports one
     * that died, and ht_daemons_stop reaps it. */
    d->running = 1;
    ht_adopt(d->pi.hProcess);

    deadline = ht_ms_now() + HT_CONNECT_TIMEOUT_MS;
    for (;;) {
        DWORD code, e = 0;
        HANDLE h;

        if (!ht_daemon_alive(d, &code)) {
            fprintf(stderr, "pipehubd exited with %lu before serving %s\n",
                    (unsigned long)code, d->pipe);
            return -1;
        }
        h = ht_open_pipe(d->pipe, 250, &e, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            CloseHandle(h);
            break;
        }
        /* A daemon whose DACL keeps us out is serving all the same. */
        if (denied_is_ready && e == ERROR_ACCESS_DENIED)
            break;
        if (ht_ms_left(deadline) == 0) {
            fprintf(stderr, "%s not served after %u ms (last error %lu)\n",
                    d->pipe, HT_CONNECT_TIMEOUT_MS, (unsigned long)e);
            return -1;
        }
    }
    *out = d;
    return 0;
}

int ht_daemon_start(const char *name, const char *extra, ht_daemon **out)
{
    return start(name, extra, 0, out);
}

int ht_daemon_start_denied(const char *name, const char *extra, ht_daemon **out)
{
    return start(name, extra, 1, out);
}

int ht_daemon_start_ini(const char *ini, ht_daemon **out)
{
    char name[80], path[MAX_PATH + 64], extra[MAX_PATH + 80];
    int rc;

    ht_pipe_name(name, sizeof name, "");
    if (!ini)
        return ht_daemon_start(name, NULL, out);
    if (ht_write_ini(ini, path, sizeof path) != 0) {
        fprintf(stderr, "cannot write a config file for %s\n", name);
        return -1;
    }
    ht_say("config: %s", ini);
    snprintf(extra, sizeof extra, "--config \"%s\"", path);
    rc = ht_daemon_start(name, extra, out);
    /* The daemon reads it at start; no test here reloads it. */
    DeleteFileA(path);
    return rc;
}

void ht_daemon_stop(ht_daemon *d)
{
    if (!d->running)
        return;
    TerminateProcess(d->pi.hProcess, 1);
    WaitForSingleObject(d->pi.hProcess, 10000);
    CloseHandle(d->pi.hProcess);
    CloseHandle(d->pi.hThread);
    d->running = 0;
}

int ht_daemons_running(void)
{
    int i, n = 0;

    for (i = 0; i < HT_MAX_DAEMONS; i++)
        n += daemons[i].running;
    return n;
}

void ht_daemons_stop(void)
{
    int i;

    for (i = 0; i < HT_MAX_DAEMONS; i++)
        ht_daemon_stop(&daemons[i]);
}

int ht_daemons_check(char *why, size_t cap)
{
    DWORD code = 0;
    int i;

    for (i = 0; i < HT_MAX_DAEMONS; i++) {
        if (daemons[i].running && !ht_daemon_alive(&daemons[i], &code)) {
            snprintf(why, cap, "pipehubd on %s died, exit code %lu (0x%lx)",
                     daemons[i].pipe, (unsigned long)code, (unsigned long)code);
            return -1;
        }
    }
    return 0;
}

/* ---- the raw connection -------------------------------------------------- */

HANDLE ht_open_pipe(const char *pipe, uint32_t timeout_ms, DWORD *err,
                    uint64_t *t_try)
{
    uint64_t deadline = ht_ms_now() + timeout_ms;

    for (;;) {
        uint64_t t = ht_ms_now();
        HANDLE h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                               OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        DWORD e, left;

        if (h != INVALID_HANDLE_VALUE) {
            if (t_try)
                *t_try = t;
            return h;
        }
        e = GetLastError();
        left = ht_ms_left(deadline);
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

void ht_conn_close(ht_conn *c)
{
    DWORD n;

    if (!c)
        return;
    if (c->pipe != INVALID_HANDLE_VALUE && c->pipe != NULL) {
        /* An operation still queued (a test gave up on it) must be
         * cancelled and finished before its OVERLAPPED goes away with c. */
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

ht_conn *ht_conn_open_quiet(const char *pipe, DWORD *err)
{
    ht_conn *c = calloc(1, sizeof *c);

    *err = 0;
    if (!c)
        return NULL;
    c->pipe = INVALID_HANDLE_VALUE;
    c->ctl = 0x40000000u;
    c->in = malloc(HT_READ_CHUNK);
    c->read_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    c->write_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!c->in || !c->read_event || !c->write_event)
        goto fail;
    ph_decoder_init(&c->dec, HT_CLIENT_MAX_FRAME);
    c->pipe = ht_open_pipe(pipe, HT_CONNECT_TIMEOUT_MS, err, &c->t_open);
    if (c->pipe == INVALID_HANDLE_VALUE)
        goto fail;
    return c;

fail:
    ht_conn_close(c);
    return NULL;
}

ht_conn *ht_conn_open(const char *pipe)
{
    DWORD e = 0;
    ht_conn *c = ht_conn_open_quiet(pipe, &e);

    if (!c)
        fprintf(stderr, "open %s failed: error %lu\n", pipe, (unsigned long)e);
    return c;
}

uint32_t ht_next_id(ht_conn *c)
{
    return ++c->ctl;
}

int ht_pipe_closed(DWORD e)
{
    return e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA ||
           e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_HANDLE_EOF;
}

int ht_failf(ht_conn *c, const char *fmt, ...)
{
    char tmp[sizeof c->why];
    va_list ap;

    /* Format into a copy first: the arguments may include c->why. */
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(c->why, tmp, sizeof tmp);
    return -1;
}

int ht_write_start(ht_conn *c, const void *data, size_t len)
{
    DWORD e;

    if (c->write_pending)
        return ht_failf(c, "a write is already pending");
    ResetEvent(c->write_event);
    memset(&c->write_ov, 0, sizeof c->write_ov);
    c->write_ov.hEvent = c->write_event;
    c->write_len = (DWORD)len;
    if (WriteFile(c->pipe, data, (DWORD)len, NULL, &c->write_ov) ||
        (e = GetLastError()) == ERROR_IO_PENDING) {
        c->write_pending = 1;
        return 0;
    }
    if (ht_pipe_closed(e))
        return ht_failf(c, "closed (write error %lu)", (unsigned long)e);
    return ht_failf(c, "WriteFile failed: error %lu", (unsigned long)e);
}

int ht_write_finish(ht_conn *c, uint32_t timeout_ms)
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
            return ht_failf(c,
                            "write of %lu bytes timed out after %u ms "
                            "(server not reading)",
                            (unsigned long)c->write_len, timeout_ms);
        if (ht_pipe_closed(e))
            return ht_failf(c, "closed (write error %lu)", (unsigned long)e);
        return ht_failf(c, "write failed: error %lu", (unsigned long)e);
    }
    if (n != c->write_len)
        return ht_failf(c, "short write: %lu of %lu bytes", (unsigned long)n,
                        (unsigned long)c->write_len);
    return 0;
}

int ht_write(ht_conn *c, const void *data, size_t len)
{
    if (ht_write_start(c, data, len) != 0)
        return -1;
    return ht_write_finish(c, 2 * HT_IO_TIMEOUT_MS);
}

ph_err ht_read_some(ht_conn *c, DWORD cap, DWORD timeout_ms, DWORD *got)
{
    DWORD n = 0, e;

    ResetEvent(c->read_event);
    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (!ReadFile(c->pipe, c->in, cap, NULL, &c->read_ov)) {
        e = GetLastError();
        if (e != ERROR_IO_PENDING)
            return ht_pipe_closed(e) ? PH_ECLOSED : (ph_err)(PH_ESYSERR + e);
        if (WaitForSingleObject(c->read_event, timeout_ms) != WAIT_OBJECT_0)
            CancelIoEx(c->pipe, &c->read_ov);
    }
    /* After a cancel this waits for the read to finish either way; data that
     * slipped in just before the cancel still counts. */
    if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, TRUE)) {
        e = GetLastError();
        if (e == ERROR_OPERATION_ABORTED)
            return PH_ETIMEDOUT;
        return ht_pipe_closed(e) ? PH_ECLOSED : (ph_err)(PH_ESYSERR + e);
    }
    *got = n;
    return PH_OK;
}

ph_err ht_try_frame(ht_conn *c, ph_frame *f)
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
    /* Everything held has gone into the decoder, or is no use. */
    c->in_off = c->in_len = 0;
    if (err != PH_EAGAIN)
        ht_failf(c, "server sent a malformed stream: %s (%s)", ph_strerror(err),
                 c->dec.why);
    return err;
}

ph_err ht_read_cap(ht_conn *c, ph_frame *f, uint32_t timeout_ms, DWORD cap)
{
    uint64_t deadline = ht_ms_now() + timeout_ms;

    for (;;) {
        DWORD got = 0;
        ph_err err = ht_try_frame(c, f);

        if (err == PH_OK)
            return PH_OK;
        if (err != PH_EAGAIN)
            return err;
        err = ht_read_some(c, cap, ht_ms_left(deadline), &got);
        if (err == PH_ECLOSED) {
            ht_failf(c, "closed by the server%s",
                     ph_decoder_idle(&c->dec) ? ""
                                              : " in the middle of a frame");
            return err;
        }
        if (err == PH_ETIMEDOUT) {
            ht_failf(c, "no frame within %u ms", timeout_ms);
            return err;
        }
        if (err != PH_OK) {
            ht_failf(c, "ReadFile failed: error %lu",
                     (unsigned long)(err - PH_ESYSERR));
            return err;
        }
        /* A zero-byte read is not an end of stream on a pipe: read again. */
        c->in_off = 0;
        c->in_len = got;
    }
}

ph_err ht_read(ht_conn *c, ph_frame *f, uint32_t timeout_ms)
{
    return ht_read_cap(c, f, timeout_ms, HT_READ_CHUNK);
}

/* ---- frames -------------------------------------------------------------- */

const char *ht_kind_name(unsigned kind)
{
    static const char *const names[] = {"?", "REQUEST", "REPLY", "EVENT",
                                        "ERROR"};
    return kind <= 4 ? names[kind] : "?";
}

const char *ht_err_name(uint32_t code)
{
    const char *name = ph_err_name((ph_err)code);

    return name ? name : "?";
}

void ht_describe(const ph_frame *f, char *out, size_t cap)
{
    uint32_t i, show = f->payload_len > 120 ? 120 : f->payload_len;
    int printable = 1, n;

    for (i = 0; i < show; i++)
        if (f->payload[i] < 0x20 || f->payload[i] > 0x7e)
            printable = 0;
    n = snprintf(out, cap,
                 "%s id %lu status %lu route '%.*s' payload %lu bytes",
                 ht_kind_name(f->kind), (unsigned long)f->id,
                 (unsigned long)f->status, (int)f->route_len,
                 f->route ? f->route : "", (unsigned long)f->payload_len);
    if (printable && show && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " \"%.*s%s\"", (int)show,
                 (const char *)f->payload, show < f->payload_len ? "..." : "");
}

int ht_route_is(const ph_frame *f, const char *route)
{
    size_t n = strlen(route);

    return f->route_len == n && (n == 0 || memcmp(f->route, route, n) == 0);
}

int ht_payload_is(const ph_frame *f, const void *p, size_t len)
{
    return f->payload_len == len &&
           (len == 0 || memcmp(f->payload, p, len) == 0);
}

void ht_error_text(const ph_frame *f, char *out, size_t cap)
{
    size_t n = f->payload_len < cap - 1 ? f->payload_len : cap - 1;

    memcpy(out, f->payload, n);
    out[n] = '\0';
}

int ht_append_frame(ph_buf *b, uint8_t kind, const char *route, uint32_t id,
                    uint32_t status, const void *payload, size_t len)
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

int ht_send_frame(ht_conn *c, uint8_t kind, const char *route, uint32_t id,
                  uint32_t status, const void *payload, size_t len)
{
    ph_buf b = {0};
    int rc;

    if (ht_append_frame(&b, kind, route, id, status, payload, len) != 0) {
        ph_buf_free(&b);
        return ht_failf(c, "could not encode a %s to '%s'", ht_kind_name(kind),
                        route ? route : "");
    }
    rc = ht_write(c, b.data, b.len);
    ph_buf_free(&b);
    return rc;
}

int ht_send_request(ht_conn *c, const char *route, uint32_t id,
                    const void *payload, size_t len)
{
    return ht_send_frame(c, PH_REQUEST, route, id, 0, payload, len);
}

int ht_publish(ht_conn *c, const char *topic, const char *payload)
{
    return ht_send_frame(c, PH_EVENT, topic, 0, 0, payload, strlen(payload));
}

/* ---- expectations -------------------------------------------------------- */

int ht_expect_reply(ht_conn *c, uint32_t id, const void *payload, size_t len)
{
    ph_frame f;
    char d[400];

    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK)
        return ht_failf(c, "waiting for the REPLY to id %lu: %s",
                        (unsigned long)id, c->why);
    ht_describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0 || f.route_len != 0)
        return ht_failf(c,
                        "expected REPLY id %lu status 0 with no route, "
                        "got %s",
                        (unsigned long)id, d);
    if (f.payload_len != len)
        return ht_failf(c,
                        "REPLY to id %lu: payload_len %lu, expected %lu: "
                        "%s",
                        (unsigned long)id, (unsigned long)f.payload_len,
                        (unsigned long)len, d);
    if (!ht_payload_is(&f, payload, len))
        return ht_failf(c, "REPLY to id %lu: %lu payload bytes differ: %s",
                        (unsigned long)id, (unsigned long)len, d);
    return 0;
}

int ht_expect_error(ht_conn *c, uint32_t id, uint32_t code, const char *needle)
{
    ph_frame f;
    char d[400], text[300];

    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK)
        return ht_failf(c, "waiting for ERROR %s id %lu: %s", ht_err_name(code),
                        (unsigned long)id, c->why);
    ht_describe(&f, d, sizeof d);
    if (f.kind != PH_ERROR || f.id != id || f.status != code ||
        f.route_len != 0)
        return ht_failf(c,
                        "expected ERROR %s (%lu) id %lu with no route, "
                        "got %s",
                        ht_err_name(code), (unsigned long)code,
                        (unsigned long)id, d);
    if (f.payload_len == 0)
        return ht_failf(c, "ERROR %s carries no message", ht_err_name(code));
    ht_error_text(&f, text, sizeof text);
    if (needle && !strstr(text, needle))
        return ht_failf(c, "ERROR %s message \"%s\" does not contain \"%s\"",
                        ht_err_name(code), text, needle);
    return 0;
}

int ht_expect_event(ht_conn *c, const char *route, const void *payload,
                    size_t len)
{
    ph_frame f;
    char d[400];

    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK)
        return ht_failf(c, "waiting for EVENT '%s': %s", route, c->why);
    ht_describe(&f, d, sizeof d);
    if (f.kind != PH_EVENT || f.id != 0 || f.status != 0 ||
        !ht_route_is(&f, route) || !ht_payload_is(&f, payload, len))
        return ht_failf(c,
                        "expected EVENT '%s' with %lu payload bytes, got "
                        "%s",
                        route, (unsigned long)len, d);
    return 0;
}

int ht_expect_event_s(ht_conn *c, const char *route, const char *payload)
{
    return ht_expect_event(c, route, payload, strlen(payload));
}

int ht_expect_request(ht_conn *c, const char *route, const void *payload,
                      size_t len, uint32_t *hub_id, uint32_t *status)
{
    ph_frame f;
    char d[400];

    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK)
        return ht_failf(c, "waiting for a forwarded REQUEST '%s': %s", route,
                        c->why);
    ht_describe(&f, d, sizeof d);
    if (f.kind != PH_REQUEST || !ht_route_is(&f, route) ||
        !ht_payload_is(&f, payload, len))
        return ht_failf(c,
                        "expected a forwarded REQUEST '%s' with %lu "
                        "payload bytes, got %s",
                        route, (unsigned long)len, d);
    *hub_id = f.id;
    *status = f.status;
    return 0;
}

int ht_expect_closed(ht_conn *c, uint32_t timeout_ms)
{
    ph_frame f;
    char d[400];
    ph_err err = ht_read(c, &f, timeout_ms);

    if (err == PH_ECLOSED)
        return ph_decoder_idle(&c->dec) ? 0 : ht_failf(c, "%s", c->why);
    if (err == PH_OK) {
        ht_describe(&f, d, sizeof d);
        return ht_failf(c, "expected the server to close the pipe, got %s", d);
    }
    return ht_failf(c, "expected the server to close the pipe: %s", c->why);
}

int ht_expect_quiet(ht_conn *c, uint32_t ms)
{
    ph_frame f;
    char d[400];
    ph_err err = ht_read(c, &f, ms);

    if (err == PH_ETIMEDOUT)
        return 0;
    if (err == PH_OK) {
        ht_describe(&f, d, sizeof d);
        return ht_failf(c, "expected no frame for %u ms, got %s", ms, d);
    }
    return ht_failf(c, "expected no frame for %u ms: %s", ms, c->why);
}

int ht_barrier(ht_conn *c)
{
    uint32_t id = ht_next_id(c);
    ph_frame f;
    char d[400];

    if (ht_send_request(c, "sys.ping", id, NULL, 0) != 0)
        return ht_failf(c, "barrier ping: %s", c->why);
    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK)
        return ht_failf(c, "waiting for the barrier ping's reply: %s", c->why);
    if (f.kind == PH_REPLY && f.id == id && f.status == 0 && f.payload_len == 0)
        return 0;
    ht_describe(&f, d, sizeof d);
    return ht_failf(c,
                    "expected nothing before the barrier ping's reply, "
                    "got %s",
                    d);
}

int ht_echo(ht_conn *c, uint32_t id, const void *payload, size_t len)
{
    if (ht_send_request(c, "sys.echo", id, payload, len) != 0)
        return -1;
    return ht_expect_reply(c, id, payload, len);
}

int ht_ping(ht_conn *c, uint32_t id)
{
    if (ht_send_request(c, "sys.ping", id, NULL, 0) != 0)
        return -1;
    return ht_expect_reply(c, id, NULL, 0);
}

/* ---- requests of the test's own ------------------------------------------ */

char *ht_call_text(ht_conn *c, const char *route, const char *payload)
{
    uint32_t id = ht_next_id(c);
    ph_frame f;
    char d[400], *s;

    if (ht_send_request(c, route, id, payload, payload ? strlen(payload) : 0)) {
        ht_failf(c, "%s: %s", route, c->why);
        return NULL;
    }
    if (ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK) {
        ht_failf(c, "%s: %s", route, c->why);
        return NULL;
    }
    ht_describe(&f, d, sizeof d);
    if (f.kind != PH_REPLY || f.id != id || f.status != 0) {
        ht_failf(c, "%s %s: expected REPLY id %lu, got %s", route,
                 payload ? payload : "", (unsigned long)id, d);
        return NULL;
    }
    s = malloc(f.payload_len + 1u);
    if (!s) {
        ht_failf(c, "out of memory");
        return NULL;
    }
    memcpy(s, f.payload, f.payload_len);
    s[f.payload_len] = '\0';
    return s;
}

int ht_ctl_ok(ht_conn *c, const char *route, const char *payload)
{
    uint32_t id = ht_next_id(c);

    if (ht_send_request(c, route, id, payload, strlen(payload)) != 0 ||
        ht_expect_reply(c, id, NULL, 0) != 0)
        return ht_failf(c, "%s '%s': %s", route, payload, c->why);
    return 0;
}

int ht_ctl_err(ht_conn *c, const char *route, const char *payload,
               uint32_t code, const char *needle)
{
    uint32_t id = ht_next_id(c);

    if (ht_send_request(c, route, id, payload, strlen(payload)) != 0 ||
        ht_expect_error(c, id, code, needle) != 0)
        return ht_failf(c, "%s '%s': %s", route, payload, c->why);
    return 0;
}

int ht_subscribe(ht_conn *c, const char *pattern)
{
    return ht_ctl_ok(c, "sys.subscribe", pattern);
}

int ht_unsubscribe(ht_conn *c, const char *pattern)
{
    return ht_ctl_ok(c, "sys.unsubscribe", pattern);
}

int ht_register(ht_conn *c, const char *spec, const char *state, int position)
{
    char route[PH_ROUTE_MAX + 1];
    const char *sp = strchr(spec, ' ');
    const char *mode = sp ? "exclusive" : "shared";
    size_t n = sp ? (size_t)(sp - spec) : strlen(spec);
    uint64_t pos = 0;
    char *s;
    int ok;

    snprintf(route, sizeof route, "%.*s", (int)n, spec);
    s = ht_call_text(c, "sys.register", spec);
    if (!s)
        return ht_failf(c, "sys.register '%s': %s", spec, c->why);
    ok = ht_json_is_string(s, "route", route) &&
         ht_json_is_string(s, "mode", mode) &&
         ht_json_is_string(s, "state", state);
    if (ok && position > 0)
        ok = ht_json_u64(s, "position", &pos) == 0 && pos == (uint64_t)position;
    if (!ok) {
        ht_failf(c,
                 "sys.register '%s': expected route '%s', mode %s, state "
                 "%s (position %d), got %s",
                 spec, route, mode, state, position, s);
        free(s);
        return -1;
    }
    free(s);
    return 0;
}

int ht_serve_one(ht_conn *p, const char *route, const char *payload,
                 uint32_t caller_id, const char *reply)
{
    uint32_t hub_id = 0, status = 0;

    if (ht_expect_request(p, route, payload, strlen(payload), &hub_id, &status))
        return -1;
    if (caller_id != 0 && status != caller_id)
        return ht_failf(p,
                        "forwarded REQUEST '%s' has status %lu, expected "
                        "the caller's conn id %lu",
                        route, (unsigned long)status, (unsigned long)caller_id);
    return ht_send_frame(p, PH_REPLY, NULL, hub_id, 0, reply, strlen(reply));
}

int ht_hello(ht_conn *c)
{
    char *s = ht_call_text(c, "sys.hello", NULL);
    uint64_t v = 0;

    if (!s)
        return -1;
    if (ht_json_u64(s, "conn_id", &v) != 0 || v == 0 || v > UINT32_MAX) {
        ht_failf(c, "sys.hello has no usable conn_id: %s", s);
        free(s);
        return -1;
    }
    c->id = (uint32_t)v;
    free(s);
    return 0;
}

/* ---- sys.stats ----------------------------------------------------------- */

const char *const ht_stat_keys[HT_ST_N] = {"uptime_ms",
                                           "connections_current",
                                           "connections_total",
                                           "frames_in",
                                           "frames_out",
                                           "bytes_in",
                                           "bytes_out",
                                           "errors_sent",
                                           "pending_instances",
                                           "requests_forwarded",
                                           "replies_dropped",
                                           "requests_timed_out",
                                           "requests_unavailable",
                                           "requests_busy",
                                           "events_published",
                                           "events_delivered",
                                           "events_unheard",
                                           "slow_disconnects",
                                           "limit_max_connections",
                                           "limit_max_connections_per_user",
                                           "limit_first_frame_timeout",
                                           "limit_frame_timeout",
                                           "limit_send_stall",
                                           "limit_max_queued_bytes",
                                           "limit_max_routes",
                                           "limit_max_subscriptions",
                                           "access_denied"};

static int stats(ht_conn *c, ht_stats *st, int show)
{
    char *s = ht_call_text(c, "sys.stats", NULL);
    int i;

    if (!s)
        return -1;
    for (i = 0; i < HT_ST_N; i++) {
        if (ht_json_u64(s, ht_stat_keys[i], &st->v[i]) != 0) {
            ht_failf(c, "sys.stats has no number for \"%s\": %s",
                     ht_stat_keys[i], s);
            free(s);
            return -1;
        }
    }
    if (show)
        ht_say("sys.stats: %s", s);
    free(s);
    return 0;
}

int ht_get_stats(ht_conn *c, ht_stats *st)
{
    return stats(c, st, 1);
}

int ht_get_stats_quiet(ht_conn *c, ht_stats *st)
{
    return stats(c, st, 0);
}

/* ---- the JSON of the sys.* replies --------------------------------------- */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

const char *ht_json_value(const char *json, const char *key)
{
    char quoted[80];
    const char *p;

    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    p = strstr(json, quoted);
    if (!p)
        return NULL;
    p = skip_space(p + strlen(quoted));
    if (*p != ':')
        return NULL;
    return skip_space(p + 1);
}

int ht_json_u64(const char *json, const char *key, uint64_t *out)
{
    const char *p = ht_json_value(json, key);
    char *end;

    if (!p || *p < '0' || *p > '9')
        return -1;
    *out = strtoull(p, &end, 10);
    return end == p ? -1 : 0;
}

int ht_json_bool(const char *json, const char *key, int *out)
{
    const char *p = ht_json_value(json, key);

    if (p && strncmp(p, "true", 4) == 0)
        *out = 1;
    else if (p && strncmp(p, "false", 5) == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* Copy the JSON string at p (unescaping \\ and \" only) into out; the end
 * (after the closing quote) goes to *end when end is not NULL. */
static int take_str(const char *p, char *out, size_t cap, const char **end)
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

int ht_json_str(const char *json, const char *key, char *out, size_t cap)
{
    return take_str(ht_json_value(json, key), out, cap, NULL);
}

int ht_json_is_string(const char *json, const char *key, const char *want)
{
    char v[512];

    if (ht_json_str(json, key, v, sizeof v) != 0)
        return 0;
    return want == NULL || strcmp(v, want) == 0;
}

int ht_json_is_object(const char *json)
{
    size_t n;

    json = skip_space(json);
    n = strlen(json);
    while (n && (json[n - 1] == ' ' || json[n - 1] == '\t' ||
                 json[n - 1] == '\n' || json[n - 1] == '\r'))
        n--;
    return n >= 2 && json[0] == '{' && json[n - 1] == '}';
}

int ht_json_str_list(const char *json, const char *key, char *out, size_t cap)
{
    const char *p = ht_json_value(json, key);
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
        if (take_str(p, s, sizeof s, &p) != 0)
            return -1;
        if (n + strlen(s) + 2 > cap)
            return -1;
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", s);
    }
}

int ht_json_next_object(const char **pp, char *out, size_t cap)
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

int ht_json_find(const char *array, const char *key, const char *want,
                 char *out, size_t cap)
{
    const char *p = array;

    while ((p = strchr(p, '{')) != NULL) {
        const char *end = strchr(p, '}');
        size_t n;

        if (!end)
            return -1;
        n = (size_t)(end - p) + 1;
        if (n < cap) {
            memcpy(out, p, n);
            out[n] = '\0';
            if (ht_json_is_string(out, key, want))
                return 0;
        }
        p = end + 1;
    }
    return -1;
}
