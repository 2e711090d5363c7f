#include "options.h"

#include "frame.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define ROW(sec, name, type, lo, hi, def, help)                               \
    {sec, #name, type, lo, hi, def, offsetof(ph_options, name), help}

/* Every setting, once. Issue 3's INI loader reads this same table. */
const ph_option_def ph_option_defs[] = {
    ROW("server", pipe_name, PH_OPT_PIPE, 0, 0, PH_PIPE_DEFAULT,
        "pipe to serve: a bare name or \\\\.\\pipe\\NAME"),
    ROW("server", worker_threads, PH_OPT_U32, 0, 64, "0",
        "threads taking completions; 0 = one per CPU"),
    ROW("server", pending_instances, PH_OPT_U32, 1, 64, "4",
        "pipe instances kept listening for new clients"),
    ROW("server", max_frame_bytes, PH_OPT_U32, PH_MAX_FRAME_MIN,
        64u * 1024u * 1024u, "1048576",
        "largest frame accepted or sent, header included"),
    {NULL, NULL, PH_OPT_U32, 0, 0, NULL, 0, NULL},
};

const ph_option_def *ph_option_find(const char *key)
{
    const ph_option_def *d;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (strcmp(d->key, key) == 0)
            return d;
    }
    return NULL;
}

ph_err ph_pipe_path(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name), need;
    int full = n >= PH_PIPE_PREFIX_LEN;
    size_t i;

    for (i = 0; full && i < PH_PIPE_PREFIX_LEN; i++) {
        if (tolower((unsigned char)name[i]) != PH_PIPE_PREFIX[i])
            full = 0;
    }
    if (full) {
        name += PH_PIPE_PREFIX_LEN;
        n -= PH_PIPE_PREFIX_LEN;
    } else if (name[0] == '\\' && name[1] == '\\') {
        return PH_EINVAL; /* \\server\pipe\x: remote pipes are not served */
    }
    need = PH_PIPE_PREFIX_LEN + n;
    if (n == 0 || need > PH_PIPE_PATH_MAX || need + 1 > cap)
        return PH_EINVAL;
    memcpy(out, PH_PIPE_PREFIX, PH_PIPE_PREFIX_LEN);
    memcpy(out + PH_PIPE_PREFIX_LEN, name, n + 1);
    return PH_OK;
}

static ph_err parse_u32(const ph_option_def *d, const char *value,
                        uint32_t *out, char *why, size_t why_cap)
{
    unsigned long long v;
    char *end;

    /* strtoull accepts a sign and leading space; a setting does not. */
    if (!isdigit((unsigned char)value[0]))
        goto bad;
    v = strtoull(value, &end, 10);
    if (*end != '\0')
        goto bad;
    if (v < d->min || v > d->max) {
        if (why)
            snprintf(why, why_cap, "%s = %s is out of range (%u..%u)", d->key,
                     value, (unsigned)d->min, (unsigned)d->max);
        return PH_EINVAL;
    }
    *out = (uint32_t)v;
    return PH_OK;
bad:
    if (why)
        snprintf(why, why_cap, "%s = '%s' is not a whole number (%u..%u)",
                 d->key, value, (unsigned)d->min, (unsigned)d->max);
    return PH_EINVAL;
}

ph_err ph_options_set(ph_options *o, const char *key, const char *value,
                      char *why, size_t why_cap)
{
    const ph_option_def *d = ph_option_find(key);
    char *field;
    uint32_t v;

    if (d == NULL) {
        if (why)
            snprintf(why, why_cap, "unknown setting '%s'", key);
        return PH_EINVAL;
    }
    field = (char *)o + d->offset;
    switch (d->type) {
    case PH_OPT_U32:
        if (parse_u32(d, value, &v, why, why_cap) != PH_OK)
            return PH_EINVAL;
        memcpy(field, &v, sizeof v);
        return PH_OK;
    case PH_OPT_PIPE:
        if (ph_pipe_path(value, field, PH_PIPE_PATH_MAX + 1) != PH_OK) {
            if (why)
                snprintf(why, why_cap, "%s = '%s' is not a local pipe name "
                         "(a bare name or \\\\.\\pipe\\NAME, at most %d "
                         "characters in all)", d->key, value, PH_PIPE_PATH_MAX);
            return PH_EINVAL;
        }
        return PH_OK;
    }
    return PH_EINVAL;
}

void ph_options_defaults(ph_options *o)
{
    const ph_option_def *d;
    ph_err err;

    memset(o, 0, sizeof *o);
    for (d = ph_option_defs; d->key != NULL; d++) {
        err = ph_options_set(o, d->key, d->def, NULL, 0);
        (void)err; /* unit-tested: every default is valid */
    }
}
