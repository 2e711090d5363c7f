/* Pending pipe instances: the pool that keeps the name served.
 *
 * [server] pending_instances instances always have a ConnectNamedPipe
 * outstanding. When one connects, the worker that takes the completion tops
 * the pool up again before serving the client, so a new client never finds
 * the name without a listener. Instances whose client went away are
 * disconnected and kept as spares: reusing one costs DisconnectNamedPipe and
 * ConnectNamedPipe instead of a new handle, port association and mode. */
#include "internal.h"

#include "log.h"
#include "win_error.h"

#define PIPE_BUFFER_BYTES (64u * 1024u)

static ph_err create_instance(ph_server *srv, int first, ph_conn **out)
{
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
    HANDLE h;
    ph_conn *c;
    DWORD e;

    /* On Windows the first instance claims the name: if another process
     * already serves it, creation fails instead of two servers sharing
     * clients at random. (Wine ignores this flag; see ph_listener_create_first
     * for the check that also works there.) */
    if (first)
        open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    h = CreateNamedPipeA(srv->opts.pipe_name, open_mode,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                             (srv->opts.allow_remote ? 0
                                                     : PIPE_REJECT_REMOTE_CLIENTS),
                         PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER_BYTES,
                         PIPE_BUFFER_BYTES, 0, &srv->sa);
    if (h == INVALID_HANDLE_VALUE)
        return ph_win_err(GetLastError());
    if (CreateIoCompletionPort(h, srv->port, 0, 0) == NULL ||
        !SetFileCompletionNotificationModes(
            h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                   FILE_SKIP_SET_EVENT_ON_HANDLE)) {
        e = GetLastError();
        CloseHandle(h);
        return ph_win_err(e);
    }
    c = ph_conn_new(srv, h);
    if (c == NULL) {
        CloseHandle(h);
        return PH_ENOMEM;
    }
    *out = c;
    return PH_OK;
}

/* srv->lock held. */
static void refill_locked(ph_server *srv)
{
    unsigned failures = 0;
    ph_conn *c;
    ph_err err;
    unsigned target = ph_server_live(srv)->pending_instances;

    while (!srv->stopping && srv->listening.count < target && failures < 3) {
        c = srv->spare.head;
        if (c != NULL) {
            ph_list_remove(&srv->spare, c);
        } else if ((err = create_instance(srv, 0, &c)) != PH_OK) {
            ph_log(PH_LOG_ERROR, "cannot create a pipe instance of %s: %s",
                   srv->opts.pipe_name, ph_strerror(err));
            failures++;
            continue;
        }
        if (ph_conn_listen(c) != PH_OK) {
            /* The instance is broken (ph_conn_listen already got past
             * clients that came and went): replace it. */
            ph_conn_free(c);
            failures++;
        }
    }
}

void ph_listener_refill(ph_server *srv)
{
    EnterCriticalSection(&srv->lock);
    refill_locked(srv);
    LeaveCriticalSection(&srv->lock);
}

ph_err ph_listener_create_first(ph_server *srv)
{
    HANDLE probe;
    ph_conn *c;
    ph_err err;

    /* Someone already answering on the name (or all its instances busy)
     * means another server owns it. Racy, but it is the one check that works
     * under Wine too. */
    probe = CreateFileA(srv->opts.pipe_name, GENERIC_READ | GENERIC_WRITE, 0,
                        NULL, OPEN_EXISTING, 0, NULL);
    if (probe != INVALID_HANDLE_VALUE || GetLastError() == ERROR_PIPE_BUSY) {
        if (probe != INVALID_HANDLE_VALUE)
            CloseHandle(probe);
        ph_log(PH_LOG_ERROR, "another process already serves %s",
               srv->opts.pipe_name);
        return PH_EBUSY;
    }
    err = create_instance(srv, 1, &c);
    if (err != PH_OK) {
        ph_log(PH_LOG_ERROR, "cannot serve %s: %s", srv->opts.pipe_name,
               err == PH_EFORBIDDEN ? "the name is taken by another process"
                                    : ph_strerror(err));
        return err;
    }
    EnterCriticalSection(&srv->lock);
    err = ph_conn_listen(c);
    if (err == PH_OK)
        refill_locked(srv);
    LeaveCriticalSection(&srv->lock);
    if (err != PH_OK) {
        ph_log(PH_LOG_ERROR, "cannot listen on %s: %s", srv->opts.pipe_name,
               ph_strerror(err));
        ph_conn_free(c);
    }
    return err;
}

/* srv->lock held. */
static void signal_if_drained(ph_server *srv)
{
    if (srv->stopping && srv->open.count == 0 && srv->listening.count == 0)
        SetEvent(srv->drained);
}

void ph_listener_recycle(ph_server *srv, ph_conn *c)
{
    int keep;

    /* Disconnecting is a system call: do it before taking the lock. */
    keep = c->reusable && DisconnectNamedPipe(c->pipe);
    if (keep)
        ph_conn_reset(c);
    EnterCriticalSection(&srv->lock);
    keep = keep && !srv->stopping &&
           srv->spare.count < PH_SPARE_INSTANCES_MAX;
    if (keep)
        ph_list_push(&srv->spare, c);
    refill_locked(srv);
    signal_if_drained(srv);
    LeaveCriticalSection(&srv->lock);
    if (!keep)
        ph_conn_free(c);
}

void ph_listener_stop(ph_server *srv, int force)
{
    ph_conn *c;

    EnterCriticalSection(&srv->lock);
    srv->stopping = 1;
    for (c = srv->listening.head; c != NULL; c = c->next)
        CancelIoEx(c->pipe, &c->op_connect.ov);
    /* Lock order is srv->lock, then a conn's lock; neither call below takes
     * srv->lock or finishes a connection inline. */
    for (c = srv->open.head; c != NULL; c = c->next) {
        if (force)
            ph_conn_close(c, "server stopping");
        else
            ph_conn_shutdown(c);
    }
    signal_if_drained(srv);
    LeaveCriticalSection(&srv->lock);
}

void ph_listener_check(ph_server *srv)
{
    const ph_options *live = ph_server_live(srv);
    ULONGLONG now = GetTickCount64();
    uint64_t total = 0, most;
    size_t q;
    ph_conn *c, *worst;

    EnterCriticalSection(&srv->lock);
    for (c = srv->open.head; c != NULL; c = c->next) {
        q = ph_conn_check(c, now, live);
        c->check_queued = q;
        total += q;
    }
    /* The global cap: the connections holding the most go first, so the
     * others keep working (dbus-broker blames the one that holds). */
    while (total > live->max_queued_bytes) {
        worst = NULL;
        most = 0;
        for (c = srv->open.head; c != NULL; c = c->next) {
            if (c->check_queued > most) {
                most = c->check_queued;
                worst = c;
            }
        }
        if (worst == NULL)
            break;
        ph_conn_close_for_memory(worst, (size_t)most, live->max_queued_bytes);
        worst->check_queued = 0;
        total -= most;
    }
    LeaveCriticalSection(&srv->lock);
}
