/* pipehub client library: connect to a pipehubd and call its routes.
 *
 * Link pipehub_client (and ph_core). All functions return a ph_err: PH_OK,
 * a protocol code from an ERROR frame (PH_ENOROUTE, ...), or a local code
 * (PH_ETIMEDOUT, PH_ENOTFOUND, PH_ECLOSED, PH_ESYSERR + Win32 code).
 *
 * Threading: a ph_client is driven by one thread at a time. It has no lock
 * and starts no thread; every callback runs on the thread that is inside
 * ph_client_poll, ph_client_flush, ph_client_call or ph_client_close on that
 * client, before that function returns. Different clients may be used from
 * different threads at once.
 *
 * Calls are pipelined: any number of requests may be outstanding on one
 * connection. Requests queued by ph_client_call_async leave together, in one
 * WriteFile, at the next poll; a read hands every frame it holds to its
 * callback, so under load a batch of calls costs one write and a few reads. */
#ifndef PIPEHUB_H
#define PIPEHUB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"

typedef struct ph_client ph_client;

/* A reply or error received for a call. payload is owned by the reply and
 * freed by ph_reply_free. */
typedef struct ph_reply {
    uint8_t kind;          /* PH_REPLY or PH_ERROR */
    uint32_t status;       /* the error code in an ERROR, else 0 */
    uint8_t *payload;      /* NUL-terminated for convenience (not counted) */
    uint32_t payload_len;
} ph_reply;

/* The completion of an asynchronous call; called exactly once per call that
 * ph_client_call_async accepted.
 *   err == PH_OK: reply is the answer, a REPLY or an ERROR frame (check
 *     reply->kind; an ERROR's code is reply->status). reply and the memory
 *     its payload points to belong to the library and stay valid only until
 *     the callback returns: copy what you keep.
 *   otherwise: reply is NULL and no answer came: PH_ETIMEDOUT (the call's
 *     timeout passed; a late answer is dropped), PH_ECLOSED (the server went
 *     away, or ph_client_close ran first), or the error that broke the
 *     connection.
 * A callback may call ph_client_call_async and ph_client_pending on its
 * client (new requests are sent at the next poll), but not ph_client_poll,
 * ph_client_flush or ph_client_call (they return PH_EINVAL) nor
 * ph_client_close. */
typedef void ph_call_cb(void *ctx, ph_err err, const ph_frame *reply);

/* Open pipe (bare name or \\.\pipe\ path) with SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION. While every instance is busy, waits with
 * WaitNamedPipe and retries until timeout_ms has passed. PH_ENOTFOUND when
 * nothing serves the name; PH_ETIMEDOUT when it stayed busy. On success
 * *out owns the connection until ph_client_close. */
ph_err ph_client_connect(const char *pipe, uint32_t timeout_ms,
                         ph_client **out);

/* Send a REQUEST to route and wait up to timeout_ms for its REPLY or ERROR.
 * On PH_OK *reply holds the answer (which may be an ERROR frame: check
 * reply->kind); the caller frees it with ph_reply_free. Any other return
 * means no answer came: PH_ETIMEDOUT, PH_ECLOSED, ... After PH_ETIMEDOUT
 * the client stays usable and the late answer is dropped. Asynchronous calls
 * already outstanding on c keep going while this waits, and their callbacks
 * may run inside it. */
ph_err ph_client_call(ph_client *c, const char *route, const void *payload,
                      size_t payload_len, uint32_t timeout_ms,
                      ph_reply *reply);

/* Queue a REQUEST to route; does no I/O. The frame is encoded (payload is
 * copied, so the caller may reuse it at once) and leaves at the next
 * ph_client_poll or ph_client_flush, together with everything else queued.
 * cb(ctx, ...) is called exactly once: with the answer, or with
 * PH_ETIMEDOUT once timeout_ms (counted from now) has passed without one, or
 * with the error that ended the connection.
 * Returns PH_OK when the call was accepted. Any other return (PH_EINVAL, a
 * route that is empty or longer than 255 bytes; PH_ENOMEM; the error that
 * already broke the connection) means cb will never be called. */
ph_err ph_client_call_async(ph_client *c, const char *route,
                            const void *payload, size_t payload_len,
                            uint32_t timeout_ms, ph_call_cb *cb, void *ctx);

/* Drive the connection for at most timeout_ms: write everything queued in
 * one WriteFile, read what the server sent, decode every frame of every
 * read and call the callbacks of answered and of expired calls. Returns as
 * soon as at least one callback has run and nothing more is ready without
 * waiting, when timeout_ms has passed, or at once when no call is
 * outstanding. timeout_ms 0 does only what needs no waiting.
 * *ncompleted (may be NULL) gets the number of callbacks called.
 * PH_OK, or the error that broke the connection (every outstanding callback
 * has then been called with it), or PH_EINVAL from inside a callback. */
ph_err ph_client_poll(ph_client *c, uint32_t timeout_ms, size_t *ncompleted);

/* Poll until no call is outstanding: PH_OK when every callback has run,
 * PH_ETIMEDOUT when timeout_ms passed first (the remaining calls keep their
 * own timeouts), or as ph_client_poll. */
ph_err ph_client_flush(ph_client *c, uint32_t timeout_ms);

/* Calls accepted whose callback has not run yet. */
size_t ph_client_pending(const ph_client *c);

void ph_reply_free(ph_reply *reply);

/* Close the connection and free c. Outstanding I/O is cancelled and waited
 * for; every outstanding callback is called with PH_ECLOSED first. NULL is
 * ignored. Not from inside a callback. */
void ph_client_close(ph_client *c);

#endif
