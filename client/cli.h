/* pipehub.exe internals: what the command files (client/cli_*.c and
 * bench/loadgen.c) share. Not part of the library's API.
 *
 * Exit status, so scripts can tell the cases apart:
 *   0 success, 1 the server (or a provider) answered with an ERROR frame,
 *   2 usage error, 3 no server, no answer in time, or the connection broke. */
#ifndef PH_CLI_H
#define PH_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "names.h"
#include "pipehub.h"

enum { EXIT_OK = 0, EXIT_ERROR_REPLY = 1, EXIT_USAGE = 2, EXIT_NO_ANSWER = 3 };

/* What every command needs: where to connect and how long to wait. */
typedef struct cli {
    char path[PH_PIPE_PATH_MAX + 1]; /* the full \\.\pipe\ path */
    uint32_t timeout_ms;             /* --timeout */
    int no_lane;                     /* --no-lane: keep to the pipe */
} cli;

/* Largest PAYLOAD read from a file or stdin: the top of the server's
 * --max-frame range. */
#define PH_CLI_PAYLOAD_MAX (64u * 1024u * 1024u)

/* "pipehub: <fmt with arg>", a blank line and the usage on stderr; returns
 * EXIT_USAGE. */
int ph_cli_usage_error(const char *fmt, const char *arg);

/* A whole decimal number in [min, max]; no sign, no spaces, no suffix.
 * 1 and *out set, or 0. */
int ph_cli_parse_u32(const char *s, uint32_t min, uint32_t max,
                     uint32_t *out);

/* One line on stderr for a failure that left no answer (what: "connect" or
 * the route); returns EXIT_NO_ANSWER. */
int ph_cli_report_failure(const cli *o, const char *what, ph_err err);

/* Connect, or report why not: EXIT_OK or EXIT_NO_ANSWER. */
int ph_cli_connect(const cli *o, ph_client **out);

/* "error: NAME: message" on stderr for an ERROR answer; EXIT_ERROR_REPLY. */
int ph_cli_report_error_reply(const ph_reply *r);

/* Call route on c and require a REPLY, which is dropped: EXIT_OK, or the
 * exit status after reporting the failure or the ERROR. */
int ph_cli_call_expect_reply(const cli *o, ph_client *c, const char *route,
                             const void *payload, size_t len);

/* The error code of a blocking library function that may be the hub's
 * answer (ph_client_subscribe, ...): EXIT_ERROR_REPLY with
 * "error: NAME: what" when err is a protocol code the hub sends, else as
 * ph_cli_report_failure. PH_ETIMEDOUT is read as "no answer". */
int ph_cli_report_hub_err(const cli *o, const char *what, ph_err err);

/* A command's PAYLOAD argument: the text itself, "@FILE" (the file's
 * bytes) or "-" (standard input, read to its end). */
typedef struct ph_cli_payload {
    const uint8_t *data; /* the text, or owned bytes */
    size_t len;
    uint8_t *owned;      /* freed by ph_cli_payload_free */
} ph_cli_payload;

/* EXIT_OK, or EXIT_USAGE after a message (unreadable file, too large). */
int ph_cli_payload_read(const char *arg, ph_cli_payload *out);
void ph_cli_payload_free(ph_cli_payload *p);

/* Write n bytes for a one-line display: backslash, tab, CR, LF and other
 * control bytes are escaped (\\ \t \r \n \xHH); other bytes are written as
 * they are (UTF-8 stays readable). With max > 0, at most max bytes of p are
 * shown, then "...". */
void ph_cli_put_escaped(FILE *f, const uint8_t *p, size_t n, size_t max);

/* A manual-reset event HANDLE (as void *) set by Ctrl+C or Ctrl+Break, for
 * commands that run until stopped; NULL when it could not be made. The
 * first call installs the console handler. */
void *ph_cli_stop_event(void);

/* ---- commands that run until stopped (client/cli_pubsub.c) ---- */

/* Wait on c's waitable and on Ctrl+C, polling c, until done(ctx) is true
 * (checked before each wait), Ctrl+C (EXIT_OK) or the connection ends
 * (reported; EXIT_NO_ANSWER). */
int ph_cli_run_client(const cli *o, ph_client *c, int (*done)(void *ctx),
                      void *ctx);

/* The arguments of sub and monitor: "--count N", "--sys" (when sys_flag is
 * not NULL) and at most one other word, stored in *word. Returns the number
 * of words (0 or 1), or -1 after reporting a usage error. */
int ph_cli_watch_args(int argc, char **argv, uint32_t *count, int *sys_flag,
                      const char **word);

/* A pattern as docs/PROTOCOL.md defines it: a name, "name.*" or "*". */
int ph_cli_pattern_ok(const char *p);

/* ---- a little JSON, for the hub's replies (client/cli_json.c) ---- */

/* The next element of the array held in s[0..n): call with *pos 0 first.
 * 1 with the element at s[*start .. *start + *len), 0 after the last,
 * -1 when s is not a JSON array. */
int ph_cli_json_next(const char *s, size_t n, size_t *pos, size_t *start,
                     size_t *len);

/* The value of key in the object s[0..n): a string unescaped, any other
 * value as its text; cut to cap - 1 bytes, NUL-terminated. 1 found, 0 not
 * there, -1 not an object. */
int ph_cli_json_get(const char *s, size_t n, const char *key, char *out,
                    size_t cap);

/* ---- numbers from the hub's replies, for display (client/cli_json.c) ---- */

/* A Unix time in ms as local time: "HH:MM:SS" when it is today, else
 * "YYYY-MM-DD HH:MM". */
void ph_cli_local_time(uint64_t ms, char *out, size_t cap);

/* A duration in ms, two units at most: "0s", "59s", "3m05s", "2h14m",
 * "3d04h". */
void ph_cli_age(uint64_t ms, char *out, size_t cap);

/* A byte count for a table: exact below 10000, else K/M/G (1024s) with one
 * decimal below 100. */
void ph_cli_bytes_short(uint64_t n, char *out, size_t cap);

/* A decimal number's value (strtoull: 0 when there is none). */
uint64_t ph_cli_to_u64(const char *s);

/* ---- the commands: argc/argv are the words after the command's name ---- */
int ph_cli_call(const cli *o, int argc, char **argv);
int ph_cli_ping(const cli *o, int argc, char **argv);
int ph_cli_stats(const cli *o, int argc, char **argv);
int ph_cli_routes(const cli *o, int argc, char **argv);
int ph_cli_describe(const cli *o, int argc, char **argv);
int ph_cli_pub(const cli *o, int argc, char **argv);
int ph_cli_sub(const cli *o, int argc, char **argv);
int ph_cli_serve(const cli *o, int argc, char **argv);
int ph_cli_monitor(const cli *o, int argc, char **argv);
/* client/cli_clients.c: sys.clients as a table (--json: as it is). */
int ph_cli_clients(const cli *o, int argc, char **argv);
/* client/cli_doctor.c: the diagnosis of a pipe name (exit 0 no finding, 1 a
 * WARN or FAIL, 3 nothing serves the name). */
int ph_cli_doctor(const cli *o, int argc, char **argv);
int ph_cli_bench(const cli *o, int argc, char **argv); /* bench/loadgen.c */

#endif
