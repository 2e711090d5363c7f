/* The daemon's settings and the one table that describes them.
 *
 * Each setting is one row: its section and key (as the INI file will name
 * them), type, bounds, default and where it lands in ph_options. Command-line
 * flags map onto the same rows, so bounds and messages are the same whatever
 * set the value. Portable: no system headers. */
#ifndef PH_OPTIONS_H
#define PH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PH_PIPE_PREFIX "\\\\.\\pipe\\"
#define PH_PIPE_PREFIX_LEN 9
/* Windows allows 256 characters for the whole \\.\pipe\ path. */
#define PH_PIPE_PATH_MAX 256
#define PH_PIPE_DEFAULT "pipehub"

typedef struct ph_options {
    char pipe_name[PH_PIPE_PATH_MAX + 1]; /* always the full \\.\pipe\ path */
    uint32_t worker_threads;     /* 0 = one per CPU */
    uint32_t pending_instances;  /* listening instances kept ready */
    uint32_t max_frame_bytes;    /* largest frame accepted or sent */
} ph_options;

typedef enum ph_opt_type { PH_OPT_U32, PH_OPT_PIPE } ph_opt_type;

typedef struct ph_option_def {
    const char *section;   /* INI section */
    const char *key;       /* INI key */
    ph_opt_type type;
    uint32_t min, max;     /* bounds for PH_OPT_U32 */
    const char *def;       /* default, as text */
    size_t offset;         /* into ph_options */
    const char *help;      /* one line for usage and docs */
} ph_option_def;

/* The table, terminated by a row whose key is NULL. */
extern const ph_option_def ph_option_defs[];

/* Look a row up by key; NULL when there is none. */
const ph_option_def *ph_option_find(const char *key);

/* Fill o with every default. */
void ph_options_defaults(ph_options *o);

/* Set key from its text value. On failure o is unchanged and why (if not
 * NULL) gets a one-line reason naming the key and the allowed range. */
ph_err ph_options_set(ph_options *o, const char *key, const char *value,
                      char *why, size_t why_cap);

/* Turn "pipehub" or "\\.\pipe\pipehub" (prefix in any case) into the full
 * path in out (cap bytes). PH_EINVAL for an empty name, a name that starts
 * with two backslashes but not the local \\.\pipe\ prefix (remote pipes are
 * not served), or one too long for Windows. */
ph_err ph_pipe_path(const char *name, char *out, size_t cap);

#endif
