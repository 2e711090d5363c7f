/* The protocol's public vocabulary, the one header besides pipehub.h that a
 * client application sees: error codes, frame kinds and a decoded frame.
 *
 * One error space for the whole project.
 *
 * PH_OK is 0. The protocol's error codes (the ERROR frame's status field) are
 * the first values, so a ph_err below PH_ESYSERR can be put on the wire as is.
 * Anything the platform layer cannot map is PH_ESYSERR + the system's code;
 * the Win32 layer does the mapping, so GetLastError() never leaks out of it. */
#ifndef PH_ERR_H
#define PH_ERR_H

#include <stdint.h>

typedef enum ph_err {
    PH_OK = 0,
    /* Protocol codes, carried in ERROR frames (docs/PROTOCOL.md). */
    PH_EBADFRAME = 1,   /* the frame breaks the format */
    PH_ETOOBIG = 2,     /* frame_len over the maximum */
    PH_ENOROUTE = 3,    /* nobody serves this route */
    PH_EFORBIDDEN = 4,  /* the caller may not use this route */
    PH_EBUSY = 5,       /* too many requests or connections */
    PH_EUNAVAIL = 6,    /* the route's provider went away */
    PH_ETIMEDOUT = 7,   /* no answer in time */
    PH_EINTERNAL = 8,   /* a bug or resource failure on the server */
    PH_EBADREQ = 9,     /* a built-in route's payload is malformed */
    PH_PROTO_MAX = 9,   /* highest code defined by protocol v1 */
    /* Local codes: never sent on the wire. */
    PH_EAGAIN = 64,     /* no whole frame yet: feed more bytes */
    PH_ENOMEM = 65,     /* allocation failed */
    PH_EINVAL = 66,     /* bad argument */
    PH_ECLOSED = 67,    /* the peer closed the connection */
    PH_ENOTFOUND = 68,  /* no server is listening on the pipe name */
    PH_ESYSERR = 0x10000000 /* + the system's error code */
} ph_err;

/* A short fixed description: "BAD_FRAME", "out of memory", ...
 * Never NULL; unknown codes give "unknown error". */
const char *ph_strerror(ph_err err);

/* The protocol name of a wire code ("NO_ROUTE"), or NULL when err is not one. */
const char *ph_err_name(ph_err err);

/* ---- frames as a peer sees them (docs/PROTOCOL.md) ------------------- */

#define PH_PROTOCOL_VERSION 1
#define PH_FRAME_HEADER_LEN 16
#define PH_ROUTE_MAX 255
#define PH_MAX_FRAME_DEFAULT (1024u * 1024u)
/* The smallest max_frame a peer may configure: a header, a full route and
 * room for a short payload. */
#define PH_MAX_FRAME_MIN 1024u

typedef enum ph_kind {
    PH_REQUEST = 1,
    PH_REPLY = 2,
    PH_EVENT = 3,
    PH_ERROR = 4
} ph_kind;

/* A decoded frame. route and payload point into memory owned by whoever
 * produced the frame (the decoder or the caller's input buffer); they stay
 * valid until the next call on that decoder. */
typedef struct ph_frame {
    uint8_t kind;         /* ph_kind */
    uint8_t route_len;    /* bytes at route */
    uint8_t flags;        /* PH_FLAG_LANE (lane.h): payload is a lane
                             descriptor; 0 otherwise */
    uint32_t id;          /* request id; 0 in EVENTs and in BAD_FRAME errors */
    uint32_t status;      /* 0, or the error code in ERROR frames */
    const char *route;    /* not NUL-terminated */
    const uint8_t *payload;
    uint32_t payload_len;
} ph_frame;

#endif
