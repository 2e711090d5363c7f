/* pipehub client library: connect to a pipehubd and call its routes.
 *
 * Link pipehub_client (and ph_core). All functions return a ph_err: PH_OK,
 * a protocol code from an ERROR frame (PH_ENOROUTE, ...), or a local code
 * (PH_ETIMEDOUT, PH_ENOTFOUND, PH_ECLOSED, PH_ESYSERR + Win32 code).
 * A ph_client is used by one thread at a time. */
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
 * means no answer came: PH_ETIMEDOUT, PH_ECLOSED, ... */
ph_err ph_client_call(ph_client *c, const char *route, const void *payload,
                      size_t payload_len, uint32_t timeout_ms,
                      ph_reply *reply);

void ph_reply_free(ph_reply *reply);

/* Close the connection and free c. NULL is ignored. */
void ph_client_close(ph_client *c);

#endif
