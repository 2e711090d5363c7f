/* Activation (docs/PROTOCOL.md, "Activation") against a real pipehubd and
 * the real SCM: a call to a route under a [route.NAME] with
 * activate_service, when nobody serves it, starts that Windows service;
 * the calls are held until the service registers and then forwarded in
 * order; a service that stops first, or misses activate_timeout_ms, fails
 * them with ERROR UNAVAILABLE; a caller the section's call list refuses
 * starts nothing; sys.routes shows the route as activatable.
 *
 *   test_activation CASE PATH_TO_PIPEHUBD_EXE PATH_TO_SERVICE_PROVIDER_EXE
 *
 * The services are examples/service_provider.c, installed by each case as
 * demand-start services named phact-CASE[-2]-PID whose binary path points
 * them at the case's pipe, and stopped and deleted when the case ends,
 * whatever its checks said. Under Wine, services start only with a
 * persistent wineserver whose own processes are already up
 * (scripts/common.sh, ph_wineserver_start). A start through the SCM took
 * about 50 ms on an idle machine here; every wait allows for a busy one. */
#include <windows.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hubtest_client.h"

#define WAIT_MS      20000u /* connect, sys.* calls */
#define CALL_WAIT_MS 60000u /* a call that starts a service */
#define STOP_WAIT_MS 10000u /* a service told to stop */
#define ACT_WAIT_MS  20000u /* activate_timeout_ms where it is not tested */
#define HELD_CALLS   10
#define GREETING     "hello from service" /* the provider's default reply */

static char provider_exe[MAX_PATH + 1]; /* DOS path, for the SCM */
static char why[600];                   /* the last helper's failure */

/* Fail the case with why when expr (a helper below) is not 0. */
#define CHECK_DO(expr)                                                         \
    do {                                                                       \
        if ((expr) != 0) {                                                     \
            PH_FAIL_HERE("%s: %s", #expr, why);                                \
            return;                                                            \
        }                                                                      \
    } while (0)

static int failf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- services ---------------------------------------------------------- */

/* The services this case installed, removed by remove_installed(). */
static char installed[2][64];
static int ninstalled;

static void svc_name(char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "phact-%s%s-%lu", ht_case_name, suffix,
             (unsigned long)GetCurrentProcessId());
}

static const char *state_name(DWORD s)
{
    switch (s) {
    case SERVICE_STOPPED:
        return "STOPPED";
    case SERVICE_START_PENDING:
        return "START_PENDING";
    case SERVICE_STOP_PENDING:
        return "STOP_PENDING";
    case SERVICE_RUNNING:
        return "RUNNING";
    default:
        return "OTHER";
    }
}

/* name's status: 0, or -1 with why. */
static int svc_query(SC_HANDLE svc, const char *name,
                     SERVICE_STATUS_PROCESS *st)
{
    DWORD need;

    if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)st,
                              sizeof *st, &need))
        return failf("QueryServiceStatusEx(%s): error %lu", name,
                     GetLastError());
    return 0;
}

/* Stop name if it runs (waiting up to STOP_WAIT_MS) and delete it. A name
 * that is not installed is fine. 0, or -1 with why. */
static int svc_remove(const char *name)
{
    SC_HANDLE scm, svc;
    SERVICE_STATUS_PROCESS st;
    SERVICE_STATUS ignored;
    uint64_t deadline = ht_ms_now() + STOP_WAIT_MS;
    int rc = -1;

    if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_ALL_ACCESS)) == NULL)
        return failf("OpenSCManager: error %lu", GetLastError());
    svc = OpenServiceA(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (svc == NULL) {
        rc = GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST
                 ? 0
                 : failf("OpenService(%s): error %lu", name, GetLastError());
        CloseServiceHandle(scm);
        return rc;
    }
    ControlService(svc, SERVICE_CONTROL_STOP, &ignored);
    while (svc_query(svc, name, &st) == 0 &&
           st.dwCurrentState != SERVICE_STOPPED && ht_ms_left(deadline) > 0)
        Sleep(50);
    if (!DeleteService(svc) &&
        GetLastError() != ERROR_SERVICE_MARKED_FOR_DELETE)
        failf("DeleteService(%s): error %lu", name, GetLastError());
    else
        rc = 0;
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

/* Install name as a demand-start service running the provider on pipe
 * with args, replacing one a previous run may have left. 0, or -1. */
static int svc_install(const char *name, const char *pipe, const char *args)
{
    char cmd[MAX_PATH + 512];
    SC_HANDLE scm, svc;

    if (ninstalled == (int)(sizeof installed / sizeof installed[0]))
        return failf("too many services for one case");
    if (svc_remove(name) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "\"%s\" --pipe %s %s", provider_exe, pipe, args);
    if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_ALL_ACCESS)) == NULL)
        return failf("OpenSCManager: error %lu", GetLastError());
    svc =
        CreateServiceA(scm, name, name, SERVICE_ALL_ACCESS,
                       SERVICE_WIN32_OWN_PROCESS, SERVICE_DEMAND_START,
                       SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, NULL, NULL);
    if (svc == NULL) {
        failf("CreateService(%s): error %lu", name, GetLastError());
        CloseServiceHandle(scm);
        return -1;
    }
    snprintf(installed[ninstalled++], sizeof installed[0], "%s", name);
    ht_say("installed service %s: %s", name, cmd);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return 0;
}

/* name must be in state want (SERVICE_STOPPED, ...). 0, or -1 with why. */
static int svc_is(const char *name, DWORD want)
{
    SC_HANDLE scm, svc = NULL;
    SERVICE_STATUS_PROCESS st;
    int rc = -1;

    if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT)) == NULL)
        return failf("OpenSCManager: error %lu", GetLastError());
    if ((svc = OpenServiceA(scm, name, SERVICE_QUERY_STATUS)) == NULL)
        failf("OpenService(%s): error %lu", name, GetLastError());
    else if (svc_query(svc, name, &st) == 0) {
        if (st.dwCurrentState == want)
            rc = 0;
        else
            failf("service %s is %s (exit code %lu, service-specific %lu), "
                  "expected %s",
                  name, state_name(st.dwCurrentState),
                  (unsigned long)st.dwWin32ExitCode,
                  (unsigned long)st.dwServiceSpecificExitCode,
                  state_name(want));
    }
    if (svc)
        CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

static void remove_installed(void)
{
    while (ninstalled > 0)
        if (svc_remove(installed[--ninstalled]) != 0)
            PH_FAIL_HERE("cleaning up: %s", why);
}

/* ---- calls ------------------------------------------------------------- */

static const char *text_of(const ph_reply *r)
{
    return r->payload ? (const char *)r->payload : "";
}

/* r must be a REPLY of exactly text. */
static int is_reply(const ph_reply *r, const char *text)
{
    if (r->kind != PH_REPLY)
        return failf("ERROR %s '%s', expected REPLY '%s'",
                     ht_err_name(r->status), text_of(r), text);
    if (r->payload_len != strlen(text) || strcmp(text_of(r), text) != 0)
        return failf("REPLY '%s', expected '%s'", text_of(r), text);
    return 0;
}

/* r must be ERROR code whose message holds needle (NULL: any message). */
static int is_error(const ph_reply *r, uint32_t code, const char *needle)
{
    if (r->kind != PH_ERROR || r->status != code)
        return failf("%s %s '%s', expected ERROR %s",
                     r->kind == PH_REPLY ? "REPLY" : "ERROR",
                     r->kind == PH_REPLY ? "" : ht_err_name(r->status),
                     text_of(r), ht_err_name(code));
    if (needle != NULL && strstr(text_of(r), needle) == NULL)
        return failf("ERROR %s '%s' does not mention '%s'", ht_err_name(code),
                     text_of(r), needle);
    return 0;
}

/* 1 when msg, with every copy of skip (the service's name, which has
 * digits of its own) blanked out, has n as a number of its own. */
static int mentions_number(const char *msg, const char *skip, unsigned long n)
{
    char copy[512], *p, *end;
    size_t skip_len = strlen(skip);

    snprintf(copy, sizeof copy, "%s", msg);
    while ((p = strstr(copy, skip)) != NULL)
        memset(p, ' ', skip_len);
    for (p = copy; *p; p++) {
        if (*p < '0' || *p > '9' || (p > copy && p[-1] >= '0' && p[-1] <= '9'))
            continue;
        if (strtoul(p, &end, 10) == n)
            return 1;
    }
    return 0;
}

/* One blocking call through c: *r gets the answer, *ms the time it took. */
static int call(ph_client *c, const char *route, ph_reply *r, uint64_t *ms)
{
    uint64_t t0 = ht_ms_now();
    ph_err err = ph_client_call(c, route, "x", 1, CALL_WAIT_MS, r);

    *ms = ht_ms_now() - t0;
    if (err != PH_OK)
        return failf("call %s: %s after %llu ms", route, ph_strerror(err),
                     (unsigned long long)*ms);
    return 0;
}

/* Text of a built-in route's REPLY (sys.stats, sys.routes) through c, to
 * be freed. NULL with why. */
static char *sys_text(ph_client *c, const char *route)
{
    ph_reply r;
    ph_err err = ph_client_call(c, route, NULL, 0, WAIT_MS, &r);
    char *text;

    if (err != PH_OK) {
        failf("%s: %s", route, ph_strerror(err));
        return NULL;
    }
    if (r.kind != PH_REPLY || (text = _strdup(text_of(&r))) == NULL) {
        failf("%s: ERROR %s '%s'", route, ht_err_name(r.status), text_of(&r));
        ph_reply_free(&r);
        return NULL;
    }
    ph_reply_free(&r);
    return text;
}

/* The activation counters of sys.stats. */
typedef struct act_stats {
    uint64_t activations, failures, held;
} act_stats;

static int get_stats(ph_client *c, act_stats *st)
{
    char *json = sys_text(c, "sys.stats");
    int rc = 0;

    if (json == NULL)
        return -1;
    if (ht_json_u64(json, "activations", &st->activations) != 0 ||
        ht_json_u64(json, "activation_failures", &st->failures) != 0 ||
        ht_json_u64(json, "activation_held", &st->held) != 0)
        rc = failf("sys.stats lacks activations, activation_failures or "
                   "activation_held: %s",
                   json);
    free(json);
    return rc;
}

/* A counter of sys.stats must have grown by exactly want. */
#define CHECK_GROWTH(before, after, field, want)                               \
    do {                                                                       \
        if ((after).field - (before).field != (uint64_t)(want)) {              \
            PH_FAIL_HERE("sys.stats %s went from %llu to %llu, expected +%d",  \
                         #field, (unsigned long long)(before).field,           \
                         (unsigned long long)(after).field, (int)(want));      \
            return;                                                            \
        }                                                                      \
    } while (0)

/* The case's config: [route.act.*] activating service with timeout_ms and
 * the lines of extra. */
static void act_ini(char *out, size_t cap, const char *service,
                    unsigned timeout_ms, const char *extra)
{
    snprintf(out, cap,
             "[route.act.*]\nactivate_service = %s\n"
             "activate_timeout_ms = %u\n%s",
             service, timeout_ms, extra);
}

/* ---- cases ------------------------------------------------------------- */

/* The completions of the held calls, in the order they came. */
typedef struct held_calls {
    int n;                 /* completions so far */
    int order[HELD_CALLS]; /* slot of each completion */
    int bad;               /* completions that were not the reply */
    char first_bad[200];
} held_calls;

typedef struct held_slot {
    held_calls *all;
    int index;
} held_slot;

static void on_held_done(void *ctx, ph_err err, const ph_frame *f)
{
    held_slot *s = ctx;
    held_calls *h = s->all;
    static const char want[] = "from act2";

    if (h->n < HELD_CALLS)
        h->order[h->n] = s->index;
    h->n++;
    if (err == PH_OK && f->kind == PH_REPLY && f->payload_len == strlen(want) &&
        memcmp(f->payload, want, strlen(want)) == 0)
        return;
    if (h->bad++ == 0)
        snprintf(
            h->first_bad, sizeof h->first_bad, "call %d: %s, %s %s", s->index,
            ph_strerror(err), f == NULL ? "no frame" : ht_kind_name(f->kind),
            f == NULL || f->kind != PH_ERROR ? "" : ht_err_name(f->status));
}

/* A call starts the service, which registers 500 ms after RUNNING: the
 * call is held and then answered by it. Then ten calls at once to a second
 * route whose service waits 1500 ms: all held, all answered, in order. */
static void started_body(void)
{
    char name[64], name2[64], ini[512], more[256];
    held_slot slots[HELD_CALLS];
    held_calls h;
    act_stats s0, s1, s2;
    ph_client *c;
    ph_reply r;
    ht_daemon *d;
    uint64_t ms, t0;
    int i;

    memset(&h, 0, sizeof h);
    svc_name(name, sizeof name, "");
    svc_name(name2, sizeof name2, "-2");
    snprintf(more, sizeof more,
             "\n[route.act2.*]\nactivate_service = %s\n"
             "activate_timeout_ms = %u\n",
             name2, ACT_WAIT_MS);
    act_ini(ini, sizeof ini, name, ACT_WAIT_MS, more);
    CHECK_DAEMON_INI(ini, d);
    CHECK_DO(svc_install(name, d->pipe, "--route act.* --delay-ms 500"));
    CHECK_DO(
        svc_install(name2, d->pipe,
                    "--route act2.* --delay-ms 1500 --reply \"from act2\""));
    CHECK_DO(svc_is(name, SERVICE_STOPPED));
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK_DO(get_stats(c, &s0));

    CHECK_DO(call(c, "act.hello", &r, &ms));
    CHECK_DO(is_reply(&r, GREETING));
    ph_reply_free(&r);
    ht_say("act.hello: the service started and answered after %llu ms",
           (unsigned long long)ms);
    CHECK_DO(svc_is(name, SERVICE_RUNNING));
    CHECK_DO(get_stats(c, &s1));
    CHECK_GROWTH(s0, s1, activations, 1);
    CHECK_GROWTH(s0, s1, held, 1);
    CHECK_GROWTH(s0, s1, failures, 0);

    /* Ten calls in one write. sys.stats goes after them on the same
     * connection, so its answer comes once the hub has held all ten. */
    t0 = ht_ms_now();
    for (i = 0; i < HELD_CALLS; i++) {
        char payload[8];

        slots[i].all = &h;
        slots[i].index = i;
        snprintf(payload, sizeof payload, "%d", i);
        CHECK_EQ(ph_client_call_async(c, "act2.n", payload, strlen(payload),
                                      CALL_WAIT_MS, on_held_done, &slots[i]),
                 PH_OK);
    }
    CHECK_DO(get_stats(c, &s2));
    CHECK_GROWTH(s1, s2, activations, 1);
    CHECK_GROWTH(s1, s2, held, HELD_CALLS);
    while (h.n < HELD_CALLS && ht_ms_now() - t0 < CALL_WAIT_MS + 5000)
        CHECK_EQ(ph_client_poll(c, 500, NULL), PH_OK);
    ht_say("%d held calls answered %llu ms after they were made", h.n,
           (unsigned long long)(ht_ms_now() - t0));
    CHECK_EQ(h.n, HELD_CALLS);
    if (h.bad != 0) {
        PH_FAIL_HERE("%d of %d held calls were not answered 'from act2'; "
                     "first: %s",
                     h.bad, HELD_CALLS, h.first_bad);
        return;
    }
    for (i = 0; i < HELD_CALLS; i++)
        CHECK_EQ(h.order[i], i);
    CHECK_DO(svc_is(name2, SERVICE_RUNNING));
    CHECK_DO(get_stats(c, &s1));
    CHECK_GROWTH(s0, s1, activations, 2);
    CHECK_GROWTH(s0, s1, failures, 0);
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* A service that stops at once with service-specific exit code 3: the
 * held call fails at once, naming the service and the code; the next call
 * tries again. (Under Wine 8, StartService itself fails for such a service,
 * with 1053; the code is in QueryServiceStatusEx: 1066 and 3.) */
static void fails_fast_body(void)
{
    char name[64], ini[512];
    act_stats s0, s1;
    ph_client *c;
    ph_reply r;
    ht_daemon *d;
    uint64_t ms;
    int attempt;

    svc_name(name, sizeof name, "");
    act_ini(ini, sizeof ini, name, ACT_WAIT_MS, "");
    CHECK_DAEMON_INI(ini, d);
    CHECK_DO(svc_install(name, d->pipe, "--route act.* --exit 3"));
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    for (attempt = 1; attempt <= 2; attempt++) {
        CHECK_DO(get_stats(c, &s0));
        CHECK_DO(call(c, "act.fail", &r, &ms));
        ht_say("call %d: %s %s '%s' after %llu ms", attempt,
               ht_kind_name(r.kind), ht_err_name(r.status), text_of(&r),
               (unsigned long long)ms);
        CHECK_DO(is_error(&r, PH_EUNAVAIL, name));
        if (!mentions_number(text_of(&r), name, 3)) {
            PH_FAIL_HERE("call %d: '%s' does not give the exit code 3", attempt,
                         text_of(&r));
            return;
        }
        ph_reply_free(&r);
        if (ms >= 4000) {
            PH_FAIL_HERE("call %d: failed after %llu ms, expected well under "
                         "activate_timeout_ms %u (under 4000)",
                         attempt, (unsigned long long)ms, ACT_WAIT_MS);
            return;
        }
        CHECK_DO(get_stats(c, &s1));
        CHECK_GROWTH(s0, s1, activations, 1);
        CHECK_GROWTH(s0, s1, failures, 1);
        CHECK_DO(svc_is(name, SERVICE_STOPPED));
    }
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* A service that runs but never registers: the call fails when
 * activate_timeout_ms (3000) has passed. */
static void never_registers_body(void)
{
    char name[64], ini[512];
    act_stats s0, s1;
    ph_client *c;
    ph_reply r;
    ht_daemon *d;
    uint64_t ms;

    svc_name(name, sizeof name, "");
    act_ini(ini, sizeof ini, name, 3000, "");
    CHECK_DAEMON_INI(ini, d);
    CHECK_DO(svc_install(name, d->pipe, "--route act.* --no-register"));
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK_DO(get_stats(c, &s0));
    CHECK_DO(call(c, "act.wait", &r, &ms));
    ht_say("%s %s '%s' after %llu ms", ht_kind_name(r.kind),
           ht_err_name(r.status), text_of(&r), (unsigned long long)ms);
    CHECK_DO(is_error(&r, PH_EUNAVAIL, "did not register"));
    ph_reply_free(&r);
    if (ms < 2500 || ms > 10000) {
        PH_FAIL_HERE("failed after %llu ms, expected about 3000 (2500..10000)",
                     (unsigned long long)ms);
        return;
    }
    CHECK_DO(get_stats(c, &s1));
    CHECK_GROWTH(s0, s1, activations, 1);
    CHECK_GROWTH(s0, s1, failures, 1);
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* Only SYSTEM may call act.*: the test's caller gets FORBIDDEN, and the
 * service is not started. */
static void no_call_right_body(void)
{
    char name[64], ini[512], sid[256];
    act_stats st;
    ph_client *c;
    ph_reply r;
    ht_daemon *d;
    uint64_t ms;

    CHECK(ht_own_sid(sid, sizeof sid) == 0);
    if (strcmp(sid, "S-1-5-18") == 0)
        SKIP("this test runs as SYSTEM, whom the rule lets call");
    svc_name(name, sizeof name, "");
    act_ini(ini, sizeof ini, name, ACT_WAIT_MS, "call = S-1-5-18\n");
    CHECK_DAEMON_INI(ini, d);
    CHECK_DO(svc_install(name, d->pipe, "--route act.*"));
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    CHECK_DO(call(c, "act.denied", &r, &ms));
    ht_say("caller %s: %s %s '%s'", sid, ht_kind_name(r.kind),
           ht_err_name(r.status), text_of(&r));
    CHECK_DO(is_error(&r, PH_EFORBIDDEN, NULL));
    ph_reply_free(&r);
    /* A start would show within this: the provider starts in well under a
     * second once the SCM is asked. */
    Sleep(1500);
    CHECK_DO(svc_is(name, SERVICE_STOPPED));
    CHECK_DO(get_stats(c, &st));
    CHECK_EQ(st.activations, 0);
    CHECK_EQ(st.held, 0);
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* Whether sys.routes (routes) has route with kind. */
static int routes_have(const char *routes, const char *route, const char *kind,
                       char *obj, size_t cap)
{
    const char *p = routes;

    while (ht_json_next_object(&p, obj, cap) == 0)
        if (ht_json_is_string(obj, "route", route) &&
            ht_json_is_string(obj, "kind", kind))
            return 1;
    return 0;
}

/* sys.routes lists act.* as activatable, naming the service, before any
 * call; once the service serves it, as provided and no longer
 * activatable. */
static void routes_view_body(void)
{
    char name[64], ini[512], obj[512];
    char *routes;
    ph_client *c;
    ph_reply r;
    ht_daemon *d;
    uint64_t ms;
    int found;

    svc_name(name, sizeof name, "");
    act_ini(ini, sizeof ini, name, ACT_WAIT_MS, "");
    CHECK_DAEMON_INI(ini, d);
    CHECK_DO(svc_install(name, d->pipe, "--route act.*"));
    CHECK_EQ(ph_client_connect(d->pipe, WAIT_MS, &c), PH_OK);
    if ((routes = sys_text(c, "sys.routes")) == NULL) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    found = routes_have(routes, "act.*", "activatable", obj, sizeof obj);
    if (!found || !ht_json_is_string(obj, "service", name)) {
        PH_FAIL_HERE("sys.routes has no {\"route\":\"act.*\",\"kind\":"
                     "\"activatable\",\"service\":\"%s\"}: %s",
                     name, routes);
        free(routes);
        return;
    }
    ht_say("before any call: %s", obj);
    free(routes);
    CHECK_DO(svc_is(name, SERVICE_STOPPED));

    CHECK_DO(call(c, "act.hello", &r, &ms));
    CHECK_DO(is_reply(&r, GREETING));
    ph_reply_free(&r);
    if ((routes = sys_text(c, "sys.routes")) == NULL) {
        PH_FAIL_HERE("%s", why);
        return;
    }
    found = routes_have(routes, "act.*", "provided", obj, sizeof obj) &&
            !routes_have(routes, "act.*", "activatable", obj, sizeof obj);
    if (!found) {
        PH_FAIL_HERE("once served, sys.routes must list act.* as provided "
                     "and not as activatable: %s",
                     routes);
        free(routes);
        return;
    }
    free(routes);
    ph_client_close(c);
    CHECK_ALIVE(d);
}

/* Each case's body runs, then the services it installed are removed,
 * however its checks went (a failed check returns from the body). */
#define WITH_SERVICES(fn)                                                      \
    static void fn(void)                                                       \
    {                                                                          \
        fn##_body();                                                           \
        remove_installed();                                                    \
    }
WITH_SERVICES(started)
WITH_SERVICES(fails_fast)
WITH_SERVICES(never_registers)
WITH_SERVICES(no_call_right)
WITH_SERVICES(routes_view)

static const ht_case cases[] = {
    HT_CASE("started", started),
    HT_CASE("fails_fast", fails_fast),
    HT_CASE("never_registers", never_registers),
    HT_CASE("no_call_right", no_call_right),
    HT_CASE("routes_view", routes_view),
};
#define NCASES (sizeof cases / sizeof cases[0])

int main(int argc, char **argv)
{
    size_t k;
    int at = 2;

    /* ht_main takes "CASE PIPEHUBD" or "PIPEHUBD [CASE...]"; the provider
     * follows PIPEHUBD in both, and is taken out of argv here. */
    for (k = 0; argc > 1 && k < NCASES; k++)
        if (strcmp(argv[1], cases[k].name) == 0)
            at = 3;
    if (argc <= at) {
        fprintf(stderr,
                "usage: %s CASE PIPEHUBD_EXE SERVICE_PROVIDER_EXE\n"
                "       %s PIPEHUBD_EXE SERVICE_PROVIDER_EXE [CASE...]\n",
                argv[0], argv[0]);
        return 2;
    }
    if (ht_dos_path(argv[at], provider_exe, sizeof provider_exe) != 0 ||
        GetFileAttributesA(provider_exe) == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "cannot find the service provider %s\n", argv[at]);
        return 2;
    }
    memmove(&argv[at], &argv[at + 1], (size_t)(argc - at) * sizeof *argv);
    return ht_main(argc - 1, argv, cases, NCASES);
}
