/* pipehub client library (client/pipehub.h): one connection, one call at a
 * time, every wait bounded by the caller's timeout.
 *
 * The library keeps no global state. Each ph_client has exactly one
 * OVERLAPPED and one event, and at most one operation is ever in flight on
 * it: every function waits for its operation to finish (or cancels it and
 * waits for the cancel) before it returns, so the kernel never writes into a
 * buffer the caller may have freed. */
#include <windows.h>

#include <string.h>

#include "frame.h"
#include "options.h"
#include "pipehub.h"
#include "win_error.h"
#include "platform.h"

/* Reads are small on purpose: under Wine every byte of a pending read buffer
 * is touched, and replies are short. Larger replies arrive in several reads
 * and are assembled by the decoder. */
#define READ_CHUNK 4096u

/* When WaitNamedPipe fails at once (the last instance went away between our
 * CreateFile and its check) we sleep this long before retrying, so a server
 * restart does not make us spin. */
#define BUSY_RETRY_MS 10u

struct ph_client {
    HANDLE pipe;              /* owned; overlapped, byte read mode */
    HANDLE event;             /* owned; manual reset, signals ov */
    OVERLAPPED ov;            /* the one operation in flight, if any */
    ph_decoder decoder;       /* replies arriving from the server */
    ph_buf request;           /* the encoded REQUEST; reused across calls */
    uint32_t next_id;         /* never 0: 0 marks id-less server errors */
    ph_err broken;            /* sticky: PH_OK until the stream is unusable */
    uint32_t in_pos;          /* next unread byte of in */
    uint32_t in_len;          /* bytes read into in */
    uint8_t in[READ_CHUNK];   /* bytes read but not yet decoded, kept between
                                 calls (a reply may share a read with the
                                 next one) */
};

/* Milliseconds left before deadline (a GetTickCount64 value); 0 once past. */
static DWORD remaining(ULONGLONG deadline)
{
    ULONGLONG now = GetTickCount64();

    if (now >= deadline)
        return 0;
    /* A timeout is a uint32_t, so the difference always fits; INFINITE
     * (0xFFFFFFFF) is avoided so no wait ever becomes unbounded. */
    return deadline - now >= INFINITE ? INFINITE - 1 : (DWORD)(deadline - now);
}


/* Finish the operation just started on c->ov. started is the return value of
 * ReadFile/WriteFile. Waits until deadline; past it, cancels the operation and
 * waits for the cancel to land, so c->ov is idle whenever this returns.
 * *done gets the bytes transferred, also on PH_ETIMEDOUT (an operation can
 * complete in the instant before its cancel, and those bytes count). */
static ph_err finish_io(ph_client *c, BOOL started, ULONGLONG deadline,
                        DWORD *done)
{
    DWORD code, n = 0;

    *done = 0;
    if (!started && (code = GetLastError()) != ERROR_IO_PENDING &&
        code != ERROR_MORE_DATA)
        return ph_win_err(code);
    /* The event is signalled whether the operation completed at once or
     * later, so one wait covers both. */
    if (WaitForSingleObject(c->event, remaining(deadline)) != WAIT_OBJECT_0) {
        CancelIoEx(c->pipe, &c->ov);
        /* bWait = TRUE: block until the cancel (or a last-moment
         * completion) has released the buffer. */
        if (GetOverlappedResult(c->pipe, &c->ov, &n, TRUE) ||
            GetLastError() == ERROR_MORE_DATA)
            *done = n;
        return PH_ETIMEDOUT;
    }
    if (!GetOverlappedResult(c->pipe, &c->ov, &n, FALSE)) {
        code = GetLastError();
        /* In message read mode a message longer than the buffer reports
         * MORE_DATA with the buffer full; the rest comes on the next read.
         * We open in byte mode, but a server may force message mode. */
        if (code != ERROR_MORE_DATA)
            return ph_win_err(code);
    }
    *done = n;
    return PH_OK;
}

static void reset_ov(ph_client *c)
{
    memset(&c->ov, 0, sizeof c->ov);
    c->ov.hEvent = c->event;
}

/* Write all of data, or fail. A write cut short (timeout, error) leaves part
 * of a frame on the wire, after which nothing we send can be parsed, so the
 * client is marked broken. */
static ph_err write_all(ph_client *c, const uint8_t *data, size_t len,
                        ULONGLONG deadline)
{
    const uint8_t *start = data;

    while (len > 0) {
        DWORD chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len, n;
        ph_err err;

        reset_ov(c);
        err = finish_io(c, WriteFile(c->pipe, data, chunk, NULL, &c->ov),
                        deadline, &n);
        /* A cancel before any byte of the frame went out, or one that lost
         * the race to a write of the whole rest, leaves the stream intact. */
        if (err == PH_ETIMEDOUT && ((data == start && n == 0) || n == len))
            return PH_ETIMEDOUT;
        if (err != PH_OK) {
            c->broken = err == PH_ETIMEDOUT ? PH_ECLOSED : err;
            return err;
        }
        data += n;
        len -= n;
    }
    return PH_OK;
}

/* Read more bytes into c->in, which must be fully consumed. */
static ph_err read_some(ph_client *c, ULONGLONG deadline)
{
    DWORD n;
    ph_err err;

    reset_ov(c);
    err = finish_io(c, ReadFile(c->pipe, c->in, sizeof c->in, NULL, &c->ov),
                    deadline, &n);
    /* Keep what arrived even on a timeout: those bytes are part of the
     * stream and the next call must see them. */
    c->in_pos = 0;
    c->in_len = n;
    if (err != PH_OK && err != PH_ETIMEDOUT)
        c->broken = err;
    return err;
}

/* Copy a frame into a reply the caller owns. */
static ph_err make_reply(const ph_frame *f, ph_reply *reply)
{
    uint8_t *copy = ph_alloc((size_t)f->payload_len + 1);

    if (copy == NULL)
        return PH_ENOMEM;
    if (f->payload_len)
        memcpy(copy, f->payload, f->payload_len);
    copy[f->payload_len] = '\0';
    reply->kind = f->kind;
    reply->status = f->kind == PH_ERROR ? f->status : 0;
    reply->payload = copy;
    reply->payload_len = f->payload_len;
    return PH_OK;
}

ph_err ph_client_connect(const char *pipe, uint32_t timeout_ms,
                         ph_client **out)
{
    char path[PH_PIPE_PATH_MAX + 1];
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    ph_client *c;
    HANDLE h;
    ph_err err;

    if (pipe == NULL || out == NULL)
        return PH_EINVAL;
    if ((err = ph_pipe_path(pipe, path, sizeof path)) != PH_OK)
        return err;

    for (;;) {
        DWORD code, left;

        /* SECURITY_IDENTIFICATION: the server may learn who we are, but
         * must not act as us. */
        h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                        OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                            SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        code = GetLastError();
        /* No instance at all: nobody serves the name. Answer at once rather
         * than wait, so a missing server is a clear error, not a hang. */
        if (code == ERROR_FILE_NOT_FOUND)
            return PH_ENOTFOUND;
        if (code != ERROR_PIPE_BUSY)
            return ph_win_err(code);
        /* Every instance is taken. WaitNamedPipe treats 0 as "the default
         * wait" (NMPWAIT_USE_DEFAULT_WAIT), so never pass it 0. */
        if ((left = remaining(deadline)) == 0)
            return PH_ETIMEDOUT;
        if (!WaitNamedPipeA(path, left)) {
            code = GetLastError();
            if (code == ERROR_SEM_TIMEOUT)
                return PH_ETIMEDOUT;
            /* FILE_NOT_FOUND here means all instances closed for a moment;
             * the next CreateFile tells whether the server is still there. */
            Sleep(BUSY_RETRY_MS < left ? BUSY_RETRY_MS : left);
        }
    }

    c = ph_alloc(sizeof *c);
    if (c == NULL) {
        err = PH_ENOMEM;
        goto fail;
    }
    memset(c, 0, sizeof *c);
    c->pipe = h;
    c->next_id = 1;
    ph_decoder_init(&c->decoder, PH_MAX_FRAME_DEFAULT);
    c->event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (c->event == NULL) {
        err = ph_win_err(GetLastError());
        goto fail;
    }
    *out = c;
    return PH_OK;

fail:
    CloseHandle(h);
    ph_free(c);
    return err;
}

ph_err ph_client_call(ph_client *c, const char *route, const void *payload,
                      size_t payload_len, uint32_t timeout_ms,
                      ph_reply *reply)
{
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    size_t route_len;
    ph_frame f;
    uint32_t id;
    ph_err err;

    if (c == NULL || route == NULL || reply == NULL ||
        (payload == NULL && payload_len > 0))
        return PH_EINVAL;
    if (c->broken != PH_OK)
        return c->broken;
    route_len = strlen(route);
    if (route_len == 0 || route_len > PH_ROUTE_MAX ||
        payload_len > UINT32_MAX - PH_FRAME_HEADER_LEN - route_len)
        return PH_EINVAL;

    id = c->next_id;
    c->next_id = id == UINT32_MAX ? 1 : id + 1;

    memset(&f, 0, sizeof f);
    f.kind = PH_REQUEST;
    f.id = id;
    f.route = route;
    f.route_len = (uint8_t)route_len;
    f.payload = payload;
    f.payload_len = (uint32_t)payload_len;
    c->request.len = 0;
    if ((err = ph_frame_append(&c->request, &f)) != PH_OK)
        return err;
    err = write_all(c, c->request.data, c->request.len, deadline);
    /* Release a large request's buffer rather than keep it for good. */
    if (c->request.cap > READ_CHUNK)
        ph_buf_free(&c->request);
    /* A server that refuses a request (TOO_LARGE) sends an ERROR and closes
     * without reading the rest, so our write fails. Its ERROR may still be
     * waiting in the pipe: read on, and report PH_ECLOSED only once the
     * pipe is empty. */
    if (err != PH_OK && err != PH_ECLOSED)
        return err;

    for (;;) {
        size_t used = 0;

        if (c->in_pos == c->in_len &&
            (err = read_some(c, deadline)) != PH_OK)
            return err;
        err = ph_decoder_next(&c->decoder, c->in + c->in_pos,
                              c->in_len - c->in_pos, &used, &f);
        if (err == PH_EBADFRAME || err == PH_ETOOBIG) {
            /* The server's stream cannot be parsed; nothing after this
             * point can be trusted. */
            c->broken = err;
            return err;
        }
        c->in_pos += (uint32_t)used;
        if (err == PH_EAGAIN)
            continue;
        if (err != PH_OK)
            return err; /* PH_ENOMEM: the decoder kept its place */
        /* An ERROR with id 0 is the server refusing our stream as a whole
         * (BAD_FRAME, TOO_LARGE: it could not read an id). We have one
         * request outstanding, so it is the answer to this one. Other ids
         * are late answers to calls that timed out: skip them. */
        if ((f.kind == PH_REPLY && f.id == id) ||
            (f.kind == PH_ERROR && (f.id == id || f.id == 0)))
            return make_reply(&f, reply);
    }
}

void ph_reply_free(ph_reply *reply)
{
    if (reply == NULL)
        return;
    ph_free(reply->payload);
    reply->payload = NULL;
    reply->payload_len = 0;
}

void ph_client_close(ph_client *c)
{
    if (c == NULL)
        return;
    /* No operation is pending here: every call waits for its own. */
    CloseHandle(c->pipe);
    CloseHandle(c->event);
    ph_decoder_free(&c->decoder);
    ph_buf_free(&c->request);
    ph_free(c);
}
