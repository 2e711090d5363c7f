/* Limits, deadlines, abusive clients and access rules: no client can hold
 * the hub hostage, and a route's rules decide who may use it. Each case
 * starts its own pipehubd on its own pipe name (ph-CASE-PID) with a config
 * file of small limits and talks to it in raw frames (hubtest.h), never
 * through the client library.
 *
 *   test_limits CASE PATH_TO_PIPEHUBD_EXE   run one case (see cases[])
 *   test_limits traffic N PIPE              N clients in steady sys.echo
 *                                           traffic until the server stops
 *                                           (tests/wine/stop_busy.sh)
 *
 * Every abusive case asserts both sides:
 *   - the bad clients are dropped within their deadline: not before it (a
 *     lower bound) and not later than the deadline plus 2.5 s (the server
 *     checks once a second; the rest is slack for a loaded Wine), with the
 *     ERROR where one is promised, and the limit's sys.stats counter grows
 *     by exactly the number of bad clients;
 *   - a well-behaved client on another connection (the pinger) keeps getting
 *     correct sys.echo answers, and the median of its round-trip times
 *     during the attack is at most twice the median before it (a few
 *     hundred pings each, printed on an "rtt:" line). Floods are paced and
 *     measured interleaved with quiet windows (see window_tick). The pinger
 *     also pings a reference pipehubd that nobody attacks, in turn with the
 *     attacked one; its "rtt:" line (reported, never judged) tells a slower
 *     machine from a slower server.
 * Every wait has a timeout, so a hung server fails a case instead of hanging
 * it. After the case the daemons must still be running.
 *
 * Running a case by hand: send its stderr (which the daemons share) to a
 * file or a pipe, not to /dev/null. Wine takes /dev/null for a character
 * device, and an fprintf to stderr then costs ~45 us per byte (1.4 ms for
 * a 90-byte log line, measured here; 3-5 us to a file or pipe), paid under
 * the daemon's log lock: every logged connect then stalls all clients. */
#include <windows.h>

#include "hubtest.h"

#define SLACK_MS 2500u            /* past a deadline: check period + load */
#define TICK_MS 20u               /* GetTickCount64's granularity, at worst */
#define POLL_MS 100u              /* sys.clients polls while waiting */
#define LISTED_SLACK_MS 300u      /* a poll at most this before a deadline */
#define RTT_BASE_SAMPLES 300      /* pings before an attack */
#define RTT_MIN_SAMPLES 300       /* pings during it, at least */
#define RTT_MAX_RATIO 2.0

/* ---- small utilities ------------------------------------------------------ */

static uint64_t us_now(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER t;

    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (uint64_t)(t.QuadPart / freq.QuadPart * 1000000 +
                      t.QuadPart % freq.QuadPart * 1000000 / freq.QuadPart);
}

/* Bytes that follow from (tag, seq): a reply carrying another request's
 * payload, or a corrupted one, is caught. The first 8 bytes are tag, seq. */
static void fill(uint8_t *p, size_t len, uint32_t tag, uint32_t seq)
{
    uint32_t x = tag * 2654435761u ^ (seq + 1u) * 40503u;
    size_t i;

    for (i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    if (len >= 8) {
        ph_put_u32le(p, tag);
        ph_put_u32le(p + 4, seq);
    }
}

/* ---- the hub's views ------------------------------------------------------ */

/* Poll sys.stats until connections_current is want (0), or timeout (-1). */
static int wait_current(ht_conn *c, uint64_t want, uint32_t timeout_ms,
                        uint64_t *waited)
{
    uint64_t t0 = ht_ms_now();
    ht_stats s;

    for (;;) {
        if (ht_get_stats_quiet(c, &s) != 0)
            return -1;
        if (s.v[HT_ST_CUR] == want) {
            *waited = ht_ms_now() - t0;
            return 0;
        }
        if (ht_ms_now() - t0 >= timeout_ms)
            return ht_failf(c,
                            "connections_current is %llu, not %llu, %u ms on",
                            (unsigned long long)s.v[HT_ST_CUR],
                            (unsigned long long)want, timeout_ms);
        Sleep(50);
    }
}

/* ---- checks --------------------------------------------------------------- */

/* A measured time t (ms) must lie in lo..hi; lo is relaxed by the clock's
 * granularity. */
#define CHECK_WITHIN(what, t, lo, hi)                                         \
    do {                                                                      \
        uint64_t ph__t = (t), ph__lo = (lo), ph__hi = (hi);                   \
        if (ph__t + TICK_MS < ph__lo || ph__t > ph__hi) {                     \
            PH_FAIL_HERE("%s after %llu ms, expected %llu..%llu ms", (what),  \
                         (unsigned long long)ph__t,                           \
                         (unsigned long long)ph__lo,                          \
                         (unsigned long long)ph__hi);                         \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- sys.clients ---------------------------------------------------------- */

/* Connections the test expects the hub to drop: when the last poll that
 * listed each was sent (the hub listed it at that time or later) and when
 * the first poll that did not list it was answered (it was gone by then);
 * 0: not yet. */
typedef struct tracked {
    uint32_t id;
    uint64_t last_seen, gone_at;
} tracked;

/* One sys.clients poll: update each tracked connection; the number of
 * listed connections and the sum of their queued bytes go to *listed and
 * *queued. Returns the number of tracked connections gone, or -1. */
static int track_poll(ht_conn *ctl, tracked *t, int n, int *listed,
                      uint64_t *queued)
{
    uint64_t sent = ht_ms_now(), now;
    char *s = ht_call_text(ctl, "sys.clients", NULL);
    char obj[4096];
    const char *p;
    int i, gone = 0;

    if (!s)
        return -1;
    now = ht_ms_now();
    *listed = 0;
    *queued = 0;
    for (i = 0; i < n; i++) {
        int found = 0;
        for (p = s; ht_json_next_object(&p, obj, sizeof obj) == 0;) {
            uint64_t id = 0;
            if (ht_json_u64(obj, "conn_id", &id) == 0 && id == t[i].id) {
                found = 1;
                break;
            }
        }
        if (found && t[i].gone_at == 0)
            t[i].last_seen = sent;
        else if (!found && t[i].gone_at == 0)
            t[i].gone_at = now;
        if (t[i].gone_at != 0)
            gone++;
    }
    for (p = s; ht_json_next_object(&p, obj, sizeof obj) == 0;) {
        uint64_t q = 0;
        (*listed)++;
        if (ht_json_u64(obj, "queued", &q) == 0)
            *queued += q;
    }
    free(s);
    return gone;
}

/* The sys.clients object of conn id, copied into out; -1 when not listed. */
static int clients_row(ht_conn *ctl, uint32_t id, char *out, size_t cap)
{
    char *s = ht_call_text(ctl, "sys.clients", NULL);
    const char *p;

    if (!s)
        return -1;
    for (p = s; ht_json_next_object(&p, out, cap) == 0;) {
        uint64_t v = 0;
        if (ht_json_u64(out, "conn_id", &v) == 0 && v == id) {
            free(s);
            return 0;
        }
    }
    ht_failf(ctl, "sys.clients does not list conn %lu: %.400s",
             (unsigned long)id, s);
    free(s);
    return -1;
}

/* ---- the well-behaved client: sys.echo round trips on its own thread ------ */

enum { PH_BEFORE, PH_DURING, PH_AFTER, PH_NPHASE, PH_OFF = PH_NPHASE };
#define PINGER_CAP 100000
#define PINGER_PAYLOAD 64

typedef struct pinger {
    ht_conn *c;
    ht_conn *ref; /* optional: a reference pipehubd, pinged
                  in turn with c */
    HANDLE thread;
    volatile LONG stop;
    volatile LONG phase;        /* where the next round trip is counted */
    uint32_t *us[PH_NPHASE];    /* round-trip times, microseconds */
    volatile LONG n[PH_NPHASE];
    uint32_t *ref_us[PH_NPHASE];
    volatile LONG ref_n[PH_NPHASE];
    volatile LONG answered;
    volatile LONG failed;
    char why[700];
} pinger;

static DWORD WINAPI pinger_main(void *arg)
{
    pinger *p = arg;
    ht_conn *c = p->c;
    uint8_t pl[PINGER_PAYLOAD];
    uint32_t seq = 0;

    while (!p->stop) {
        LONG phase = p->phase;
        uint64_t t0;
        uint32_t us;

        seq++;
        fill(pl, sizeof pl, 0x50494e47u, seq);
        t0 = us_now();
        if (ht_send_request(c, "sys.echo", seq, pl, sizeof pl) != 0 ||
            ht_expect_reply(c, seq, pl, sizeof pl) != 0) {
            snprintf(p->why, sizeof p->why, "pinger (conn %lu), round trip "
                     "%lu: %s", (unsigned long)c->id, (unsigned long)seq,
                     c->why);
            InterlockedExchange(&p->failed, 1);
            break;
        }
        us = (uint32_t)(us_now() - t0);
        InterlockedIncrement(&p->answered);
        if (phase < PH_NPHASE && p->n[phase] < PINGER_CAP) {
            p->us[phase][p->n[phase]] = us;
            InterlockedIncrement(&p->n[phase]);
        }
        Sleep(1); /* a client, not a load generator */
        if (p->ref) {
            t0 = us_now();
            if (ht_send_request(p->ref, "sys.echo", seq, pl, sizeof pl) != 0 ||
                ht_expect_reply(p->ref, seq, pl, sizeof pl) != 0) {
                snprintf(p->why, sizeof p->why, "pinger of the reference "
                         "daemon, round trip %lu: %s", (unsigned long)seq,
                         p->ref->why);
                InterlockedExchange(&p->failed, 1);
                break;
            }
            us = (uint32_t)(us_now() - t0);
            if (phase < PH_NPHASE && p->ref_n[phase] < PINGER_CAP) {
                p->ref_us[phase][p->ref_n[phase]] = us;
                InterlockedIncrement(&p->ref_n[phase]);
            }
            Sleep(1);
        }
    }
    return 0;
}

static int pinger_start(pinger *p, ht_conn *c, ht_conn *ref)
{
    int i;

    memset(p, 0, sizeof *p);
    p->c = c;
    p->ref = ref;
    p->phase = PH_OFF;
    for (i = 0; i < PH_NPHASE; i++) {
        p->us[i] = malloc(PINGER_CAP * sizeof *p->us[i]);
        p->ref_us[i] = malloc(PINGER_CAP * sizeof *p->ref_us[i]);
        if (!p->us[i] || !p->ref_us[i])
            return -1;
    }
    p->thread = CreateThread(NULL, 0, pinger_main, p, 0, NULL);
    return p->thread ? 0 : -1;
}

/* Count the next round trips as "before", until there are n of them. */
static int pinger_baseline(pinger *p, LONG n)
{
    uint64_t deadline = ht_ms_now() + 30000;

    InterlockedExchange(&p->phase, PH_BEFORE);
    while (p->n[PH_BEFORE] < n && !p->failed && ht_ms_left(deadline))
        Sleep(10);
    return p->n[PH_BEFORE] >= n ? 0 : -1;
}

static void pinger_phase(pinger *p, LONG phase)
{
    InterlockedExchange(&p->phase, phase);
}

/* Wait until at least n round trips were counted in phase. */
static void pinger_wait(pinger *p, LONG phase, LONG n, uint32_t timeout_ms)
{
    uint64_t deadline = ht_ms_now() + timeout_ms;

    while (p->n[phase] < n && !p->failed && ht_ms_left(deadline))
        Sleep(10);
}

/* Forget every round trip counted so far (for a second measurement). */
static void pinger_reset(pinger *p)
{
    LONG seen;
    uint64_t deadline = ht_ms_now() + 5000;
    int i;

    pinger_phase(p, PH_OFF);
    /* Let a round trip that began in a counted phase finish. */
    seen = p->answered;
    while (p->answered < seen + 2 && !p->failed && ht_ms_left(deadline))
        Sleep(1);
    for (i = 0; i < PH_NPHASE; i++) {
        InterlockedExchange(&p->n[i], 0);
        InterlockedExchange(&p->ref_n[i], 0);
    }
}

/* Stop and join; 0 when it ended in time and never failed. */
static int pinger_stop(pinger *p)
{
    int i, rc = ht_join(&p->thread, &p->stop, 15000);

    for (i = 0; i < PH_NPHASE; i++) {
        free(p->us[i]);
        free(p->ref_us[i]);
        p->us[i] = p->ref_us[i] = NULL;
    }
    return p->failed ? -1 : rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Median and 90th percentile of n samples (sorted in place). */
static void summary(uint32_t *us, LONG n, uint32_t *median, uint32_t *p90)
{
    *median = *p90 = 0;
    if (n == 0)
        return;
    qsort(us, (size_t)n, sizeof *us, cmp_u32);
    *median = us[n / 2];
    *p90 = us[(size_t)n * 9 / 10];
}

static void pinger_summary(pinger *p, int phase, uint32_t *median,
                           uint32_t *p90)
{
    summary(p->us[phase], p->n[phase], median, p90);
}

/* The good client's verdict: it never failed, it had enough round trips
 * before and during, and (when enforce) its median round trip during the
 * attack is at most RTT_MAX_RATIO times the one before. Prints an "rtt:"
 * line either way. 0, or -1 with why. */
static int pinger_verdict(pinger *p, const char *what, int enforce, char *why,
                          size_t cap)
{
    uint32_t mb, pb, md, pd;
    double r;

    if (p->failed) {
        snprintf(why, cap, "the well-behaved client failed: %s", p->why);
        return -1;
    }
    pinger_summary(p, PH_BEFORE, &mb, &pb);
    pinger_summary(p, PH_DURING, &md, &pd);
    r = mb ? (double)md / mb : 0.0;
    ht_say("rtt: %s, %s: median %lu us before (n=%ld, p90 %lu), %lu us during "
           "(n=%ld, p90 %lu): ratio %.2f%s",
           ht_case_name, what, (unsigned long)mb, (long)p->n[PH_BEFORE],
           (unsigned long)pb, (unsigned long)md, (long)p->n[PH_DURING],
           (unsigned long)pd, r, enforce ? "" : " (reported, not judged)");
    if (p->ref) {
        uint32_t rmb, rpb, rmd, rpd;
        summary(p->ref_us[PH_BEFORE], p->ref_n[PH_BEFORE], &rmb, &rpb);
        summary(p->ref_us[PH_DURING], p->ref_n[PH_DURING], &rmd, &rpd);
        ht_say(
            "rtt: %s, reference (an idle pipehubd, pinged in turn): median "
            "%lu us before (n=%ld, p90 %lu), %lu us during (n=%ld, p90 %lu): "
            "ratio %.2f",
            ht_case_name, (unsigned long)rmb, (long)p->ref_n[PH_BEFORE],
            (unsigned long)rpb, (unsigned long)rmd, (long)p->ref_n[PH_DURING],
            (unsigned long)rpd, rmb ? (double)rmd / rmb : 0.0);
    }
    if (p->n[PH_BEFORE] < RTT_BASE_SAMPLES || p->n[PH_DURING] < RTT_MIN_SAMPLES) {
        snprintf(why, cap, "too few round trips to judge: %ld before, %ld "
                 "during (want %d and %d)", (long)p->n[PH_BEFORE],
                 (long)p->n[PH_DURING], RTT_BASE_SAMPLES, RTT_MIN_SAMPLES);
        return enforce ? -1 : 0;
    }
    if (enforce && r > RTT_MAX_RATIO) {
        snprintf(why, cap, "the well-behaved client's median round trip went "
                 "from %lu us to %lu us during %s (x%.2f, at most x%.1f "
                 "allowed)", (unsigned long)mb, (unsigned long)md, what, r,
                 RTT_MAX_RATIO);
        return -1;
    }
    return 0;
}

#define CHECK_PINGER_X(p, what, enforce)                                      \
    do {                                                                      \
        char ph__why[900];                                                    \
        if (pinger_verdict((p), (what), (enforce), ph__why,                   \
                           sizeof ph__why) != 0) {                            \
            PH_FAIL_HERE("%s", ph__why);                                      \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_PINGER(p, what) CHECK_PINGER_X((p), (what), 1)

/* Floods, for attacks that come in units (waves of connections, batches
 * of requests), are measured interleaved and paced:
 *   - paced: each unit is followed by a pause as long as it took, so the
 *     flood runs at half the rate this machine can drive it. At full rate
 *     the flooding thread, pipehubd and wineserver (one thread for every
 *     process) saturate a 2-core Wine box, and then every server on it,
 *     an idle one too, answers slower: the reference daemon's "rtt:" line
 *     shows that;
 *   - interleaved: the attack runs in windows of at least WINDOW_MS, each
 *     followed by a quiet window as long (at most 1 s). Round trips in
 *     attack windows count as "during"; those in quiet windows join the
 *     baseline taken before the first as "before", so a change in the
 *     machine's load (other programs on a shared machine) weighs on both
 *     sides alike. */
#define WINDOW_MS 100u
#define MAX_ATTACK_MS 30000u /* a flood stops here, enough round trips or not */

typedef struct window {
    pinger *p;
    uint64_t t0, start, unit_us;
    int quiet_windows, units;
} window;

static void window_begin(window *w, pinger *p)
{
    w->p = p;
    w->quiet_windows = w->units = 0;
    pinger_phase(p, PH_DURING);
    w->t0 = w->start = ht_ms_now();
    w->unit_us = us_now();
}

/* After each unit of the attack: the pause, and a quiet window when the
 * attack window is over. Returns 1 once both sides have enough round trips
 * (the caller then stops the attack). */
static int window_tick(window *w)
{
    uint64_t unit = us_now() - w->unit_us, on;

    w->units++;
    Sleep((DWORD)(unit > 1000000 ? 1000 : (unit + 999) / 1000));
    on = ht_ms_now() - w->start;
    if (on >= WINDOW_MS) {
        pinger_phase(w->p, PH_BEFORE);
        Sleep(on > 1000 ? 1000 : (DWORD)on);
        w->quiet_windows++;
        if (w->p->n[PH_DURING] >= RTT_MIN_SAMPLES &&
            w->p->n[PH_BEFORE] >= RTT_BASE_SAMPLES + RTT_MIN_SAMPLES / 2) {
            pinger_phase(w->p, PH_AFTER);
            return 1;
        }
        pinger_phase(w->p, PH_DURING);
        w->start = ht_ms_now();
    }
    w->unit_us = us_now();
    return 0;
}

#define CHECK_PINGER_STOPPED(p)                                               \
    do {                                                                      \
        if (pinger_stop(p) != 0) {                                            \
            PH_FAIL_HERE("the well-behaved client: %s",                       \
                         (p)->why[0] ? (p)->why : "did not stop");            \
            return;                                                           \
        }                                                                     \
    } while (0)

/* ---- watching clients that the server should drop ------------------------- */

/* A bad client that reads: every frame it gets and when, and when the pipe
 * broke. */
typedef struct watched {
    ht_conn *c;
    uint64_t t0;          /* the deadline runs from here (at the latest) */
    uint64_t t0_late;     /* ... and at the earliest from here */
    uint64_t t_err;       /* the first ERROR frame came; 0 = none */
    uint64_t t_close;     /* the pipe broke; 0 = not yet */
    uint32_t err_code, err_id;
    char err_msg[256];
    int frames;           /* frames of any kind */
    char first_other[300];/* the first frame that was not the ERROR */
    int others;
    int bad;              /* the stream broke mid-frame or the read failed */
    char bad_why[200];
    int bytes_sent;       /* slowloris: bytes trickled */
    int write_refused;    /* a write failed: the pipe was closed */
} watched;

static void watch_issue(watched *w)
{
    ht_conn *c = w->c;
    DWORD e;

    ResetEvent(c->read_event);
    memset(&c->read_ov, 0, sizeof c->read_ov);
    c->read_ov.hEvent = c->read_event;
    if (!ReadFile(c->pipe, c->in, HT_READ_CHUNK, NULL, &c->read_ov) &&
        (e = GetLastError()) != ERROR_IO_PENDING) {
        if (ht_pipe_closed(e)) {
            w->t_close = ht_ms_now();
        } else {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "ReadFile error %lu",
                     (unsigned long)e);
        }
        return;
    }
    c->read_pending = 1;
}

/* The read of w completed (its event is set). */
static void watch_done(watched *w)
{
    ht_conn *c = w->c;
    DWORD n = 0, e;
    size_t off = 0;

    c->read_pending = 0;
    if (!GetOverlappedResult(c->pipe, &c->read_ov, &n, FALSE)) {
        e = GetLastError();
        if (ht_pipe_closed(e)) {
            w->t_close = ht_ms_now();
            if (!ph_decoder_idle(&c->dec)) {
                w->bad = 1;
                snprintf(w->bad_why, sizeof w->bad_why,
                         "closed in the middle of a frame");
            }
        } else {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "read error %lu",
                     (unsigned long)e);
        }
        return;
    }
    while (off < n) {
        ph_frame f;
        size_t used = 0;
        ph_err err = ph_decoder_next(&c->dec, c->in + off, n - off, &used, &f);

        if (err == PH_EAGAIN)
            break;
        if (err != PH_OK) {
            w->bad = 1;
            snprintf(w->bad_why, sizeof w->bad_why, "malformed stream: %s",
                     c->dec.why);
            return;
        }
        off += used;
        w->frames++;
        if (f.kind == PH_ERROR && w->t_err == 0) {
            w->t_err = ht_ms_now();
            w->err_code = f.status;
            w->err_id = f.id;
            ht_error_text(&f, w->err_msg, sizeof w->err_msg);
        } else {
            if (w->others++ == 0)
                ht_describe(&f, w->first_other, sizeof w->first_other);
        }
    }
    watch_issue(w);
}

/* Handle completions for up to ms; returns how many are still open. */
static int watch_wait(watched *ws, int n, DWORD ms)
{
    HANDLE ev[MAXIMUM_WAIT_OBJECTS];
    int idx[MAXIMUM_WAIT_OBJECTS], k = 0, i, open = 0;
    DWORD r;

    for (i = 0; i < n && k < MAXIMUM_WAIT_OBJECTS; i++) {
        if (ws[i].c->read_pending) {
            ev[k] = ws[i].c->read_event;
            idx[k++] = i;
        }
    }
    if (k == 0)
        return 0;
    r = WaitForMultipleObjects((DWORD)k, ev, FALSE, ms);
    if (r < WAIT_OBJECT_0 + (DWORD)k) {
        for (i = 0; i < k; i++)
            if (WaitForSingleObject(ev[i], 0) == WAIT_OBJECT_0)
                watch_done(&ws[idx[i]]);
    }
    for (i = 0; i < n; i++)
        if (ws[i].c->read_pending)
            open++;
    return open;
}

/* Each watched client must have got exactly one frame, ERROR code id 0
 * with needle in its message, then the close; its ERROR came between lo
 * and hi ms after its t0 (lo from t0, hi from t0_late); the close at most
 * SLACK_MS after the ERROR. The times go to *first and *last. */
static int watch_verdict(watched *ws, int n, uint32_t code, const char *needle,
                         uint64_t lo, uint64_t hi, uint64_t *first,
                         uint64_t *last, char *why, size_t cap)
{
    int i;

    *first = UINT64_MAX;
    *last = 0;
    for (i = 0; i < n; i++) {
        watched *w = &ws[i];
        uint64_t at = w->t_err ? w->t_err - w->t0 : 0;
        uint64_t at_late = w->t_err ? w->t_err - w->t0_late : 0;

        if (w->bad) {
            snprintf(why, cap, "bad client %d: %s", i, w->bad_why);
            return -1;
        }
        if (w->t_err == 0) {
            snprintf(why, cap, "bad client %d got no ERROR (%d other frames, "
                     "first: %s; %s)", i, w->others, w->first_other,
                     w->t_close ? "then the pipe was closed" : "still open");
            return -1;
        }
        if (w->err_code != code || w->err_id != 0 ||
            (needle && !strstr(w->err_msg, needle))) {
            snprintf(why, cap, "bad client %d: expected ERROR %s id 0 naming "
                     "\"%s\", got ERROR %lu id %lu \"%s\"", i,
                     ph_err_name((ph_err)code), needle ? needle : "",
                     (unsigned long)w->err_code, (unsigned long)w->err_id,
                     w->err_msg);
            return -1;
        }
        if (w->others) {
            snprintf(why, cap, "bad client %d got %d frames besides the "
                     "ERROR, first: %s", i, w->others, w->first_other);
            return -1;
        }
        if (w->t_close == 0 || w->t_close - w->t_err > SLACK_MS) {
            snprintf(why, cap, "bad client %d: the pipe was %s after its "
                     "ERROR", i, w->t_close ? "closed too long" : "not closed");
            return -1;
        }
        if (at + TICK_MS < lo || at_late > hi) {
            snprintf(why, cap, "bad client %d: ERROR %s after %llu ms (%llu "
                     "from its latest start), expected %llu..%llu ms", i,
                     ph_err_name((ph_err)code), (unsigned long long)at,
                     (unsigned long long)at_late, (unsigned long long)lo,
                     (unsigned long long)hi);
            return -1;
        }
        if (at < *first)
            *first = at;
        if (at > *last)
            *last = at;
    }
    return 0;
}

/* ---- echo batches --------------------------------------------------------- */

/* count sys.echo requests of size payload bytes, ids first.., tag tag. */
static int echo_batch(ph_buf *b, uint32_t tag, uint32_t first, int count,
                      size_t size)
{
    uint8_t *pl = malloc(size ? size : 1);
    int k, rc = 0;

    if (!pl)
        return -1;
    for (k = 0; k < count && rc == 0; k++) {
        fill(pl, size, tag, first + (uint32_t)k);
        rc = ht_append_frame(b, PH_REQUEST, "sys.echo", first + (uint32_t)k, 0,
                             pl, size);
    }
    free(pl);
    return rc;
}

/* Read the echo replies of such a batch, in order. With may_close, the
 * pipe may break after any number of them (a dropped client reads what
 * is left); the replies read go to *got. */
static int read_echoes(ht_conn *c, uint32_t tag, uint32_t first, int count,
                       size_t size, int may_close, int *got)
{
    uint8_t *pl = malloc(size ? size : 1);
    int k;

    *got = 0;
    if (!pl)
        return ht_failf(c, "out of memory");
    for (k = 0; k < count; k++) {
        ph_frame f;
        char d[400];
        ph_err err = ht_read(c, &f, HT_IO_TIMEOUT_MS);

        if (err == PH_ECLOSED && may_close && ph_decoder_idle(&c->dec)) {
            free(pl);
            return 0;
        }
        if (err != PH_OK) {
            free(pl);
            return ht_failf(c, "echo reply %d of %d: %s", k + 1, count, c->why);
        }
        fill(pl, size, tag, first + (uint32_t)k);
        if (f.kind != PH_REPLY || f.id != first + (uint32_t)k ||
            !ht_payload_is(&f, pl, size)) {
            ht_describe(&f, d, sizeof d);
            free(pl);
            return ht_failf(c,
                            "expected the echo of request %lu (%lu bytes), "
                            "got %s",
                            (unsigned long)(first + (uint32_t)k),
                            (unsigned long)size, d);
        }
        (*got)++;
    }
    free(pl);
    if (may_close) {
        /* All of them came: the pipe must still break (it was dropped). */
        if (ht_expect_closed(c, HT_IO_TIMEOUT_MS) != 0)
            return -1;
    }
    return 0;
}

/* ---- cases ---------------------------------------------------------------- */

/* Start the daemon, a control connection and the pinger; and a reference
 * daemon (defaults, never attacked) that the pinger pings in turn, so its
 * "rtt:" lines show what the machine and Wine did meanwhile. */
#define SETUP(ini, d, ctl, pg)                                                \
    do {                                                                      \
        ht_conn *ph__pc, *ph__ref;                                            \
        ht_daemon *ph__rd;                                                    \
        char ph__rn[80];                                                      \
        CHECK_DAEMON_INI((ini), d);                                           \
        ht_pipe_name(ph__rn, sizeof ph__rn, "-ref");                          \
        CHECK_STARTED(ht_daemon_start(ph__rn, NULL, &ph__rd),                 \
                      "the reference pipe");                                  \
        CHECK_CLIENT(ctl, (d)->pipe);                                         \
        CHECK_CLIENT(ph__pc, (d)->pipe);                                      \
        CHECK_CLIENT(ph__ref, ph__rd->pipe);                                  \
        CHECK(pinger_start((pg), ph__pc, ph__ref) == 0);                      \
    } while (0)

/* The end of a case that began with SETUP: its connections go, and the
 * daemon must still be running. */
#define TEARDOWN(d, ctl, pg)                                                  \
    do {                                                                      \
        ht_conn_close((pg)->c);                                               \
        ht_conn_close((pg)->ref);                                             \
        ht_conn_close(ctl);                                                   \
        CHECK_ALIVE(d);                                                       \
    } while (0)

#define CHECK_BASELINE(pg)                                                    \
    do {                                                                      \
        if (pinger_baseline((pg), RTT_BASE_SAMPLES) != 0) {                   \
            PH_FAIL_HERE("no baseline: %ld round trips in 30 s%s%s",          \
                         (long)(pg)->n[PH_BEFORE], (pg)->failed ? ": " : "",  \
                         (pg)->failed ? (pg)->why : "");                      \
            return;                                                           \
        }                                                                     \
    } while (0)

/* silent: clients that connect and never send, and clients that send part
 * of a first frame and stop, get ERROR TIMEOUT naming first_frame_timeout_ms
 * 2000..4500 ms after they connected and are closed; a client that sent one
 * frame and then says nothing for longer than the deadline twice over is
 * not touched. */
static void case_silent(void)
{
    enum { SILENT = 48, PARTIAL = 8, N = SILENT + PARTIAL, DEADLINE = 2000 };
    static watched ws[N];
    static pinger pg;
    ht_daemon *d;
    ht_conn *ctl, *quiet;
    ht_stats s0, s1;
    uint64_t t_quiet, first, last, waited;
    char why[600];
    int i;

    SETUP("[limits]\nfirst_frame_timeout_ms = 2000\n", d, ctl, &pg);
    CHECK_CLIENT(quiet, d->pipe); /* one frame, then silence */
    t_quiet = ht_ms_now();
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    memset(ws, 0, sizeof ws);
    for (i = 0; i < N; i++) {
        ws[i].c = ht_conn_open(d->pipe);
        CHECK(ws[i].c != NULL);
        ws[i].t0 = ws[i].c->t_open;
        ws[i].t0_late = ht_ms_now();
        if (i >= SILENT) {
            /* 7 bytes of a header: the first frame never becomes whole. */
            static const uint8_t part[7] = {40, 0, 0, 0, 1, 1, 8};
            CHECK_OK(ws[i].c, ht_write(ws[i].c, part, sizeof part));
        }
        watch_issue(&ws[i]);
    }
    ht_say(
        "%d silent clients and %d that sent 7 bytes of a header connected in "
        "%llu ms",
        SILENT, PARTIAL, (unsigned long long)(ws[N - 1].t0_late - ws[0].t0));
    {
        uint64_t deadline = ws[N - 1].t0_late + DEADLINE + SLACK_MS + 2000;
        while (watch_wait(ws, N, 100) > 0 && ht_ms_left(deadline))
            ;
    }
    pinger_phase(&pg, PH_OFF);
    if (watch_verdict(ws, N, PH_ETIMEDOUT, "first_frame_timeout_ms", DEADLINE,
                      DEADLINE + SLACK_MS, &first, &last, why,
                      sizeof why) != 0) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    ht_say(
        "drop: all %d got ERROR TIMEOUT \"%s\" %llu..%llu ms after connecting "
        "(deadline %d ms), then the close",
        N, ws[0].err_msg, (unsigned long long)first, (unsigned long long)last,
        DEADLINE);
    CHECK_PINGER(&pg, "56 silent connections");

    /* The quiet client has said nothing for more than twice the deadline. */
    while (ht_ms_now() - t_quiet < 2 * DEADLINE + 1000)
        Sleep(100);
    CHECK_OK(quiet, ht_barrier(quiet));
    ht_say("a client silent for %llu ms after its first frame still answers",
           (unsigned long long)(ht_ms_now() - t_quiet));
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_FIRST, N);
    CHECK_GREW(s0, s1, HT_ST_L_FRAME, 0);
    for (i = 0; i < N; i++)
        ht_conn_close(ws[i].c);
    ht_conn_close(quiet);
    TEARDOWN(d, ctl, &pg);
}

/* The honest sender of the slowloris case: one large sys.echo frame in
 * 64 KiB pieces, 100 ms apart (in all well within frame_timeout_ms), then
 * its echo. */
typedef struct honest {
    ht_conn *c;
    size_t size;
    uint32_t piece, gap_ms;
    uint64_t send_ms;
    int failed;
    char why[700];
} honest;

static DWORD WINAPI honest_main(void *arg)
{
    honest *h = arg;
    ph_buf b = {0};
    size_t off;
    uint64_t t0;
    int got = 0;

    if (echo_batch(&b, 0x484f4e45u, 1, 1, h->size) != 0) {
        snprintf(h->why, sizeof h->why, "could not encode");
        h->failed = 1;
        return 0;
    }
    t0 = ht_ms_now();
    for (off = 0; off < b.len; off += h->piece) {
        size_t n = b.len - off < h->piece ? b.len - off : h->piece;
        if (off)
            Sleep(h->gap_ms);
        if (ht_write(h->c, b.data + off, n) != 0) {
            snprintf(h->why, sizeof h->why,
                     "honest sender (conn %lu), at "
                     "byte %lu of %lu, %llu ms in: %s",
                     (unsigned long)h->c->id, (unsigned long)off,
                     (unsigned long)b.len,
                     (unsigned long long)(ht_ms_now() - t0), h->c->why);
            h->failed = 1;
            ph_buf_free(&b);
            return 0;
        }
    }
    h->send_ms = ht_ms_now() - t0;
    ph_buf_free(&b);
    if (read_echoes(h->c, 0x484f4e45u, 1, 1, h->size, 0, &got) != 0 ||
        ht_barrier(h->c) != 0) {
        snprintf(h->why, sizeof h->why, "honest sender (conn %lu), after "
                 "sending for %llu ms: %s", (unsigned long)h->c->id,
                 (unsigned long long)h->send_ms, h->c->why);
        h->failed = 1;
    }
    return 0;
}

/* slowloris: clients that have sent a frame, then send a frame's first 24
 * bytes and one more byte every 300 ms get ERROR TIMEOUT naming
 * frame_timeout_ms 3000..5500 ms after their first byte and are closed;
 * meanwhile a 900 KiB frame that arrives in 64 KiB pieces over ~1.5 s is
 * served. */
static void case_slowloris(void)
{
    enum { N = 30, DEADLINE = 3000, TRICKLE_MS = 300 };
    static watched ws[N];
    static pinger pg;
    static honest hs;
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1;
    HANDLE th;
    uint8_t head[24];
    uint64_t first, last, next, deadline, waited;
    char why[600];
    int i, open;

    SETUP("[limits]\nframe_timeout_ms = 3000\n", d, ctl, &pg);
    memset(&hs, 0, sizeof hs);
    CHECK_CLIENT(hs.c, d->pipe);
    hs.size = 900u * 1024u;
    hs.piece = 64u * 1024u;
    hs.gap_ms = 100;
    memset(ws, 0, sizeof ws);
    for (i = 0; i < N; i++)
        CHECK_CLIENT(ws[i].c, d->pipe); /* its first frame: sys.hello */
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    th = CreateThread(NULL, 0, honest_main, &hs, 0, NULL);
    CHECK(th != NULL);
    /* A sys.echo frame of 224 bytes: its header and route now, then the
     * payload a byte at a time. */
    {
        ph_frame f;
        uint8_t full[224], pl[200];
        size_t len = 0;
        memset(&f, 0, sizeof f);
        memset(pl, 'x', sizeof pl);
        f.kind = PH_REQUEST;
        f.id = 7;
        f.route = "sys.echo";
        f.route_len = 8;
        f.payload = pl;
        f.payload_len = sizeof pl;
        CHECK(ph_frame_encode(&f, full, sizeof full, &len) == PH_OK);
        CHECK_EQ(len, sizeof full);
        memcpy(head, full, sizeof head);
    }
    for (i = 0; i < N; i++) {
        ws[i].t0 = ht_ms_now();
        CHECK_OK(ws[i].c, ht_write(ws[i].c, head, sizeof head));
        ws[i].t0_late = ht_ms_now();
        ws[i].bytes_sent = sizeof head;
        watch_issue(&ws[i]);
    }
    next = ht_ms_now() + TRICKLE_MS;
    deadline = ws[N - 1].t0_late + DEADLINE + SLACK_MS + 2000;
    do {
        DWORD left = ht_ms_left(next);
        open = watch_wait(ws, N, left);
        if (ht_ms_left(next) == 0) {
            static const uint8_t x = 'x';
            for (i = 0; i < N; i++) {
                if (ws[i].t_close || ws[i].write_refused || ws[i].bad)
                    continue;
                if (ht_write(ws[i].c, &x, 1) != 0)
                    ws[i].write_refused = 1;
                else
                    ws[i].bytes_sent++;
            }
            next += TRICKLE_MS;
        }
    } while (open > 0 && ht_ms_left(deadline));
    if (WaitForSingleObject(th, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the honest sender did not finish in 60 s");
        return;
    }
    CloseHandle(th);
    pinger_phase(&pg, PH_OFF);
    if (watch_verdict(ws, N, PH_ETIMEDOUT, "frame_timeout_ms", DEADLINE,
                      DEADLINE + SLACK_MS, &first, &last, why,
                      sizeof why) != 0) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    ht_say(
        "drop: all %d got ERROR TIMEOUT \"%s\" %llu..%llu ms after their first "
        "byte (deadline %d ms), having trickled %d..%d bytes of a %d-byte "
        "frame, then the close",
        N, ws[0].err_msg, (unsigned long long)first, (unsigned long long)last,
        DEADLINE, ws[0].bytes_sent, ws[N - 1].bytes_sent, 224);
    if (hs.failed) {
        PH_FAIL_HERE("%s", hs.why);
        return;
    }
    ht_say("the honest %lu-byte frame took %llu ms in %lu-byte pieces and was "
           "echoed",
           (unsigned long)hs.size, (unsigned long long)hs.send_ms,
           (unsigned long)hs.piece);
    if (hs.send_ms >= DEADLINE - 500) {
        PH_FAIL_HERE("sending the honest frame took %llu ms: too close to the "
                     "%d ms deadline to show anything",
                     (unsigned long long)hs.send_ms, DEADLINE);
        return;
    }
    CHECK_PINGER(&pg, "30 slowloris connections and one slow honest frame");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_FRAME, N);
    CHECK_GREW(s0, s1, HT_ST_L_FIRST, 0);
    for (i = 0; i < N; i++)
        ht_conn_close(ws[i].c);
    ht_conn_close(hs.c);
    TEARDOWN(d, ctl, &pg);
}

/* A client that pipelines many big requests and reads the replies slowly
 * but steadily. */
typedef struct steady {
    ht_conn *c;
    int count;
    size_t size;
    DWORD read_size, gap_ms;
    uint64_t ms;
    int failed;
    char why[700];
} steady;

static DWORD WINAPI steady_main(void *arg)
{
    steady *s = arg;
    ph_buf b = {0};
    uint8_t *pl = malloc(s->size);
    uint64_t t0 = ht_ms_now();
    int k;

    if (!pl || echo_batch(&b, 0x53544459u, 1, s->count, s->size) != 0) {
        snprintf(s->why, sizeof s->why, "out of memory");
        s->failed = 1;
        goto done;
    }
    if (ht_write_start(s->c, b.data, b.len) != 0) {
        snprintf(s->why, sizeof s->why, "steady reader: %s", s->c->why);
        s->failed = 1;
        goto done;
    }
    for (k = 0; k < s->count; k++) {
        ph_frame f;
        char d[400];
        /* Read read_size bytes at a time, gap_ms apart. */
        for (;;) {
            ph_err err = ht_try_frame(s->c, &f);
            DWORD got = 0;
            if (err == PH_OK)
                break;
            if (err == PH_EAGAIN) {
                Sleep(s->gap_ms);
                err = ht_read_some(s->c, s->read_size, HT_IO_TIMEOUT_MS, &got);
                if (err == PH_OK) {
                    s->c->in_off = 0;
                    s->c->in_len = got;
                    continue;
                }
            }
            snprintf(s->why, sizeof s->why,
                     "steady reader (conn %lu), "
                     "reply %d of %d, %llu ms in: %s",
                     (unsigned long)s->c->id, k + 1, s->count,
                     (unsigned long long)(ht_ms_now() - t0),
                     err == PH_ECLOSED ? "closed by the server"
                                       : ph_strerror(err));
            s->failed = 1;
            goto done;
        }
        fill(pl, s->size, 0x53544459u, (uint32_t)k + 1);
        if (f.kind != PH_REPLY || f.id != (uint32_t)k + 1 ||
            !ht_payload_is(&f, pl, s->size)) {
            ht_describe(&f, d, sizeof d);
            snprintf(s->why, sizeof s->why, "steady reader: expected the echo "
                     "of %d, got %s", k + 1, d);
            s->failed = 1;
            goto done;
        }
    }
    if (ht_write_finish(s->c, HT_IO_TIMEOUT_MS) != 0 || ht_barrier(s->c) != 0) {
        snprintf(s->why, sizeof s->why, "steady reader after all replies: %s",
                 s->c->why);
        s->failed = 1;
    }
    s->ms = ht_ms_now() - t0;
done:
    free(pl);
    ph_buf_free(&b);
    return 0;
}

/* stalled_reader: with send_queue_bytes = 65536 and send_stall_timeout_ms =
 * 2000, clients that pipeline 1 MiB of sys.echo requests and never read are
 * closed 2000..4500 ms after they started writing (sys.clients still listed
 * them at 1700 ms or later); what they can still read is a prefix of their
 * replies, in order; their pending write fails. A client that pipelines
 * 2 MiB and reads 16 KiB every 50 ms (over 6 s at the quota) is not closed
 * and gets every reply. */
static void case_stalled_reader(void)
{
    enum { N = 4, DEADLINE = 2000, COUNT = 64, SIZE = 16 * 1024 };
    static pinger pg;
    static steady sr;
    ht_conn *bad[N];
    tracked tr[N + 1];
    uint64_t t0[N], t0_late[N], deadline, waited;
    ph_buf b[N];
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1;
    HANDLE th;
    int i, gone = 0, listed = 0;
    uint64_t queued = 0;

    SETUP("[limits]\nsend_queue_bytes = 65536\nsend_stall_timeout_ms = 2000\n",
          d, ctl, &pg);
    memset(&sr, 0, sizeof sr);
    CHECK_CLIENT(sr.c, d->pipe);
    sr.count = 128;
    sr.size = SIZE;
    sr.read_size = 16 * 1024;
    sr.gap_ms = 50;
    memset(b, 0, sizeof b);
    for (i = 0; i < N; i++) {
        CHECK_CLIENT(bad[i], d->pipe);
        CHECK(echo_batch(&b[i], 0xBAD00000u + (uint32_t)i, 1, COUNT, SIZE) == 0);
        tr[i].id = bad[i]->id;
        tr[i].last_seen = tr[i].gone_at = 0;
    }
    tr[N].id = sr.c->id;
    tr[N].last_seen = tr[N].gone_at = 0;
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    th = CreateThread(NULL, 0, steady_main, &sr, 0, NULL);
    CHECK(th != NULL);
    for (i = 0; i < N; i++) {
        t0[i] = ht_ms_now();
        CHECK_OK(bad[i], ht_write_start(bad[i], b[i].data, b[i].len));
        t0_late[i] = ht_ms_now();
    }
    deadline = t0_late[N - 1] + DEADLINE + SLACK_MS + 2000;
    while (gone < N && ht_ms_left(deadline)) {
        int g = track_poll(ctl, tr, N + 1, &listed, &queued);
        CHECK_OK(ctl, g < 0);
        gone = g - (tr[N].gone_at != 0);
        if (tr[N].gone_at != 0)
            break;
        Sleep(POLL_MS);
    }
    pinger_phase(&pg, PH_AFTER);
    if (tr[N].gone_at != 0) {
        PH_FAIL_HERE("the steady reader (conn %lu) was dropped %llu ms in",
                     (unsigned long)sr.c->id,
                     (unsigned long long)(tr[N].gone_at - t0[0]));
        return;
    }
    for (i = 0; i < N; i++) {
        char what[120];
        if (tr[i].gone_at == 0) {
            PH_FAIL_HERE("stalled reader %d (conn %lu) still listed %llu ms "
                         "after it began writing (deadline %d ms)",
                         i, (unsigned long)tr[i].id,
                         (unsigned long long)(ht_ms_now() - t0[i]), DEADLINE);
            return;
        }
        snprintf(what, sizeof what, "stalled reader %d last listed", i);
        /* Listed until the deadline (less LISTED_SLACK_MS: polls are
         * POLL_MS apart, more on a loaded machine), gone soon after it. */
        CHECK_WITHIN(what, tr[i].last_seen - t0[i], DEADLINE - LISTED_SLACK_MS,
                     DEADLINE + SLACK_MS);
        snprintf(what, sizeof what, "stalled reader %d gone", i);
        CHECK_WITHIN(what, tr[i].gone_at - t0_late[i], DEADLINE,
                     DEADLINE + SLACK_MS);
        ht_say("drop: stalled reader %d (conn %lu): listed at %llu ms, gone at "
               "%llu ms (deadline %d ms)",
               i, (unsigned long)tr[i].id,
               (unsigned long long)(tr[i].last_seen - t0[i]),
               (unsigned long long)(tr[i].gone_at - t0[i]), DEADLINE);
    }
    for (i = 0; i < N; i++) {
        int got = 0;
        if (ht_write_finish(bad[i], 5000) == 0) {
            PH_FAIL_HERE("stalled reader %d: its 1 MiB write completed, though "
                         "the server stopped reading at its quota", i);
            return;
        }
        CHECK_OK(bad[i], read_echoes(bad[i], 0xBAD00000u + (uint32_t)i, 1,
                                     COUNT, SIZE, 1, &got));
        ht_say("stalled reader %d: write failed (%s); %d of %d replies left in "
               "its pipe, in order, then the close",
               i, bad[i]->why, got, COUNT);
        CHECK(got < COUNT);
    }
    if (WaitForSingleObject(th, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the steady reader did not finish in 60 s");
        return;
    }
    CloseHandle(th);
    if (sr.failed) {
        PH_FAIL_HERE("%s", sr.why);
        return;
    }
    ht_say(
        "the steady reader got all %d replies of %d bytes in %llu ms (reading "
        "%lu bytes every %lu ms), never dropped",
        sr.count, (int)sr.size, (unsigned long long)sr.ms,
        (unsigned long)sr.read_size, (unsigned long)sr.gap_ms);
    CHECK(sr.ms > 3 * DEADLINE); /* it spent longer than the deadline at it */
    CHECK_PINGER(&pg, "4 stalled readers and a slow steady one");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_STALL, N);
    for (i = 0; i < N; i++) {
        ht_conn_close(bad[i]);
        ph_buf_free(&b[i]);
    }
    ht_conn_close(sr.c);
    TEARDOWN(d, ctl, &pg);
}

/* queued_cap: max_queued_bytes = 1 MiB, send_queue_bytes = 1 MiB (so no
 * single client is at its own quota). Two small non-readers queue 150 KiB of
 * replies each, then four big ones 600 KiB each. Whatever the timing, the
 * server must drop the biggest until the total is under 1 MiB: one big one
 * plus the two small ones fit (at most 900 KiB), two big ones do not (each
 * holds at least 600 KiB less a 64 KiB pipe buffer), so exactly three big
 * ones go, within 3.5 s of the last write; the others, the pinger and the
 * control connection keep working and get every reply. */
static void case_queued_cap(void)
{
    enum { BIG = 4, SMALL = 2, N = BIG + SMALL, PIECE = 60 * 1024,
           BIG_COUNT = 10, SMALL_COUNT = 5, SMALL_PIECE = 30 * 1024,
           CAP = 1048576, PERIOD = 1000 };
    static pinger pg;
    ht_conn *cs[N];
    tracked tr[N];
    ph_buf b[N];
    uint64_t t_fill, deadline, total = 0, settled = 0, waited;
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1;
    int i, gone = 0, listed = 0, dropped_big = 0;

    SETUP("[limits]\nmax_queued_bytes = 1048576\nsend_queue_bytes = 1048576\n"
          "send_stall_timeout_ms = 60000\n", d, ctl, &pg);
    memset(b, 0, sizeof b);
    for (i = 0; i < N; i++) {
        int big = i < BIG;
        CHECK_CLIENT(cs[i], d->pipe);
        CHECK(echo_batch(&b[i], 0xCA900000u + (uint32_t)i, 1,
                         big ? BIG_COUNT : SMALL_COUNT,
                         big ? PIECE : SMALL_PIECE) == 0);
        tr[i].id = cs[i]->id;
        tr[i].last_seen = tr[i].gone_at = 0;
    }
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    for (i = BIG; i < N; i++)
        CHECK_OK(cs[i], ht_write(cs[i], b[i].data, b[i].len));
    Sleep(200);
    for (i = 0; i < BIG; i++)
        CHECK_OK(cs[i], ht_write_start(cs[i], b[i].data, b[i].len));
    for (i = 0; i < BIG; i++) {
        /* Under the quota: the server reads it all. */
        CHECK_OK(cs[i], ht_write_finish(cs[i], HT_IO_TIMEOUT_MS));
    }
    t_fill = ht_ms_now();
    /* Until three are gone, then two more check periods to see no more go. */
    deadline = t_fill + PERIOD + SLACK_MS + 2000;
    for (;;) {
        int g = track_poll(ctl, tr, N, &listed, &total);
        CHECK_OK(ctl, g < 0);
        gone = g;
        if (gone >= BIG - 1 && settled == 0)
            settled = ht_ms_now() + 2 * PERIOD + 200;
        if ((settled && ht_ms_now() >= settled) || ht_ms_left(deadline) == 0)
            break;
        Sleep(POLL_MS);
    }
    pinger_phase(&pg, PH_AFTER);
    for (i = 0; i < N; i++) {
        if (tr[i].gone_at == 0)
            continue;
        if (i >= BIG) {
            PH_FAIL_HERE("small client %d (conn %lu, 150 KiB) was dropped: it "
                         "never held the most", i, (unsigned long)tr[i].id);
            return;
        }
        dropped_big++;
        CHECK_WITHIN("a big non-reader gone", tr[i].gone_at - t_fill, 0,
                     PERIOD + SLACK_MS);
        ht_say("drop: big non-reader %d (conn %lu) gone %llu ms after the last "
               "write completed",
               i, (unsigned long)tr[i].id,
               (unsigned long long)(tr[i].gone_at - t_fill));
    }
    ht_say("after the drops: %d connections listed, %llu bytes queued in all "
           "(cap %d)",
           listed, (unsigned long long)total, CAP);
    if (dropped_big != BIG - 1) {
        PH_FAIL_HERE("%d of the %d big non-readers were dropped; the cap "
                     "allows exactly one of them with the small ones",
                     dropped_big, BIG);
        return;
    }
    CHECK(total <= CAP);
    for (i = 0; i < N; i++) {
        int big = i < BIG, got = 0, count = big ? BIG_COUNT : SMALL_COUNT;
        CHECK_OK(cs[i], read_echoes(cs[i], 0xCA900000u + (uint32_t)i, 1, count,
                                    big ? PIECE : SMALL_PIECE,
                                    tr[i].gone_at != 0, &got));
        if (tr[i].gone_at == 0) {
            CHECK_OK(cs[i], ht_barrier(cs[i]));
            ht_say("%s non-reader %d kept: all %d replies, in order",
                   big ? "big" : "small", i, count);
        } else {
            ht_say("big non-reader %d dropped: %d of %d replies left in its "
                   "pipe, in order, then the close",
                   i, got, count);
        }
    }
    CHECK_PINGER(&pg, "non-readers past max_queued_bytes");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 2 + N - (BIG - 1), 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_QUEUED, BIG - 1);
    CHECK_GREW(s0, s1, HT_ST_L_STALL, 0);
    for (i = 0; i < N; i++) {
        ht_conn_close(cs[i]);
        ph_buf_free(&b[i]);
    }
    TEARDOWN(d, ctl, &pg);
}

/* Open a connection and send one sys.ping (id 1): 1 = answered (the
 * connection is kept in *out), 0 = ERROR BUSY naming the limit then the
 * close, -1 = anything else (why). *busy_ms: from the ping to the ERROR. */
static int try_join(const char *pipe, const char *needle, ht_conn **out,
                    uint64_t *busy_ms, char *why, size_t cap)
{
    ht_conn *c = ht_conn_open(pipe);
    ph_frame f;
    char d[400], text[300];
    uint64_t t0;

    *out = NULL;
    if (!c) {
        snprintf(why, cap, "could not connect");
        return -1;
    }
    t0 = ht_ms_now();
    if (ht_send_request(c, "sys.ping", 1, NULL, 0) != 0 ||
        ht_read(c, &f, HT_IO_TIMEOUT_MS) != PH_OK) {
        snprintf(why, cap, "%s", c->why);
        ht_conn_close(c);
        return -1;
    }
    ht_describe(&f, d, sizeof d);
    if (f.kind == PH_REPLY && f.id == 1) {
        *out = c;
        return 1;
    }
    if (f.kind != PH_ERROR || f.status != PH_EBUSY || f.id != 0) {
        snprintf(why, cap, "expected a REPLY or ERROR BUSY id 0, got %s", d);
        ht_conn_close(c);
        return -1;
    }
    ht_error_text(&f, text, sizeof text);
    *busy_ms = ht_ms_now() - t0;
    if (!strstr(text, needle)) {
        snprintf(why, cap, "ERROR BUSY \"%s\" does not name \"%s\"", text,
                 needle);
        ht_conn_close(c);
        return -1;
    }
    if (ht_expect_closed(c, HT_IO_TIMEOUT_MS) != 0) {
        snprintf(why, cap, "after ERROR BUSY: %s", c->why);
        ht_conn_close(c);
        return -1;
    }
    ht_conn_close(c);
    return 0;
}

/* per_user: max_connections_per_user = 5 and every client here is one
 * account (the control connection and the pinger are two of the five). A
 * sixth gets ERROR BUSY naming the limit at its first bytes and is closed;
 * once one closes, a new one is accepted. Then floods: 4 waves of 60
 * connections, each sending a ping, against 3 free places: exactly 3 of
 * each wave are served, 57 get BUSY; the pinger does not notice. */
static void case_per_user(void)
{
    enum { LIMIT = 5, MIN_WAVES = 4, FLOOD = 60 };
    static pinger pg;
    static ht_conn *fl[FLOOD];
    const char *needle = "max_connections_per_user (5)";
    ht_conn *a[3], *x, *y;
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1;
    uint64_t busy_ms = 0, worst_busy = 0, waited, t_flood;
    window win;
    char why[600];
    int i, w, rc, refused = 0;

    SETUP("[limits]\nmax_connections_per_user = 5\n", d, ctl, &pg);
    for (i = 0; i < 3; i++)
        CHECK_CLIENT(a[i], d->pipe);
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_BASELINE(&pg);
    pinger_phase(&pg, PH_DURING);

    rc = try_join(d->pipe, needle, &x, &busy_ms, why, sizeof why);
    if (rc != 0) {
        PH_FAIL_HERE("the sixth connection of one account: %s",
                     rc > 0 ? "was served" : why);
        return;
    }
    refused++;
    ht_say("the sixth connection: ERROR BUSY naming %s %llu ms after its first "
           "bytes, then the close",
           needle, (unsigned long long)busy_ms);
    CHECK_WITHIN("ERROR BUSY", busy_ms, 0, SLACK_MS);

    /* One leaves: its place is free again once the server has seen it go. */
    ht_conn_close(a[0]);
    CHECK_OK(ctl, wait_current(ctl, LIMIT - 1, 5000, &waited));
    rc = try_join(d->pipe, needle, &y, &busy_ms, why, sizeof why);
    if (rc != 1) {
        PH_FAIL_HERE("after one of five closed (gone from the counts in %llu "
                     "ms), a new connection: %s", (unsigned long long)waited,
                     rc == 0 ? "ERROR BUSY" : why);
        return;
    }
    ht_say("one closed (the server counted it gone in %llu ms): a new one is "
           "served",
           (unsigned long long)waited);
    ht_conn_close(y);
    ht_conn_close(a[1]);
    ht_conn_close(a[2]);

    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    t_flood = ht_ms_now();
    /* At least MIN_WAVES, and on until the pinger has had its round trips,
     * in attack windows and quiet ones. */
    window_begin(&win, &pg);
    for (w = 0; ht_ms_now() - win.t0 < MAX_ATTACK_MS; w++) {
        int served = 0, busy = 0;
        for (i = 0; i < FLOOD; i++) {
            fl[i] = ht_conn_open(d->pipe);
            CHECK(fl[i] != NULL);
        }
        for (i = 0; i < FLOOD; i++)
            CHECK_OK(fl[i], ht_send_request(fl[i], "sys.ping", 1, NULL, 0));
        for (i = 0; i < FLOOD; i++) {
            ph_frame f;
            char dsc[400], text[300];
            uint64_t t = ht_ms_now();
            CHECK_OK(fl[i], ht_read(fl[i], &f, HT_IO_TIMEOUT_MS) != PH_OK);
            ht_describe(&f, dsc, sizeof dsc);
            if (f.kind == PH_REPLY && f.id == 1) {
                served++;
                continue;
            }
            ht_error_text(&f, text, sizeof text);
            if (f.kind != PH_ERROR || f.status != PH_EBUSY || f.id != 0 ||
                !strstr(text, needle)) {
                PH_FAIL_HERE("wave %d, connection %d: expected a REPLY or "
                             "ERROR BUSY naming %s, got %s", w, i, needle, dsc);
                return;
            }
            CHECK_OK(fl[i], ht_expect_closed(fl[i], HT_IO_TIMEOUT_MS));
            if (ht_ms_now() - t > worst_busy)
                worst_busy = ht_ms_now() - t;
            busy++;
        }
        if (w < 2)
            ht_say("flood wave %d: %d connections at once with 3 places free: "
                   "%d served, %d ERROR BUSY then closed",
                   w, FLOOD, served, busy);
        if (served != LIMIT - 2) {
            PH_FAIL_HERE("wave %d: %d of %d served; the limit leaves exactly %d "
                         "places", w, served, FLOOD, LIMIT - 2);
            return;
        }
        refused += busy;
        for (i = 0; i < FLOOD; i++)
            ht_conn_close(fl[i]);
        /* The wave is over when the server has seen its clients go. */
        CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
        if (window_tick(&win) && w + 1 >= MIN_WAVES)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ht_say(
        "%d waves of %d in %llu ms (%d quiet windows between), each: exactly "
        "3 served, the rest ERROR BUSY then closed, at worst %llu ms after "
        "the ping",
        w + 1, FLOOD, (unsigned long long)(ht_ms_now() - t_flood),
        win.quiet_windows, (unsigned long long)worst_busy);
    CHECK_PINGER(&pg, "floods to max_connections_per_user");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_USER, refused);
    CHECK_GREW(s0, s1, HT_ST_L_CONN, 0);
    TEARDOWN(d, ctl, &pg);
}

/* The routes and subscriptions sys.clients lists for conn id. */
static int clients_lists(ht_conn *ctl, uint32_t id, char *routes, char *subs,
                         size_t cap)
{
    char obj[4096];

    if (clients_row(ctl, id, obj, sizeof obj) != 0)
        return -1;
    if (ht_json_str_list(obj, "routes", routes, cap) != 0 ||
        ht_json_str_list(obj, "subscriptions", subs, cap) != 0)
        return ht_failf(ctl,
                        "sys.clients row of conn %lu has no routes or "
                        "subscriptions list: %s",
                        (unsigned long)id, obj);
    return 0;
}

#define CHECK_LISTS(ctl, id, want_routes, want_subs)                          \
    do {                                                                      \
        char ph__r[1024], ph__s[1024];                                        \
        CHECK_OK(ctl, clients_lists((ctl), (id), ph__r, ph__s, sizeof ph__r));\
        if (strcmp(ph__r, (want_routes)) != 0 ||                              \
            strcmp(ph__s, (want_subs)) != 0) {                                \
            PH_FAIL_HERE("sys.clients, conn %lu: routes [%s] subscriptions "  \
                         "[%s], expected [%s] and [%s]", (unsigned long)(id), \
                         ph__r, ph__s, (want_routes), (want_subs));           \
            return;                                                           \
        }                                                                     \
    } while (0)

/* table_limits: max_routes_per_client = 3, max_subscriptions_per_client = 3.
 * A fourth sys.register / sys.subscribe gets ERROR BUSY naming the limit;
 * repeating one held changes nothing and is no error; giving one up makes
 * room; the limits are per connection. Then a client pipelines 1000 of
 * each past the limits: every one is refused, its tables stay at 3, it
 * stays connected, and the pinger does not notice. */
static void case_table_limits(void)
{
    enum { FLOOD = 1000, BATCH = 100 };
    static pinger pg;
    const char *rneedle = "max_routes_per_client (3)";
    const char *sneedle = "max_subscriptions_per_client (3)";
    ht_conn *a, *b2, *p;
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1, s2;
    ph_buf buf = {0};
    window win;
    char *s;
    int i, k;

    SETUP("[limits]\nmax_routes_per_client = 3\n"
          "max_subscriptions_per_client = 3\n", d, ctl, &pg);
    CHECK_CLIENT(a, d->pipe);
    CHECK_CLIENT(b2, d->pipe);
    CHECK_CLIENT(p, d->pipe);
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));

    CHECK_OK(a, ht_register(a, "tl.r1", "serving", 0));
    CHECK_OK(a, ht_register(a, "tl.r2", "serving", 0));
    CHECK_OK(a, ht_register(a, "tl.r3.*", "serving", 0));
    CHECK_OK(a, ht_ctl_err(a, "sys.register", "tl.r4", PH_EBUSY, rneedle));
    CHECK_OK(a, ht_register(a, "tl.r1", "serving", 0)); /* held: no error, no change */
    CHECK_OK(a, ht_ctl_ok(a, "sys.unregister", "tl.r2"));
    CHECK_OK(a, ht_register(a, "tl.r4", "serving", 0));
    CHECK_OK(a, ht_ctl_err(a, "sys.register", "tl.r5", PH_EBUSY, rneedle));
    CHECK_OK(b2, ht_register(b2, "tl.b1", "serving", 0));
    CHECK_OK(b2, ht_register(b2, "tl.b2", "serving", 0));
    CHECK_OK(b2, ht_register(b2, "tl.b3", "serving", 0));
    CHECK_OK(b2, ht_ctl_err(b2, "sys.register", "tl.b4", PH_EBUSY, rneedle));
    ht_say(
        "routes: a 4th sys.register got ERROR BUSY naming %s; a repeat was "
        "no error; an unregister made room; another connection has its own 3",
        rneedle);

    CHECK_OK(a, ht_ctl_ok(a, "sys.subscribe", "tl.t1"));
    CHECK_OK(a, ht_ctl_ok(a, "sys.subscribe", "tl.t2"));
    CHECK_OK(a, ht_ctl_ok(a, "sys.subscribe", "tl.*"));
    CHECK_OK(a, ht_ctl_err(a, "sys.subscribe", "tl.t4", PH_EBUSY, sneedle));
    CHECK_OK(a, ht_ctl_ok(a, "sys.subscribe", "tl.t1")); /* held */
    CHECK_OK(a, ht_ctl_ok(a, "sys.unsubscribe", "tl.t2"));
    CHECK_OK(a, ht_ctl_ok(a, "sys.subscribe", "tl.t4"));
    CHECK_OK(a, ht_ctl_err(a, "sys.subscribe", "*", PH_EBUSY, sneedle));
    CHECK_OK(b2, ht_ctl_ok(b2, "sys.subscribe", "tl.b.1"));
    ht_say("subscriptions: the same with %s", sneedle);
    CHECK_LISTS(ctl, a->id, "tl.r1 tl.r3.* tl.r4", "tl.t1 tl.* tl.t4");
    CHECK_LISTS(ctl, b2->id, "tl.b1 tl.b2 tl.b3", "tl.b.1");
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_L_ROUTES, 3);
    CHECK_GREW(s0, s1, HT_ST_L_SUBS, 2);

    /* What a held route and a subscription still do. */
    CHECK_OK(p, ht_send_request(p, "tl.r4", 9, "q", 1));
    {
        ph_frame f;
        char dsc[400];
        CHECK_OK(a, ht_read(a, &f, HT_IO_TIMEOUT_MS) != PH_OK);
        ht_describe(&f, dsc, sizeof dsc);
        if (f.kind != PH_REQUEST || !ht_route_is(&f, "tl.r4")) {
            PH_FAIL_HERE("provider: expected the REQUEST 'tl.r4', got %s", dsc);
            return;
        }
        CHECK_OK(a, ht_send_frame(a, PH_REPLY, NULL, f.id, 0, "r", 1));
        CHECK_OK(p, ht_expect_reply(p, 9, "r", 1));
    }
    CHECK_OK(p, ht_send_request(p, "tl.r5", 10, "q", 1));
    CHECK_OK(p, ht_expect_error(p, 10, PH_ENOROUTE, NULL));

    /* The flood. */
    CHECK_BASELINE(&pg);
    /* At least FLOOD of each, and on until the pinger has had its round
     * trips, in attack windows and quiet ones. */
    window_begin(&win, &pg);
    for (k = 0; ht_ms_now() - win.t0 < MAX_ATTACK_MS;) {
        buf.len = 0;
        for (i = k; i < k + BATCH; i++) {
            char name[32];
            snprintf(name, sizeof name, "tl.flood%d", i);
            CHECK(ht_append_frame(&buf, PH_REQUEST, "sys.register", 2 * i + 1,
                                  0, name, strlen(name)) == 0);
            CHECK(ht_append_frame(&buf, PH_REQUEST, "sys.subscribe", 2 * i + 2,
                                  0, name, strlen(name)) == 0);
        }
        CHECK_OK(a, ht_write(a, buf.data, buf.len));
        for (i = k; i < k + BATCH; i++) {
            CHECK_OK(a, ht_expect_error(a, 2 * i + 1, PH_EBUSY, rneedle));
            CHECK_OK(a, ht_expect_error(a, 2 * i + 2, PH_EBUSY, sneedle));
        }
        k += BATCH;
        if (window_tick(&win) && k >= FLOOD)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ph_buf_free(&buf);
    ht_say(
        "%d sys.register and %d sys.subscribe past the limits: each got ERROR "
        "BUSY",
        k, k);
    CHECK_OK(a, ht_barrier(a));
    CHECK_LISTS(ctl, a->id, "tl.r1 tl.r3.* tl.r4", "tl.t1 tl.* tl.t4");
    s = ht_call_text(ctl, "sys.routes", NULL);
    CHECK_OK(ctl, s == NULL);
    if (strstr(s, "tl.flood")) {
        PH_FAIL_HERE("sys.routes lists a refused route: %.300s", s);
        free(s);
        return;
    }
    free(s);
    CHECK_PINGER(&pg, "requests past the table limits");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, ht_get_stats(ctl, &s2));
    CHECK_GREW(s1, s2, HT_ST_L_ROUTES, k);
    CHECK_GREW(s1, s2, HT_ST_L_SUBS, k);
    ht_conn_close(a);
    ht_conn_close(b2);
    ht_conn_close(p);
    TEARDOWN(d, ctl, &pg);
}

/* The connect-and-close load of connect_close_1000. */
typedef struct churner {
    const char *pipe;
    int count, done, failed;
    volatile LONG *enough; /* past count, go on until this is set */
    DWORD err;
} churner;

static DWORD WINAPI churner_main(void *arg)
{
    churner *k = arg;

    for (k->done = 0; k->done < k->count || (!*k->enough && k->done < 20000);
         k->done++) {
        DWORD e = 0;
        HANDLE h = ht_open_pipe(k->pipe, HT_CONNECT_TIMEOUT_MS, &e, NULL);
        if (h == INVALID_HANDLE_VALUE) {
            k->failed = 1;
            k->err = e;
            break;
        }
        CloseHandle(h);
    }
    return 0;
}

/* connect_close_1000: clients that connect and close without a byte.
 * First 1000 of them at full speed from two threads (and on until the
 * pinger has had its round trips): the server answers throughout and
 * after, a new client is served, and connections_current is back to its
 * base within 5 s of the last close (half the default first-frame
 * deadline: the server must see the closes, not time them out); no limit
 * fired. The pinger's round trips during that flood are reported, not
 * judged: at full speed it saturates a 2-core Wine box (the reference
 * daemon slows down too). Then the same churn paced and interleaved (see
 * window_tick), with the pinger judged. */
static void case_connect_close_1000(void)
{
    enum { THREADS = 2, PER = 500, UNIT = 25 };
    static pinger pg;
    static churner ks[THREADS];
    static volatile LONG enough;
    HANDLE th[THREADS];
    ht_daemon *d;
    ht_conn *ctl, *c;
    ht_stats s0, s1;
    window win;
    uint64_t t0, ms, waited;
    int i, total = 0, paced = 0;

    SETUP(NULL, d, ctl, &pg);
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_EQ(s0.v[HT_ST_CUR], 2);
    CHECK_BASELINE(&pg);

    pinger_phase(&pg, PH_DURING);
    t0 = ht_ms_now();
    for (i = 0; i < THREADS; i++) {
        ks[i].pipe = d->pipe;
        ks[i].count = PER;
        ks[i].enough = &enough;
        th[i] = CreateThread(NULL, 0, churner_main, &ks[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    /* 1000 at least, and on until the pinger has had its round trips. */
    pinger_wait(&pg, PH_DURING, RTT_MIN_SAMPLES, 60000);
    InterlockedExchange(&enough, 1);
    if (WaitForMultipleObjects(THREADS, th, TRUE, 120000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("1000 connects and closes took over 120 s");
        return;
    }
    ms = ht_ms_now() - t0;
    pinger_phase(&pg, PH_AFTER);
    for (i = 0; i < THREADS; i++) {
        CloseHandle(th[i]);
        total += ks[i].done;
        if (ks[i].failed) {
            PH_FAIL_HERE("churner %d: connect %d failed with error %lu", i,
                         ks[i].done + 1, (unsigned long)ks[i].err);
            return;
        }
    }
    ht_say("%d connects and closes without a byte in %llu ms, from %d threads",
           total, (unsigned long long)ms, THREADS);
    CHECK(total >= THREADS * PER);
    CHECK_OK(ctl, wait_current(ctl, 2, 5000, &waited));
    ht_say("connections_current back to 2 %llu ms after the last close",
           (unsigned long long)waited);
    CHECK_CLIENT(c, d->pipe);
    CHECK_OK(c, ht_barrier(c));
    CHECK_PINGER_X(&pg, "connects and closes at full speed", 0);

    /* Paced, interleaved, judged. */
    pinger_reset(&pg);
    CHECK_BASELINE(&pg);
    window_begin(&win, &pg);
    while (ht_ms_now() - win.t0 < MAX_ATTACK_MS) {
        for (i = 0; i < UNIT; i++) {
            DWORD e = 0;
            HANDLE h = ht_open_pipe(d->pipe, HT_CONNECT_TIMEOUT_MS, &e, NULL);
            if (h == INVALID_HANDLE_VALUE) {
                PH_FAIL_HERE("paced churn: connect %d failed with error %lu",
                             paced + 1, (unsigned long)e);
                return;
            }
            CloseHandle(h);
            paced++;
        }
        if (window_tick(&win) && paced >= THREADS * PER)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ht_say("%d more connects and closes, paced, in %llu ms (%d quiet windows "
           "between)",
           paced, (unsigned long long)(ht_ms_now() - win.t0),
           win.quiet_windows);
    CHECK(paced >= THREADS * PER);
    CHECK_OK(ctl, wait_current(ctl, 3, 5000, &waited));
    CHECK_OK(c, ht_barrier(c));
    CHECK_PINGER(&pg, "connects and closes, paced");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    ht_say("connections_total grew by %llu",
           (unsigned long long)(s1.v[HT_ST_TOTAL] - s0.v[HT_ST_TOTAL]));
    CHECK_GREW(s0, s1, HT_ST_L_CONN, 0);
    CHECK_GREW(s0, s1, HT_ST_L_USER, 0);
    CHECK_GREW(s0, s1, HT_ST_L_FIRST, 0);
    ht_conn_close(c);
    TEARDOWN(d, ctl, &pg);
}

/* One client of the burst. */
typedef struct burster {
    const char *pipe;
    HANDLE go;
    uint64_t t_go_ms, served_ms;
    uint32_t id;
    int ok;
    char why[600];
} burster;

static DWORD WINAPI burster_main(void *arg)
{
    burster *b = arg;
    ht_conn *c;

    WaitForSingleObject(b->go, INFINITE);
    c = ht_conn_open(b->pipe);
    if (!c) {
        snprintf(b->why, sizeof b->why, "could not connect");
        return 0;
    }
    if (ht_send_request(c, "sys.ping", 1, NULL, 0) != 0 ||
        ht_expect_reply(c, 1, NULL, 0) != 0 || ht_hello(c) != 0) {
        snprintf(b->why, sizeof b->why, "%s", c->why);
        ht_conn_close(c);
        return 0;
    }
    b->served_ms = ht_ms_now() - b->t_go_ms;
    b->id = c->id;
    b->ok = 1;
    ht_conn_close(c);
    return 0;
}

/* burst: 10 x pending_instances clients (40) connect at the same moment
 * (threads released together): every one is served (sys.ping, then
 * sys.hello with its own conn_id); no one gets BUSY. */
static void case_burst(void)
{
    enum { MAXN = 64 };
    static burster bs[MAXN];
    HANDLE th[MAXN], go;
    ht_daemon *d;
    ht_conn *ctl;
    ht_stats s0, s1;
    uint64_t t0, worst = 0, waited;
    int i, j, n;

    CHECK_DAEMON_INI("[server]\npending_instances = 4\n", d);
    CHECK_CLIENT(ctl, d->pipe);
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));
    CHECK_EQ(s0.v[HT_ST_PENDING], 4);
    n = (int)(10 * s0.v[HT_ST_PENDING]);
    go = CreateEventA(NULL, TRUE, FALSE, NULL);
    CHECK(go != NULL);
    for (i = 0; i < n; i++) {
        memset(&bs[i], 0, sizeof bs[i]);
        bs[i].pipe = d->pipe;
        bs[i].go = go;
        th[i] = CreateThread(NULL, 0, burster_main, &bs[i], 0, NULL);
        CHECK(th[i] != NULL);
    }
    Sleep(200);
    t0 = ht_ms_now();
    for (i = 0; i < n; i++)
        bs[i].t_go_ms = t0;
    SetEvent(go);
    if (WaitForMultipleObjects((DWORD)n, th, TRUE, 60000) != WAIT_OBJECT_0) {
        PH_FAIL_HERE("the burst was not over in 60 s");
        return;
    }
    for (i = 0; i < n; i++) {
        CloseHandle(th[i]);
        if (!bs[i].ok) {
            PH_FAIL_HERE("burst client %d of %d: %s", i, n, bs[i].why);
            return;
        }
        for (j = 0; j < i; j++)
            CHECK(bs[j].id != bs[i].id);
        if (bs[i].served_ms > worst)
            worst = bs[i].served_ms;
    }
    CloseHandle(go);
    ht_say("all %d clients of the burst (10 x pending_instances %llu) were "
           "served, the last %llu ms after the start",
           n, (unsigned long long)s0.v[HT_ST_PENDING],
           (unsigned long long)worst);
    CHECK_OK(ctl, wait_current(ctl, 1, 5000, &waited));
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK(s1.v[HT_ST_TOTAL] - s0.v[HT_ST_TOTAL] >= (uint64_t)n);
    CHECK_GREW(s0, s1, HT_ST_L_CONN, 0);
    CHECK_GREW(s0, s1, HT_ST_L_USER, 0);
    ht_conn_close(ctl);
    CHECK_ALIVE(d);
}

static char g_access_ini[2048];

/* access: [route.NAME] rules. The test client is neither SYSTEM nor
 * NT AUTHORITY\SYSTEM: a call, provide, subscribe or publish rule naming
 * only those refuses it with ERROR FORBIDDEN naming the rule, counted in
 * access_denied, and nothing reaches anyone; a rule naming its own SID lets
 * it through; a prefix rule covers the routes under it; a '*' subscriber
 * does not get events of a topic whose subscribe rule refuses it. Then 1000
 * pipelined refused calls: each FORBIDDEN, the caller stays connected, the
 * pinger does not notice. */
static void access_rules(void)
{
    enum { FLOOD = 1000, BATCH = 100 };
    static pinger pg;
    char sid[200];
    const char *ini;
    ht_daemon *d;
    ht_conn *ctl, *c, *p, *sa, *sw;
    ht_stats s0, s1, s2;
    ph_buf buf = {0};
    window win;
    int i, k, denied = 0;

    CHECK(ht_own_sid(sid, sizeof sid) == 0);
    snprintf(g_access_ini, sizeof g_access_ini,
             "[route.acc.secret]\ncall = SY\n\n"
             "[route.acc.named]\ncall = NT AUTHORITY\\SYSTEM\n\n"
             "[route.acc.mine]\ncall = SY, %s\n\n"
             "[route.acc.wild.*]\ncall = SY\n\n"
             "[route.acc.prov]\nprovide = SY\n\n"
             "[route.acc.topic]\nsubscribe = SY\n\n"
             "[route.acc.pub]\npublish = SY\n", sid);
    ini = g_access_ini;
    SETUP(ini, d, ctl, &pg);
    CHECK_CLIENT(c, d->pipe);
    CHECK_CLIENT(p, d->pipe);
    CHECK_CLIENT(sa, d->pipe);
    CHECK_CLIENT(sw, d->pipe);
    ht_say("the test runs as %s", sid);
    /* Providers for the call rules (providing them is not restricted). */
    CHECK_OK(p, ht_register(p, "acc.secret", "serving", 0));
    CHECK_OK(p, ht_register(p, "acc.named", "serving", 0));
    CHECK_OK(p, ht_register(p, "acc.mine", "serving", 0));
    CHECK_OK(p, ht_register(p, "acc.wild.*", "serving", 0));
    CHECK_OK(ctl, ht_get_stats(ctl, &s0));

    CHECK_OK(c, ht_ctl_err(c, "acc.secret", "x", PH_EFORBIDDEN,
                           "[route.acc.secret] call"));
    CHECK_OK(c, ht_ctl_err(c, "acc.named", "x", PH_EFORBIDDEN,
                           "[route.acc.named] call"));
    CHECK_OK(c, ht_ctl_err(c, "acc.wild.deep.er", "x", PH_EFORBIDDEN,
                           "[route.acc.wild.*] call"));
    denied += 3;
    CHECK_OK(p, ht_barrier(p)); /* none of them reached the provider */
    CHECK_OK(c, ht_send_request(c, "acc.mine", 5, "m", 1));
    CHECK_OK(p, ht_serve_one(p, "acc.mine", "m", c->id, "mine"));
    CHECK_OK(c, ht_expect_reply(c, 5, "mine", 4));
    ht_say("call: SY and NT AUTHORITY\\SYSTEM refuse the test's SID, a prefix "
           "rule covers acc.wild.deep.er, a rule listing the SID lets it call");

    CHECK_OK(c, ht_ctl_err(c, "sys.register", "acc.prov", PH_EFORBIDDEN,
                           "[route.acc.prov] provide"));
    denied++;
    CHECK_OK(c, ht_ctl_err(c, "acc.prov", "x", PH_ENOROUTE, NULL));
    ht_say("provide: sys.register refused naming the rule; nobody serves it");

    CHECK_OK(sa, ht_ctl_err(sa, "sys.subscribe", "acc.topic", PH_EFORBIDDEN,
                            "[route.acc.topic] subscribe"));
    denied++;
    CHECK_OK(sa, ht_ctl_ok(sa, "sys.subscribe", "acc.pub"));
    CHECK_OK(sw, ht_ctl_ok(sw, "sys.subscribe", "*"));
    CHECK_OK(c, ht_send_frame(c, PH_EVENT, "acc.topic", 0, 0, "t", 1));
    CHECK_OK(c, ht_send_frame(c, PH_EVENT, "acc.other", 0, 0, "o", 1));
    CHECK_OK(c, ht_barrier(c));
    CHECK_OK(sw, ht_expect_event_s(sw, "acc.other", "o"));
    CHECK_OK(sw, ht_barrier(sw)); /* not acc.topic, though '*' matches it */
    ht_say(
        "subscribe: refused naming the rule; a '*' subscriber gets acc.other "
        "and not acc.topic");

    CHECK_OK(c, ht_send_frame(c, PH_EVENT, "acc.pub", 0, 0, "p", 1));
    CHECK_OK(c,
             ht_expect_error(c, 0, PH_EFORBIDDEN, "[route.acc.pub] publish"));
    denied++;
    CHECK_OK(c, ht_barrier(c));
    CHECK_OK(sa, ht_barrier(sa)); /* its acc.pub subscription heard nothing */
    CHECK_OK(sw, ht_barrier(sw));
    ht_say("publish: refused naming the rule; no subscriber got it");
    CHECK_OK(ctl, ht_get_stats(ctl, &s1));
    CHECK_GREW(s0, s1, HT_ST_DENIED, denied);

    CHECK_BASELINE(&pg);
    window_begin(&win, &pg);
    for (k = 0; ht_ms_now() - win.t0 < MAX_ATTACK_MS;) {
        buf.len = 0;
        for (i = k; i < k + BATCH; i++)
            CHECK(ht_append_frame(&buf, PH_REQUEST, "acc.secret",
                                  (uint32_t)i + 1, 0, "x", 1) == 0);
        CHECK_OK(c, ht_write(c, buf.data, buf.len));
        for (i = k; i < k + BATCH; i++)
            CHECK_OK(c, ht_expect_error(c, (uint32_t)i + 1, PH_EFORBIDDEN,
                                        "[route.acc.secret] call"));
        k += BATCH;
        if (window_tick(&win) && k >= FLOOD)
            break;
    }
    pinger_phase(&pg, PH_AFTER);
    ph_buf_free(&buf);
    CHECK_OK(c, ht_barrier(c));
    CHECK_OK(p, ht_barrier(p));
    ht_say("%d pipelined refused calls: each ERROR FORBIDDEN, the caller still "
           "connected, nothing reached the provider",
           k);
    CHECK_PINGER(&pg, "refused calls");
    CHECK_PINGER_STOPPED(&pg);
    CHECK_OK(ctl, ht_get_stats(ctl, &s2));
    CHECK_GREW(s1, s2, HT_ST_DENIED, k);
    ht_conn_close(c);
    ht_conn_close(p);
    ht_conn_close(sa);
    ht_conn_close(sw);
    TEARDOWN(d, ctl, &pg);
}

/* min_integrity = high refuses a client below high integrity. The test's
 * own integrity is read from sys.clients; when it is high or more (as
 * under Wine, which runs every process elevated) the refusal cannot be
 * shown here and this says SKIP; tests/unit/test_hub.c covers the logic. */
static void access_min_integrity(void)
{
    ht_daemon *d;
    ht_conn *c;
    char obj[4096], integ[64];

    CHECK_DAEMON_INI("[route.acc.high]\nmin_integrity = high\n\n"
                     "[route.acc.sys]\nmin_integrity = system\n", d);
    CHECK_CLIENT(c, d->pipe);
    CHECK_OK(c, clients_row(c, c->id, obj, sizeof obj));
    if (ht_json_str(obj, "integrity", integ, sizeof integ) != 0) {
        PH_FAIL_HERE("sys.clients has no integrity: %s", obj);
        return;
    }
    ht_say("sys.clients says this client's integrity is \"%s\"", integ);
    /* Whatever the client's level, system is above it (the test does not
     * run as SYSTEM). */
    if (strcmp(integ, "system") != 0) {
        CHECK_OK(c, ht_ctl_err(c, "acc.sys", "x", PH_EFORBIDDEN,
                               "[route.acc.sys] min_integrity"));
        ht_say("min_integrity = system refused a %s client, naming the rule",
               integ);
    }
    if (strcmp(integ, "high") == 0 || strcmp(integ, "system") == 0) {
        ht_conn_close(c);
        SKIP("min_integrity = high: this client runs at high integrity (Wine "
             "runs every process elevated), so a refused medium client cannot "
             "be shown here; tests/unit/test_hub.c covers the rule");
    }
    CHECK_OK(c, ht_ctl_err(c, "acc.high", "x", PH_EFORBIDDEN,
                           "[route.acc.high] min_integrity"));
    ht_say("min_integrity = high refused a %s client, naming the rule", integ);
    ht_conn_close(c);
    CHECK_ALIVE(d);
}

/* clients_view: sys.clients lists every connection of this test with the
 * right conn_id, pid, SID, executable, routes, subscriptions and monitor
 * flag, a plausible connected_ms and growing frame and byte counts; a
 * closed connection leaves the list. */
static void case_clients_view(void)
{
    ht_daemon *d;
    ht_conn *ctl, *a, *b2, *m;
    char obj[4096], sid[200], got_sid[200], exe[1024];
    uint64_t v, now, fin1 = 0, fin2 = 0, bin = 0;
    const char *want_exe = "test_limits.exe";
    size_t el = strlen(want_exe);
    int flag = -1, i;
    ht_conn *all[4];

    CHECK(ht_own_sid(sid, sizeof sid) == 0);
    CHECK_DAEMON_INI(NULL, d);
    CHECK_CLIENT(ctl, d->pipe);
    CHECK_CLIENT(a, d->pipe);
    CHECK_CLIENT(b2, d->pipe);
    CHECK_CLIENT(m, d->pipe);
    CHECK_OK(a, ht_register(a, "cv.a", "serving", 0));
    CHECK_OK(a, ht_register(a, "cv.b.*", "serving", 0));
    CHECK_OK(b2, ht_ctl_ok(b2, "sys.subscribe", "cv.t"));
    CHECK_OK(b2, ht_ctl_ok(b2, "sys.subscribe", "cv.*"));
    CHECK_OK(m, ht_ctl_ok(m, "sys.monitor", "cv.*"));

    all[0] = ctl;
    all[1] = a;
    all[2] = b2;
    all[3] = m;
    now = ht_unix_ms();
    for (i = 0; i < 4; i++) {
        CHECK_OK(ctl, clients_row(ctl, all[i]->id, obj, sizeof obj));
        if (i == 0)
            ht_say("sys.clients row of the control connection: %s", obj);
        CHECK(ht_json_u64(obj, "pid", &v) == 0);
        CHECK_EQ(v, GetCurrentProcessId());
        if (ht_json_str(obj, "sid", got_sid, sizeof got_sid) != 0 ||
            strcmp(got_sid, sid) != 0) {
            PH_FAIL_HERE("conn %lu: sid should be %s: %s",
                         (unsigned long)all[i]->id, sid, obj);
            return;
        }
        if (ht_json_str(obj, "exe", exe, sizeof exe) != 0 || strlen(exe) < el ||
            _stricmp(exe + strlen(exe) - el, want_exe) != 0) {
            PH_FAIL_HERE("conn %lu: exe should end with %s: %s",
                         (unsigned long)all[i]->id, want_exe, obj);
            return;
        }
        CHECK(ht_json_u64(obj, "connected_ms", &v) == 0);
        if (v + 60000 < now || v > now + 60000) {
            PH_FAIL_HERE("conn %lu: connected_ms %llu, now is %llu (Unix ms)",
                         (unsigned long)all[i]->id, (unsigned long long)v,
                         (unsigned long long)now);
            return;
        }
        CHECK(ht_json_u64(obj, "frames_in", &v) == 0);
        CHECK(v >= 1); /* sys.hello at least */
        CHECK(ht_json_u64(obj, "bytes_in", &v) == 0);
        CHECK(v >= 25);
        CHECK(ht_json_u64(obj, "queued", &v) == 0);
        CHECK(ht_json_u64(obj, "inflight", &v) == 0);
        CHECK_EQ(v, 0);
        CHECK(ht_json_bool(obj, "monitor", &flag) == 0);
        CHECK_EQ(flag, all[i] == m);
        CHECK(ht_json_bool(obj, "admin", &flag) == 0);
        {
            char integ[64];
            CHECK(ht_json_str(obj, "integrity", integ, sizeof integ) == 0);
            CHECK(ht_json_str(obj, "account", exe, sizeof exe) == 0);
        }
    }
    CHECK_LISTS(ctl, a->id, "cv.a cv.b.*", "");
    CHECK_LISTS(ctl, b2->id, "", "cv.t cv.*");
    CHECK_LISTS(ctl, m->id, "", "");
    CHECK_LISTS(ctl, ctl->id, "", "");
    ht_say("all 4 connections listed with pid %lu, sid %s, exe ...\\%s, their "
           "routes, subscriptions and monitor flag",
           (unsigned long)GetCurrentProcessId(), sid, want_exe);

    /* Counts grow with traffic. */
    CHECK_OK(ctl, clients_row(ctl, b2->id, obj, sizeof obj));
    CHECK(ht_json_u64(obj, "frames_in", &fin1) == 0);
    for (i = 0; i < 10; i++)
        CHECK_OK(b2, ht_barrier(b2));
    CHECK_OK(ctl, clients_row(ctl, b2->id, obj, sizeof obj));
    CHECK(ht_json_u64(obj, "frames_in", &fin2) == 0);
    CHECK(ht_json_u64(obj, "bytes_in", &bin) == 0);
    CHECK_EQ(fin2 - fin1, 10);
    CHECK(ht_json_u64(obj, "frames_out", &v) == 0);
    CHECK(v >= 10);

    /* A closed connection leaves the list. */
    {
        uint32_t gone = a->id;
        uint64_t t0 = ht_ms_now();
        ht_conn_close(a);
        for (;;) {
            char *s = ht_call_text(ctl, "sys.clients", NULL);
            const char *p;
            int found = 0;
            CHECK_OK(ctl, s == NULL);
            for (p = s; ht_json_next_object(&p, obj, sizeof obj) == 0;)
                if (ht_json_u64(obj, "conn_id", &v) == 0 && v == gone)
                    found = 1;
            free(s);
            if (!found)
                break;
            if (ht_ms_now() - t0 > 5000) {
                PH_FAIL_HERE("conn %lu closed 5 s ago and is still listed",
                             (unsigned long)gone);
                return;
            }
            Sleep(50);
        }
        ht_say("a closed connection left the list within %llu ms",
               (unsigned long long)(ht_ms_now() - t0));
    }
    ht_conn_close(b2);
    ht_conn_close(m);
    ht_conn_close(ctl);
    CHECK_ALIVE(d);
}

/* ---- traffic: the clients of tests/wine/stop_busy.sh ---------------------- */

#define TRAFFIC_PER_THREAD 50

typedef struct tclient {
    ht_conn *c;
    uint32_t seq;
    int ended;          /* the pipe broke */
    int saw_shutdown;   /* sys.shutdown came before the break */
    int write_closed;   /* a write found the pipe closed */
} tclient;

typedef struct tthread {
    tclient *cl;
    int n;
    volatile LONG rounds;
    volatile LONG replies;
    int failed;
    char why[700];
} tthread;

static volatile LONG g_traffic_stop;

/* After the shutdown event (or without it): only the close may come. */
static int traffic_end(tthread *t, tclient *k)
{
    ph_frame f;
    char d[400];
    ph_err err = ht_read(k->c, &f, HT_IO_TIMEOUT_MS);

    if (err == PH_ECLOSED && ph_decoder_idle(&k->c->dec)) {
        k->ended = 1;
        return 0;
    }
    if (err == PH_OK)
        ht_describe(&f, d, sizeof d);
    snprintf(t->why, sizeof t->why, "conn %lu after sys.shutdown: expected "
             "the close, got %s", (unsigned long)k->c->id,
             err == PH_OK ? d : k->c->why);
    t->failed = 1;
    return -1;
}

static DWORD WINAPI traffic_main_thread(void *arg)
{
    tthread *t = arg;
    uint8_t pl[48];
    int i, open = t->n;

    while (open > 0 && !t->failed && !g_traffic_stop) {
        for (i = 0; i < t->n; i++) {
            tclient *k = &t->cl[i];
            if (k->ended || k->write_closed)
                continue;
            k->seq++;
            fill(pl, sizeof pl, k->c->id, k->seq);
            if (ht_send_request(k->c, "sys.echo", k->seq, pl, sizeof pl) != 0)
                k->write_closed = 1;
        }
        for (i = 0; i < t->n && !t->failed; i++) {
            tclient *k = &t->cl[i];
            ph_frame f;
            char d[400];
            ph_err err;

            if (k->ended)
                continue;
            err = ht_read(k->c, &f, HT_IO_TIMEOUT_MS);
            if (err == PH_ECLOSED && ph_decoder_idle(&k->c->dec)) {
                k->ended = 1;
                open--;
                continue;
            }
            if (err != PH_OK) {
                snprintf(t->why, sizeof t->why, "conn %lu: %s",
                         (unsigned long)k->c->id, k->c->why);
                t->failed = 1;
                break;
            }
            ht_describe(&f, d, sizeof d);
            if (f.kind == PH_EVENT && ht_route_is(&f, "sys.shutdown")) {
                if (!ht_payload_is(&f, "server stopping", 15)) {
                    snprintf(t->why, sizeof t->why, "conn %lu: %s",
                             (unsigned long)k->c->id, d);
                    t->failed = 1;
                    break;
                }
                k->saw_shutdown = 1;
                if (traffic_end(t, k) != 0)
                    break;
                open--;
                continue;
            }
            fill(pl, sizeof pl, k->c->id, k->seq);
            if (k->write_closed || f.kind != PH_REPLY || f.id != k->seq ||
                !ht_payload_is(&f, pl, sizeof pl)) {
                snprintf(t->why, sizeof t->why, "conn %lu: expected the echo "
                         "of request %lu%s, got %s", (unsigned long)k->c->id,
                         (unsigned long)k->seq,
                         k->write_closed ? " (whose write failed)" : "", d);
                t->failed = 1;
                break;
            }
            InterlockedIncrement(&t->replies);
        }
        InterlockedIncrement(&t->rounds);
    }
    return 0;
}

/* traffic N PIPE: N clients in steady traffic (one sys.echo in flight
 * each). Prints "ready" once every client has had a round trip, then goes
 * on until every client's pipe is closed by the server. Exit 0 when every
 * client saw sys.shutdown then the close, or a clean close (at a frame
 * boundary), and every reply before it was right; 1 otherwise. */
static int traffic_main(int n, const char *name)
{
    char pipe[PH_PIPE_PATH_MAX + 1];
    tclient *cl;
    tthread *ts;
    HANDLE *th;
    int nt = (n + TRAFFIC_PER_THREAD - 1) / TRAFFIC_PER_THREAD, i, failed = 0;
    int shut = 0, closed = 0;
    LONG replies = 0;
    uint64_t t0;

    if (n < 1 || n > 1000 || ph_pipe_path(name, pipe, sizeof pipe) != PH_OK) {
        fprintf(stderr, "traffic: bad arguments\n");
        return 2;
    }
    cl = calloc((size_t)n, sizeof *cl);
    ts = calloc((size_t)nt, sizeof *ts);
    th = calloc((size_t)nt, sizeof *th);
    if (!cl || !ts || !th)
        return 2;
    for (i = 0; i < n; i++) {
        cl[i].c = ht_conn_open(pipe);
        if (!cl[i].c || ht_hello(cl[i].c) != 0) {
            fprintf(stderr, "traffic: client %d could not connect: %s\n", i,
                    cl[i].c ? cl[i].c->why : "no pipe");
            return 1;
        }
    }
    for (i = 0; i < nt; i++) {
        ts[i].cl = cl + i * TRAFFIC_PER_THREAD;
        ts[i].n = i == nt - 1 ? n - i * TRAFFIC_PER_THREAD : TRAFFIC_PER_THREAD;
        th[i] = CreateThread(NULL, 0, traffic_main_thread, &ts[i], 0, NULL);
        if (!th[i])
            return 2;
    }
    for (t0 = ht_ms_now();;) {
        int ready = 1;
        for (i = 0; i < nt; i++)
            if (ts[i].rounds < 2 || ts[i].failed)
                ready = 0;
        if (ready)
            break;
        if (ht_ms_now() - t0 > 60000) {
            fprintf(stderr, "traffic: not every client had a round trip in "
                    "60 s\n");
            for (i = 0; i < nt; i++)
                if (ts[i].failed)
                    fprintf(stderr, "traffic: %s\n", ts[i].why);
            return 1;
        }
        Sleep(20);
    }
    printf("ready\n");
    fflush(stdout);
    /* Until the server stops; the script bounds how long that may take. */
    if (WaitForMultipleObjects((DWORD)nt, th, TRUE, 170000) != WAIT_OBJECT_0) {
        InterlockedExchange(&g_traffic_stop, 1);
        fprintf(stderr, "traffic: clients still open after 170 s\n");
        return 1;
    }
    for (i = 0; i < nt; i++) {
        replies += ts[i].replies;
        if (ts[i].failed) {
            fprintf(stderr, "traffic: %s\n", ts[i].why);
            failed = 1;
        }
    }
    for (i = 0; i < n; i++) {
        if (cl[i].saw_shutdown)
            shut++;
        else if (cl[i].ended)
            closed++;
    }
    printf("%d clients: %d saw sys.shutdown then the close, %d a clean close "
           "without it; %ld replies checked\n", n, shut, closed, (long)replies);
    fflush(stdout);
    if (shut + closed != n)
        failed = 1;
    return failed;
}

/* ---- main ----------------------------------------------------------------- */

static const ht_case cases[] = {
    HT_CASE("silent", case_silent),
    HT_CASE("slowloris", case_slowloris),
    HT_CASE("stalled_reader", case_stalled_reader),
    HT_CASE("queued_cap", case_queued_cap),
    HT_CASE("per_user", case_per_user),
    HT_CASE("table_limits", case_table_limits),
    HT_CASE("connect_close_1000", case_connect_close_1000),
    HT_CASE("burst", case_burst),
    /* Two tests, so the skipped side shows as skipped. */
    HT_CASE("access", access_rules),
    HT_CASE("access", access_min_integrity),
    HT_CASE("clients_view", case_clients_view),
};

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "traffic") == 0)
        return traffic_main(atoi(argv[2]), argv[3]);
    return ht_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
