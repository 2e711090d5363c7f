/* A small JSON object writer for the sys.* replies. It appends to a ph_buf
 * and keeps the first error, so a reply is built with straight-line calls and
 * checked once at the end. Only flat objects are needed so far. */
#ifndef PH_JSON_H
#define PH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

typedef struct ph_json {
    ph_buf *out;   /* not owned */
    int count;     /* members written so far */
    ph_err err;    /* first error, sticky */
} ph_json;

void ph_json_begin(ph_json *j, ph_buf *out);
void ph_json_u64(ph_json *j, const char *key, uint64_t value);
/* s is len bytes of UTF-8 (or anything: control characters and quotes are
 * escaped, bytes >= 0x80 are copied as they are). */
void ph_json_str(ph_json *j, const char *key, const char *s, size_t len);
void ph_json_bool(ph_json *j, const char *key, int value);
/* Start a member whose value the caller appends itself (an array, say). */
void ph_json_key(ph_json *j, const char *key);
/* Append one JSON string (quoted, escaped) to b, for hand-built arrays. */
ph_err ph_json_append_string(ph_buf *b, const char *s, size_t len);
/* Close the object; returns the first error of the whole build. */
ph_err ph_json_end(ph_json *j);

#endif
