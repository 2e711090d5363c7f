/* What every Wine integration test shares (tests/wine/test_*.c): the
 * pipehubd under test, a raw connection that speaks frames, expectations of
 * what the hub sends back, readers for the JSON of the sys.* replies, and
 * main() for a program made of named cases. Built once as ph_wine_test.
 *
 * The raw connection builds and decodes frames with the common/ codec and
 * nothing else: what the tests check is the wire contract, not the client
 * library. Every wait is bounded, so a hung server fails a check instead of
 * hanging the test: reads and writes are overlapped and cancelled with
 * CancelIoEx when their time runs out.
 *
 * A helper that fails says why in its connection's why[] and returns -1 (or
 * an error code); the CHECK_* macros at the end turn that into a failed
 * test. Those macros, and ht_main(), are expanded in the test's own file,
 * because tests/harness.h keeps its counts per file. */
#ifndef PH_HUBTEST_H
#define PH_HUBTEST_H

#include <windows.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "harness.h"
#include "options.h"

#define HT_IO_TIMEOUT_MS      10000u /* one expected frame */
#define HT_CONNECT_TIMEOUT_MS 20000u /* waiting for the pipe to be served */
#define HT_READ_CHUNK         (64u * 1024u) /* Wine moves 64 KiB reads best */
/* The raw client accepts larger frames than any server should send, so an
 * oversized frame shows up as a wrong size rather than a decoder error. */
#define HT_CLIENT_MAX_FRAME (8u * PH_MAX_FRAME_DEFAULT)
#define HT_MAX_DAEMONS      4 /* running at once, per test process */

/* The case being run: it names the case's pipes and config files, so
 * parallel ctest jobs never meet. Set by ht_main(). */
extern const char *ht_case_name;

/* ---- the process and its clock ------------------------------------------- */

/* "  " + the line on stdout, flushed (the test's narrative). */
void ht_say(const char *fmt, ...);

uint64_t ht_ms_now(void);
/* Milliseconds until deadline (an ht_ms_now() value), 0 once it passed. */
DWORD ht_ms_left(uint64_t deadline);
/* The wall clock as Unix milliseconds, as the hub stamps its records. */
uint64_t ht_unix_ms(void);

/* 1 under Wine, which ignores pipe DACLs, PIPE_REJECT_REMOTE_CLIENTS and
 * FILE_FLAG_FIRST_PIPE_INSTANCE: tests of those skip themselves there. */
int ht_under_wine(void);

/* ctest hands a test a Unix path; CreateProcess and the SCM want a DOS
 * one: Wine's converter, else the Z: drive. A path that is not a Unix one
 * is copied as it is. 0, or -1 when out is too small. */
int ht_dos_path(const char *path, char *out, size_t cap);

/* This process's user SID as a string ("S-1-5-..."). 0, or -1. */
int ht_own_sid(char *out, size_t cap);

/* Set *stop, wait up to timeout_ms for *thread to end, close it and clear
 * *thread (a no-op when NULL). 0 when it ended in time; -1 when it still
 * runs, and then its handle stays open: it may still use what it was given. */
int ht_join(HANDLE *thread, volatile LONG *stop, uint32_t timeout_ms);

/* Write text to a fresh .ini file in the temp folder, named after the case;
 * its path goes to out. 0, or -1. */
int ht_write_ini(const char *text, char *out, size_t cap);

/* ---- the daemon under test ----------------------------------------------- */

typedef struct ht_daemon {
    PROCESS_INFORMATION pi;
    char pipe[PH_PIPE_PATH_MAX + 1]; /* full \\.\pipe\ path */
    int running;                     /* started, not yet stopped by us */
} ht_daemon;

/* Resolve the pipehubd.exe that ctest names (a Unix path under Wine) and
 * put the daemons of this process in a job object that kills them should
 * the process die first: no stray pipehubd then holds ctest's output pipe.
 * 0, or -1 when the path cannot be resolved. */
int ht_init(const char *daemon_exe);

/* The path given to ht_init(), as CreateProcess wants it. */
const char *ht_daemon_exe(void);

/* Put a process of the test's own into that job too. */
void ht_adopt(HANDLE process);

/* The case's pipe name, "ph-CASE-PID" + suffix (may be ""). */
void ht_pipe_name(char *out, size_t cap, const char *suffix);

/* Start "pipehubd run --pipe NAME EXTRA" (extra may be NULL) with our
 * stderr, and wait until its pipe can be opened. name may be bare or a full
 * path; (*out)->pipe is the full path either way. The daemon is ours until
 * ht_daemon_stop() or ht_daemons_stop(). 0, or -1 (the reason on stderr). */
int ht_daemon_start(const char *name, const char *extra, ht_daemon **out);

/* The same, for a daemon whose pipe DACL keeps this process out: an open
 * refused with ERROR_ACCESS_DENIED counts as served. */
int ht_daemon_start_denied(const char *name, const char *extra,
                           ht_daemon **out);

/* Start a daemon on the case's pipe whose config file holds ini (NULL: no
 * file). The file is deleted once the daemon has read it. */
int ht_daemon_start_ini(const char *ini, ht_daemon **out);

/* 1 while d runs; 0 with its exit code once it has exited. */
int ht_daemon_alive(const ht_daemon *d, DWORD *exit_code);

/* Kill d (a no-op once stopped) and free its place. */
void ht_daemon_stop(ht_daemon *d);

/* How many daemons are ours; ht_daemons_stop() kills them all. */
int ht_daemons_running(void);
void ht_daemons_stop(void);

/* 0 when every daemon we started is still running; otherwise -1 with the
 * first that died, and its exit code, in why. */
int ht_daemons_check(char *why, size_t cap);

/* ---- the raw connection -------------------------------------------------- */

typedef struct ht_conn {
    HANDLE pipe;
    HANDLE read_event;
    HANDLE write_event;
    OVERLAPPED read_ov;
    OVERLAPPED write_ov;
    int read_pending;  /* read_ov is in flight (watchers that read
                          on their own) */
    int write_pending; /* write_ov is in flight */
    DWORD write_len;   /* bytes the pending write should move */
    ph_decoder dec;    /* frames arrive as a byte stream */
    uint8_t *in;       /* received bytes not yet given to dec */
    size_t in_len, in_off;
    uint32_t ctl;    /* the last id of the test's control requests */
    uint32_t id;     /* conn_id from sys.hello, 0 until asked */
    uint64_t t_open; /* just before the CreateFile that opened it */
    char why[600];   /* the last failure, for the test's message */
} ht_conn;

/* Open pipe, waiting while it does not exist yet (the daemon is starting)
 * or every instance is busy. INVALID_HANDLE_VALUE with *err when time runs
 * out or the error is another; *t_try (may be NULL) gets the time just
 * before the CreateFile that succeeded. */
HANDLE ht_open_pipe(const char *pipe, uint32_t timeout_ms, DWORD *err,
                    uint64_t *t_try);

/* Connect to pipe. NULL on failure: ht_conn_open prints why on stderr,
 * ht_conn_open_quiet leaves the Win32 error in *err. Close with
 * ht_conn_close (NULL is fine). */
ht_conn *ht_conn_open(const char *pipe);
ht_conn *ht_conn_open_quiet(const char *pipe, DWORD *err);
void ht_conn_close(ht_conn *c);

/* The next id for a control request of the test's own (0x40000001 on). */
uint32_t ht_next_id(ht_conn *c);

/* A Win32 error that means the other end closed the pipe. */
int ht_pipe_closed(DWORD e);

/* Set c->why and return -1. The arguments may include c->why itself (a
 * helper adding context to a lower one's reason). */
int ht_failf(ht_conn *c, const char *fmt, ...);

/* Queue a write of data, which must stay valid until ht_write_finish. A
 * write refused because the server closed says "closed" in c->why. */
int ht_write_start(ht_conn *c, const void *data, size_t len);
/* Wait for the pending write; a timeout cancels it and fails. */
int ht_write_finish(ht_conn *c, uint32_t timeout_ms);
/* Both, allowing twice HT_IO_TIMEOUT_MS: a megabyte crosses wineserver in
 * 64 KiB steps. */
int ht_write(ht_conn *c, const void *data, size_t len);

/* One overlapped read of up to cap bytes (<= HT_READ_CHUNK) into c->in,
 * which the caller then hands to the decoder: PH_OK with *got bytes,
 * PH_ECLOSED, PH_ETIMEDOUT, or PH_ESYSERR + the Win32 error. */
ph_err ht_read_some(ht_conn *c, DWORD cap, DWORD timeout_ms, DWORD *got);

/* The next frame held, without reading the pipe: PH_OK, PH_EAGAIN when the
 * bytes held make no whole frame, or a decoder error (with c->why). */
ph_err ht_try_frame(ht_conn *c, ph_frame *f);

/* Read the next frame. On PH_OK *f points into c's buffers until the next
 * read. Otherwise c->why says what happened: PH_ECLOSED (the server closed
 * the pipe), PH_ETIMEDOUT, a decoder error (a malformed stream) or
 * PH_ESYSERR + the Win32 error. ht_read_cap reads at most cap bytes at a
 * time (cap <= HT_READ_CHUNK). */
ph_err ht_read(ht_conn *c, ph_frame *f, uint32_t timeout_ms);
ph_err ht_read_cap(ht_conn *c, ph_frame *f, uint32_t timeout_ms, DWORD cap);

/* ---- frames -------------------------------------------------------------- */

const char *ht_kind_name(unsigned kind);
/* A wire code's protocol name ("NO_ROUTE"), or "?" for another number. */
const char *ht_err_name(uint32_t code);

/* A frame in words for a failure message:
 * "EVENT id 0 status 0 route 'a.b' payload 3 bytes "xyz"". */
void ht_describe(const ph_frame *f, char *out, size_t cap);

int ht_route_is(const ph_frame *f, const char *route);
int ht_payload_is(const ph_frame *f, const void *p, size_t len);
/* An ERROR frame's message, NUL-terminated and cut to fit. */
void ht_error_text(const ph_frame *f, char *out, size_t cap);

/* Append one frame (route may be NULL) to b. 0, or -1. */
int ht_append_frame(ph_buf *b, uint8_t kind, const char *route, uint32_t id,
                    uint32_t status, const void *payload, size_t len);

/* Send one frame in one WriteFile. */
int ht_send_frame(ht_conn *c, uint8_t kind, const char *route, uint32_t id,
                  uint32_t status, const void *payload, size_t len);
int ht_send_request(ht_conn *c, const char *route, uint32_t id,
                    const void *payload, size_t len);
int ht_publish(ht_conn *c, const char *topic, const char *payload);

/* ---- expectations: each reads one frame and requires it to be so --------- */

/* A REPLY to id with no route, status 0 and exactly payload. */
int ht_expect_reply(ht_conn *c, uint32_t id, const void *payload, size_t len);

/* An ERROR to id with code, no route, a message and (when needle is not
 * NULL) needle inside the message. */
int ht_expect_error(ht_conn *c, uint32_t id, uint32_t code, const char *needle);

/* An EVENT on route with id 0, status 0 and exactly payload. */
int ht_expect_event(ht_conn *c, const char *route, const void *payload,
                    size_t len);
int ht_expect_event_s(ht_conn *c, const char *route, const char *payload);

/* A REQUEST forwarded by the hub, on route with exactly payload; the hub's
 * id and the status (the caller's conn id) go to *hub_id and *status. */
int ht_expect_request(ht_conn *c, const char *route, const void *payload,
                      size_t len, uint32_t *hub_id, uint32_t *status);

/* The server closes the pipe within timeout_ms, at a frame boundary, with
 * no frame before the close. */
int ht_expect_closed(ht_conn *c, uint32_t timeout_ms);

/* Nothing arrives within ms. */
int ht_expect_quiet(ht_conn *c, uint32_t ms);

/* The barrier: a sys.ping whose reply must be the very next frame. A
 * connection's frames are handled in order, so once it is answered,
 * everything the hub did for the earlier ones is queued: a frame before the
 * reply is one that should not have come. */
int ht_barrier(ht_conn *c);

/* Round trips that must come back as sent: sys.echo of payload, sys.ping. */
int ht_echo(ht_conn *c, uint32_t id, const void *payload, size_t len);
int ht_ping(ht_conn *c, uint32_t id);

/* ---- requests of the test's own ------------------------------------------ */

/* Send a request (payload may be NULL) and return its REPLY's payload as a
 * NUL-terminated string (for the JSON routes); the caller frees it. NULL
 * with c->why on failure. */
char *ht_call_text(ht_conn *c, const char *route, const char *payload);

/* A request whose answer must be an empty REPLY. */
int ht_ctl_ok(ht_conn *c, const char *route, const char *payload);
/* A request whose answer must be ERROR code (message with needle). */
int ht_ctl_err(ht_conn *c, const char *route, const char *payload,
               uint32_t code, const char *needle);
int ht_subscribe(ht_conn *c, const char *pattern);
int ht_unsubscribe(ht_conn *c, const char *pattern);

/* sys.register spec ("ROUTE" or "ROUTE exclusive"): the reply must show the
 * route, its mode, state and (when position > 0) the place in line. */
int ht_register(ht_conn *c, const char *spec, const char *state, int position);

/* Serve one forwarded request by hand: it must be route with payload from
 * the caller caller_id (0: any caller); answer with reply. */
int ht_serve_one(ht_conn *p, const char *route, const char *payload,
                 uint32_t caller_id, const char *reply);

/* Learn c's conn_id from sys.hello (into c->id). */
int ht_hello(ht_conn *c);

/* ---- sys.stats ----------------------------------------------------------- */

/* The sys.stats counters the tests read, in ht_stat_keys order. */
enum {
    HT_ST_UPTIME,
    HT_ST_CUR,
    HT_ST_TOTAL,
    HT_ST_FRAMES_IN,
    HT_ST_FRAMES_OUT,
    HT_ST_BYTES_IN,
    HT_ST_BYTES_OUT,
    HT_ST_ERRORS,
    HT_ST_PENDING,
    HT_ST_FORWARDED,
    HT_ST_DROPPED,
    HT_ST_TIMED_OUT,
    HT_ST_UNAVAILABLE,
    HT_ST_BUSY,
    HT_ST_PUBLISHED,
    HT_ST_DELIVERED,
    HT_ST_UNHEARD,
    HT_ST_SLOW,
    HT_ST_L_CONN,
    HT_ST_L_USER,
    HT_ST_L_FIRST,
    HT_ST_L_FRAME,
    HT_ST_L_STALL,
    HT_ST_L_QUEUED,
    HT_ST_L_ROUTES,
    HT_ST_L_SUBS,
    HT_ST_DENIED,
    HT_ST_N
};
extern const char *const ht_stat_keys[HT_ST_N];

typedef struct ht_stats {
    uint64_t v[HT_ST_N];
} ht_stats;

/* Read sys.stats; every counter must be there. ht_get_stats prints the
 * reply. */
int ht_get_stats(ht_conn *c, ht_stats *st);
int ht_get_stats_quiet(ht_conn *c, ht_stats *st);

/* ---- the JSON of the sys.* replies --------------------------------------- */

/* Where key's value starts in a flat JSON object, or NULL. Enough for the
 * sys.* replies: keys are plain and unique. */
const char *ht_json_value(const char *json, const char *key);
int ht_json_u64(const char *json, const char *key, uint64_t *out);
int ht_json_bool(const char *json, const char *key, int *out);
/* Copy key's string value, unescaped (\\ and \" only), into out. */
int ht_json_str(const char *json, const char *key, char *out, size_t cap);
/* 1 when key's value is the string want (any string when want is NULL). */
int ht_json_is_string(const char *json, const char *key, const char *want);
/* 1 when json is one object, braces and all. */
int ht_json_is_object(const char *json);
/* key's value must be an array of strings: they go, joined by single
 * spaces in their order, to out. */
int ht_json_str_list(const char *json, const char *key, char *out, size_t cap);
/* The next flat object of a JSON array (arrays of strings inside it are
 * fine; objects are not): copied into out, *pp moved past it. 0, or -1 at
 * the end. */
int ht_json_next_object(const char **pp, char *out, size_t cap);
/* In a JSON array of flat objects, copy the object whose key is the string
 * want into out. 0 when found, -1 when not. */
int ht_json_find(const char *array, const char *key, const char *want,
                 char *out, size_t cap);

/* ---- checks: expanded in the test's file, where harness.h counts --------- */

/* Fail the running test with the helper's reason. */
#define CHECK_OK(c, expr)                                                      \
    do {                                                                       \
        if ((expr) != 0) {                                                     \
            PH_FAIL_HERE("%s: %s", #expr, (c)->why);                           \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_CONN(c, pipe)                                                    \
    do {                                                                       \
        (c) = ht_conn_open(pipe);                                              \
        if (!(c)) {                                                            \
            PH_FAIL_HERE("could not connect to %s", (pipe));                   \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Connect, and learn the connection's conn_id. */
#define CHECK_CLIENT(c, pipe)                                                  \
    do {                                                                       \
        CHECK_CONN((c), (pipe));                                               \
        CHECK_OK((c), ht_hello(c));                                            \
    } while (0)

/* start is a call that starts a daemon (0 when it serves); what names it. */
#define CHECK_STARTED(start, what)                                             \
    do {                                                                       \
        if ((start) != 0) {                                                    \
            PH_FAIL_HERE("pipehubd did not start on %s", (what));              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_DAEMON(name, extra, d)                                           \
    CHECK_STARTED(ht_daemon_start((name), (extra), &(d)), (name))

/* Start a daemon on the case's pipe with a config file holding ini_text
 * (NULL: none). */
#define CHECK_DAEMON_INI(ini_text, d)                                          \
    CHECK_STARTED(ht_daemon_start_ini((ini_text), &(d)), "the case's pipe")

#define CHECK_ALIVE(d)                                                         \
    do {                                                                       \
        DWORD ph__code = 0;                                                    \
        if (!ht_daemon_alive((d), &ph__code)) {                                \
            PH_FAIL_HERE("pipehubd on %s died, exit code %lu (0x%lx)",         \
                         (d)->pipe, (unsigned long)ph__code,                   \
                         (unsigned long)ph__code);                             \
            return;                                                            \
        }                                                                      \
    } while (0)

/* A new client of d has its sys.ping answered: d still serves. */
#define CHECK_SERVES(d)                                                        \
    do {                                                                       \
        ht_conn *ph__c;                                                        \
        CHECK_CONN(ph__c, (d)->pipe);                                          \
        CHECK_OK(ph__c, ht_ping(ph__c, 1));                                    \
        ht_conn_close(ph__c);                                                  \
    } while (0)

/* A sys.stats counter must have grown by exactly want. */
#define CHECK_GREW(a, b, key, want)                                            \
    do {                                                                       \
        uint64_t ph__d = (b).v[key] - (a).v[key];                              \
        if (ph__d != (uint64_t)(want)) {                                       \
            PH_FAIL_HERE("sys.stats %s grew by %llu, expected %llu "           \
                         "(before %llu, after %llu)",                          \
                         ht_stat_keys[key], (unsigned long long)ph__d,         \
                         (unsigned long long)(want),                           \
                         (unsigned long long)(a).v[key],                       \
                         (unsigned long long)(b).v[key]);                      \
            return;                                                            \
        }                                                                      \
    } while (0)

/* ---- main() for a program of named cases --------------------------------- */

typedef struct ht_case {
    const char *name;    /* as given on the command line */
    const char *fn_name; /* as the run prints it */
    void (*fn)(void);
} ht_case;

/* A table row; two rows with one name make one case of two tests (so a
 * side that is skipped shows as skipped), with the daemons stopped between. */
/* clang-format off */
#define HT_CASE(name, fn) {(name), #fn, (fn)}
/* clang-format on */

/* After each test, every daemon it left running must still run: a server
 * must survive any client, however broken. */
static inline void servers_survived(void)
{
    char why[PH_PIPE_PATH_MAX + 100];

    if (ht_daemons_check(why, sizeof why) != 0)
        PH_FAIL_HERE("%s", why);
}

static inline int ht__usage(const char *prog, const ht_case *cases, size_t n)
{
    size_t k;

    fprintf(stderr,
            "usage: %s CASE PATH_TO_PIPEHUBD_EXE\n"
            "       %s PATH_TO_PIPEHUBD_EXE [CASE...]\ncases:",
            prog, prog);
    for (k = 0; k < n; k++)
        if (k == 0 || strcmp(cases[k].name, cases[k - 1].name) != 0)
            fprintf(stderr, " %s", cases[k].name);
    fputc('\n', stderr);
    return 2;
}

static inline int ht__known(const ht_case *cases, size_t n, const char *name)
{
    size_t k;

    for (k = 0; k < n; k++)
        if (strcmp(cases[k].name, name) == 0)
            return 1;
    return 0;
}

/* main() of a test program: "PROG CASE EXE" runs one case (the form ctest
 * uses for one test per case), "PROG EXE [CASE...]" the named ones or all.
 * Each test runs under the harness, then servers_survived when it left a
 * daemon running, then its daemons are stopped. Returns the exit code. */
static inline int ht_main(int argc, char **argv, const ht_case *cases, size_t n)
{
    const char *prog = argc > 0 ? argv[0] : "test";
    const char *exe;
    char *one[1];
    char **names;
    int nnames, i;
    size_t k;

    if (argc == 3 && ht__known(cases, n, argv[1])) {
        one[0] = argv[1];
        exe = argv[2];
        names = one;
        nnames = 1;
    } else if (argc >= 2) {
        exe = argv[1];
        names = argv + 2;
        nnames = argc - 2;
    } else {
        return ht__usage(prog, cases, n);
    }
    for (i = 0; i < nnames; i++)
        if (!ht__known(cases, n, names[i]))
            return ht__usage(prog, cases, n);
    if (ht_init(exe) != 0) {
        fprintf(stderr, "cannot resolve %s\n", exe);
        return 2;
    }
    if (nnames == 1)
        printf("case %s", names[0]);
    else
        printf("%s", nnames ? "some cases" : "all cases");
    printf(", daemon %s, pid %lu%s\n", ht_daemon_exe(),
           (unsigned long)GetCurrentProcessId(),
           ht_under_wine() ? ", under Wine" : "");
    for (k = 0; k < n; k++) {
        int wanted = nnames == 0;

        for (i = 0; i < nnames; i++)
            wanted |= strcmp(names[i], cases[k].name) == 0;
        if (!wanted)
            continue;
        ht_case_name = cases[k].name;
        ph_run(cases[k].fn_name, cases[k].fn);
        if (ht_daemons_running() > 0)
            PH_RUN(servers_survived);
        ht_daemons_stop();
    }
    return ph_test_summary();
}

#endif
