/* A growable byte buffer. Owns its memory; reused across frames so the hot
 * path allocates only when a buffer must grow past what it has held before. */
#ifndef PH_BUF_H
#define PH_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ph_buf {
    uint8_t *data; /* owned; NULL until the first reserve */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
} ph_buf;

/* Make room for extra more bytes after len. PH_ENOMEM leaves b unchanged. */
ph_err ph_buf_reserve(ph_buf *b, size_t extra);

/* Append n bytes. */
ph_err ph_buf_append(ph_buf *b, const void *src, size_t n);

/* Drop the first n bytes (n <= len), moving the rest to the front. */
void ph_buf_consume(ph_buf *b, size_t n);

/* Free the memory and reset to empty. */
void ph_buf_free(ph_buf *b);

#endif
