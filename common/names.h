/* Names every part of pipehub agrees on: the pipe's path and default name,
 * and route and topic patterns (docs/PROTOCOL.md, "Names and patterns").
 * The server, the hub, the config loader, the client library and the CLI
 * all take them from here. Portable. */
#ifndef PH_NAMES_H
#define PH_NAMES_H

#include <stddef.h>

#include "err.h"
#include "frame.h"

#define PH_PIPE_PREFIX "\\\\.\\pipe\\"
#define PH_PIPE_PREFIX_LEN 9
/* Windows allows 256 characters for the whole \\.\pipe\ path. */
#define PH_PIPE_PATH_MAX 256
#define PH_PIPE_DEFAULT "pipehub"

/* The full \\.\pipe\ path for name, a bare name ("pipehub") or a full
 * path in any case. PH_EINVAL for an empty, remote (\\server\pipe\x) or
 * too long name, or when out (cap bytes) is too small. */
ph_err ph_pipe_path(const char *name, char *out, size_t cap);

/* A pattern is a route or topic name, "prefix.*", or (when allow_star) "*".
 * Returns 1 when p (len bytes) is one. */
int ph_pattern_valid(const char *p, size_t len, int allow_star);

/* 1 when pattern (a name, "prefix.*" or "*") matches name. */
int ph_pattern_match(const char *pattern, size_t plen, const char *name,
                     size_t nlen);

#endif
