#include "buf.h"

#include <string.h>

#include "platform.h"

ph_err ph_buf_reserve(ph_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;

    if (extra > SIZE_MAX - b->len)
        return PH_ENOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return PH_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = ph_realloc(b->data, cap);
    if (p == NULL)
        return PH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return PH_OK;
}

ph_err ph_buf_append(ph_buf *b, const void *src, size_t n)
{
    ph_err err;

    if (n == 0)
        return PH_OK;
    err = ph_buf_reserve(b, n);
    if (err != PH_OK)
        return err;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return PH_OK;
}

void ph_buf_consume(ph_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void ph_buf_free(ph_buf *b)
{
    ph_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
