#include "options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define ROW(sec, key, field, type, lo, hi, def, live, help)                   \
    {sec, key, type, lo, hi, def, live, offsetof(ph_options, field), help}

#define KB 1024u
#define MB (1024u * 1024u)

/* Every setting, once. A row's default is text exactly as it would be
 * written in pipehub.ini; a unit test checks each one parses. */
const ph_option_def ph_option_defs[] = {
    ROW("server", "pipe_name", pipe_name, PH_OPT_PIPE, 0, 0, PH_PIPE_DEFAULT, 0,
        "pipe to serve: a bare name or \\\\.\\pipe\\NAME"),
    ROW("server", "worker_threads", worker_threads, PH_OPT_U32, 0, 64, "0", 0,
        "threads taking I/O completions; 0 = two per CPU, at least 4"),
    ROW("server", "pending_instances", pending_instances, PH_OPT_U32, 1, 64,
        "4", 1, "pipe instances kept listening for new clients"),
    ROW("server", "max_connections", max_connections, PH_OPT_U32, 1, 100000,
        "4096", 1,
        "clients served at once; one more is told BUSY and closed"),
    ROW("server", "max_frame_bytes", max_frame_bytes, PH_OPT_U32,
        PH_MAX_FRAME_MIN, 64 * MB, "1048576", 1,
        "largest frame accepted, header included"),
    ROW("limits", "send_queue_bytes", send_queue_bytes, PH_OPT_U32, 64 * KB,
        1024 * MB, "4194304", 1,
        "queued replies per client before its reading pauses"),
    ROW("limits", "idle_timeout_ms", idle_timeout_ms, PH_OPT_U32, 0,
        86400000, "0", 1,
        "close a client that sends nothing this long; 0 = never"),
    ROW("limits", "request_timeout_ms", request_timeout_ms, PH_OPT_U32, 100,
        3600000, "30000", 1,
        "deadline of a request forwarded to a client-provided route"),
    ROW("limits", "max_inflight_per_client", max_inflight_per_client,
        PH_OPT_U32, 1, 65536, "256", 1,
        "requests one client may have forwarded and unanswered"),
    ROW("limits", "first_frame_timeout_ms", first_frame_timeout_ms,
        PH_OPT_U32, 1000, 600000, "10000", 1,
        "a new client must send a whole frame within this"),
    ROW("limits", "frame_timeout_ms", frame_timeout_ms, PH_OPT_U32, 1000,
        3600000, "30000", 1,
        "a frame begun must arrive whole within this"),
    ROW("limits", "send_stall_timeout_ms", send_stall_timeout_ms, PH_OPT_U32,
        1000, 3600000, "10000", 1,
        "close a client whose full output queue is not read for this long"),
    ROW("limits", "max_queued_bytes", max_queued_bytes, PH_OPT_U32, 1 * MB,
        4095 * MB, "268435456", 1,
        "output queued for all clients together; past it the largest go"),
    ROW("limits", "max_connections_per_user", max_connections_per_user,
        PH_OPT_U32, 1, 100000, "256", 1,
        "clients one account may have connected at once"),
    ROW("limits", "max_routes_per_client", max_routes_per_client, PH_OPT_U32,
        1, 65536, "512", 1, "routes one client may serve or wait for"),
    ROW("limits", "max_subscriptions_per_client", max_subscriptions_per_client,
        PH_OPT_U32, 1, 65536, "512", 1,
        "subscription patterns one client may hold"),
    ROW("lane", "enabled", lane_enabled, PH_OPT_BOOL, 0, 1, "true", 1,
        "offer clients a shared-memory lane for big payloads"),
    ROW("lane", "max_bytes", lane_max_bytes, PH_OPT_U32, 4 * KB, 1024 * MB,
        "16777216", 1, "largest lane ring a client may ask for, in bytes"),
    ROW("lane", "threshold_bytes", lane_threshold_bytes, PH_OPT_U32, 1 * KB,
        1024 * MB, "65536", 1,
        "payloads from this size go through a client's lane"),
    ROW("lane", "max_total_bytes", lane_max_total_bytes, PH_OPT_U32, 1 * MB,
        4095 * MB, "1073741824", 1,
        "all lanes' sections together; past it sys.lane gets BUSY"),
    ROW("security", "sddl", sddl, PH_OPT_STR, 0, PH_SDDL_MAX - 1,
        "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)(A;;0x12019b;;;AU)", 0,
        "who may connect, as an SDDL security descriptor"),
    ROW("security", "allow_remote", allow_remote, PH_OPT_BOOL, 0, 1, "false",
        0, "accept clients from other machines (false rejects them)"),
    ROW("log", "level", log_level, PH_OPT_LEVEL, 0, 3, "info", 1,
        "error, warn, info or debug"),
    ROW("log", "file", log_file, PH_OPT_STR, 0, PH_PATH_MAX - 1, "", 1,
        "log file path; empty = no file log"),
    ROW("log", "max_file_bytes", log_max_file_bytes, PH_OPT_U32, 64 * KB,
        1024 * MB, "10485760", 1, "rotate the log file past this size"),
    ROW("log", "keep_files", log_keep_files, PH_OPT_U32, 0, 100, "5", 1,
        "rotated log files kept (name.1 is the newest)"),
    ROW("log", "event_log", log_event_log, PH_OPT_BOOL, 0, 1, "true", 1,
        "also write start, stop and errors to the Windows Event Log"),
    {NULL, NULL, PH_OPT_U32, 0, 0, NULL, 0, 0, NULL},
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const ph_option_def *ph_option_find(const char *key)
{
    const ph_option_def *d;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (strcmp(d->key, key) == 0)
            return d;
    }
    return NULL;
}

const ph_option_def *ph_option_find_in(const char *section, const char *key)
{
    const ph_option_def *d;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (strcmp(d->section, section) == 0 && strcmp(d->key, key) == 0)
            return d;
    }
    return NULL;
}

static int lower_equal(const char *a, const char *b)
{
    while (*a && tolower((unsigned char)*a) == tolower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
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

static ph_err parse_bool(const ph_option_def *d, const char *value,
                         uint32_t *out, char *why, size_t why_cap)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (lower_equal(value, yes[i]) || lower_equal(value, no[i])) {
            *out = lower_equal(value, yes[i]);
            return PH_OK;
        }
    }
    if (why)
        snprintf(why, why_cap, "%s = '%s' is not true or false", d->key, value);
    return PH_EINVAL;
}

static ph_err parse_level(const ph_option_def *d, const char *value,
                          uint32_t *out, char *why, size_t why_cap)
{
    uint32_t i;

    for (i = 0; i < 4; i++) {
        if (lower_equal(value, level_names[i])) {
            *out = i;
            return PH_OK;
        }
    }
    if (why)
        snprintf(why, why_cap, "%s = '%s' is not one of error, warn, info, debug",
                 d->key, value);
    return PH_EINVAL;
}

ph_err ph_option_set(ph_options *o, const ph_option_def *d, const char *value,
                     char *why, size_t why_cap)
{
    char *field = (char *)o + d->offset;
    size_t n;
    uint32_t v;
    ph_err err = PH_EINVAL;

    switch (d->type) {
    case PH_OPT_U32:
        err = parse_u32(d, value, &v, why, why_cap);
        break;
    case PH_OPT_BOOL:
        err = parse_bool(d, value, &v, why, why_cap);
        break;
    case PH_OPT_LEVEL:
        err = parse_level(d, value, &v, why, why_cap);
        break;
    case PH_OPT_PIPE:
        if (ph_pipe_path(value, field, PH_PIPE_PATH_MAX + 1) == PH_OK)
            return PH_OK;
        if (why)
            snprintf(why, why_cap, "%s = '%s' is not a local pipe name "
                     "(a bare name or \\\\.\\pipe\\NAME, at most %d "
                     "characters in all)", d->key, value, PH_PIPE_PATH_MAX);
        return PH_EINVAL;
    case PH_OPT_STR:
        n = strlen(value);
        if (n > d->max) {
            if (why)
                snprintf(why, why_cap, "%s is %u characters long; at most %u "
                         "are allowed", d->key, (unsigned)n, (unsigned)d->max);
            return PH_EINVAL;
        }
        memcpy(field, value, n + 1);
        return PH_OK;
    }
    if (err == PH_OK)
        memcpy(field, &v, sizeof v);
    return err;
}

ph_err ph_options_set(ph_options *o, const char *key, const char *value,
                      char *why, size_t why_cap)
{
    const ph_option_def *d = ph_option_find(key);

    if (d == NULL) {
        if (why)
            snprintf(why, why_cap, "unknown setting '%s'", key);
        return PH_EINVAL;
    }
    return ph_option_set(o, d, value, why, why_cap);
}

int ph_option_equal(const ph_option_def *d, const ph_options *a,
                    const ph_options *b)
{
    const char *fa = (const char *)a + d->offset;
    const char *fb = (const char *)b + d->offset;

    switch (d->type) {
    case PH_OPT_PIPE:
    case PH_OPT_STR:
        return strcmp(fa, fb) == 0;
    default:
        return memcmp(fa, fb, sizeof(uint32_t)) == 0;
    }
}

void ph_option_format(const ph_option_def *d, const ph_options *o, char *out,
                      size_t cap)
{
    const char *field = (const char *)o + d->offset;
    uint32_t v;

    switch (d->type) {
    case PH_OPT_PIPE:
    case PH_OPT_STR:
        snprintf(out, cap, "%s", field);
        return;
    default:
        break;
    }
    memcpy(&v, field, sizeof v);
    if (d->type == PH_OPT_BOOL)
        snprintf(out, cap, "%s", v ? "true" : "false");
    else if (d->type == PH_OPT_LEVEL)
        snprintf(out, cap, "%s", level_names[v < 4 ? v : 3]);
    else
        snprintf(out, cap, "%u", (unsigned)v);
}

void ph_options_defaults(ph_options *o)
{
    const ph_option_def *d;
    ph_err err;

    memset(o, 0, sizeof *o);
    for (d = ph_option_defs; d->key != NULL; d++) {
        err = ph_option_set(o, d, d->def, NULL, 0);
        (void)err; /* unit-tested: every default is valid */
    }
}
