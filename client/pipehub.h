/* pipehub client library: connect to a pipehubd, call its routes, publish
 * and subscribe to topics, and serve routes to other clients.
 *
 * Link pipehub_client (and ph_core). All functions return a ph_err: PH_OK,
 * a protocol code from an ERROR frame (PH_ENOROUTE, ...), or a local code
 * (PH_ETIMEDOUT, PH_ENOTFOUND, PH_ECLOSED, PH_ESYSERR + Win32 code).
 *
 * Threading. A ph_client is driven by one thread at a time: "the driving
 * thread" below is whichever thread is inside a function on that client,
 * and the application makes sure no two are at once. The library starts no
 * thread. Every callback (call completions, events, requests) runs on the
 * driving thread, inside ph_client_poll, ph_client_flush or one of the
 * blocking functions, before that function returns. Different clients may
 * be used from different threads at once. Each function below says which
 * thread may call it. Those marked "Any thread" may be called at any time
 * while the client is open, also while another thread drives it: on a
 * client, ph_request_reply, ph_request_error, ph_request_caller_id and
 * ph_client_waitable. The first two take a small lock inside the client;
 * nothing else does.
 *
 * Calls are pipelined: any number of requests may be outstanding on one
 * connection. Frames queued by ph_client_call_async, ph_client_publish and
 * the request handlers' replies leave together, in one WriteFile, at the
 * next poll (or at the end of the poll whose callbacks queued them); a read
 * hands every frame it holds to its callback before the next read, so under
 * load a batch of calls costs one write and a few reads.
 *
 * A client reads from the pipe only while it has something to read for:
 * calls outstanding, subscriptions, or registered routes. A client that only
 * calls never sees the hub's EVENTs (sys.shutdown) unless it subscribes. */
#ifndef PIPEHUB_H
#define PIPEHUB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct ph_client ph_client;

/* A reply or error received for a call. payload is owned by the reply and
 * freed by ph_reply_free. */
typedef struct ph_reply {
    uint8_t kind;          /* PH_REPLY or PH_ERROR */
    uint32_t status;       /* the error code in an ERROR, else 0 */
    uint8_t *payload;      /* NUL-terminated for convenience (not counted) */
    uint32_t payload_len;
} ph_reply;

/* The completion of an asynchronous call; called exactly once per call that
 * ph_client_call_async accepted.
 *   err == PH_OK: reply is the answer, a REPLY or an ERROR frame (check
 *     reply->kind; an ERROR's code is reply->status). reply and the memory
 *     its payload points to belong to the library and stay valid only until
 *     the callback returns: copy what you keep.
 *   otherwise: reply is NULL and no answer came: PH_ETIMEDOUT (the call's
 *     timeout passed; a late answer is dropped), PH_ECLOSED (the server went
 *     away, or ph_client_close ran first), or the error that broke the
 *     connection.
 * A callback (of any kind: call, event, request) may call the non-blocking
 * functions on its client: ph_client_call_async, ph_client_publish,
 * ph_client_pending, ph_client_timeout, ph_request_reply, ph_request_error.
 * The blocking ones (ph_client_call, ph_client_subscribe,
 * ph_client_unsubscribe, ph_client_register, ph_client_unregister,
 * ph_client_caller), ph_client_poll and ph_client_flush return PH_EINVAL
 * there, and ph_client_close must not be called. */
typedef void ph_call_cb(void *ctx, ph_err err, const ph_frame *reply);

/* Open pipe (bare name or \\.\pipe\ path) with SECURITY_SQOS_PRESENT |
 * SECURITY_IDENTIFICATION. While every instance is busy, waits with
 * WaitNamedPipe and retries until timeout_ms has passed. PH_ENOTFOUND when
 * nothing serves the name; PH_ETIMEDOUT when it stayed busy. On success
 * *out owns the connection until ph_client_close. Any thread. */
ph_err ph_client_connect(const char *pipe, uint32_t timeout_ms,
                         ph_client **out);

/* ph_client_connect with flags: PH_CONNECT_NO_LANE keeps this client off
 * the shared-memory lane. Without it, the library asks the hub for a lane
 * the first time a payload of 64 KiB or more leaves, and from then on
 * payloads from the hub's threshold up travel through it (docs/PROTOCOL.md,
 * "The lane"); PIPEHUB_LANE=0 in the environment turns that off for every
 * client of the process. Any thread. */
enum { PH_CONNECT_NO_LANE = 1 };
ph_err ph_client_connect_ex(const char *pipe, uint32_t timeout_ms,
                            unsigned flags, ph_client **out);

/* Send a REQUEST to route and wait up to timeout_ms for its REPLY or ERROR.
 * On PH_OK *reply holds the answer (which may be an ERROR frame: check
 * reply->kind); the caller frees it with ph_reply_free. Any other return
 * means no answer came: PH_ETIMEDOUT, PH_ECLOSED, ... After PH_ETIMEDOUT
 * the client stays usable and the late answer is dropped. Asynchronous calls
 * already outstanding on c keep going while this waits, and callbacks of
 * every kind (completions, events, requests) may run inside it.
 * Driving thread, not from a callback. */
ph_err ph_client_call(ph_client *c, const char *route, const void *payload,
                      size_t payload_len, uint32_t timeout_ms,
                      ph_reply *reply);

/* Queue a REQUEST to route; does no I/O. The frame is encoded (payload is
 * copied, so the caller may reuse it at once) and leaves at the next
 * ph_client_poll or ph_client_flush, together with everything else queued.
 * cb(ctx, ...) is called exactly once: with the answer, or with
 * PH_ETIMEDOUT once timeout_ms (counted from now) has passed without one, or
 * with the error that ended the connection.
 * Returns PH_OK when the call was accepted. Any other return (PH_EINVAL, a
 * route that is empty or longer than 255 bytes; PH_ENOMEM; the error that
 * already broke the connection) means cb will never be called.
 * Driving thread; also from a callback. */
ph_err ph_client_call_async(ph_client *c, const char *route,
                            const void *payload, size_t payload_len,
                            uint32_t timeout_ms, ph_call_cb *cb, void *ctx);

/* Drive the connection for at most timeout_ms: write everything queued in
 * one WriteFile, read what the server sent, decode every frame of every
 * read and run the callbacks: of answered and of expired calls, of events
 * and of requests. Frames the callbacks queued (replies, new calls) are
 * written before it returns. Returns as soon as at least one callback has
 * run and nothing more is ready without waiting, when timeout_ms has
 * passed, or at once when the client has nothing to wait for: no call
 * outstanding, no subscription and no registered route. timeout_ms 0 does
 * only what needs no waiting (the way to go after ph_client_waitable was
 * signalled). *ncompleted (may be NULL) gets the number of callbacks run.
 * PH_OK, or the error that broke the connection (every outstanding callback
 * has then been called with it), or PH_EINVAL from inside a callback.
 * Driving thread, not from a callback. */
ph_err ph_client_poll(ph_client *c, uint32_t timeout_ms, size_t *ncompleted);

/* Poll until no call is outstanding and every queued frame has been written
 * to the pipe: PH_OK, PH_ETIMEDOUT when timeout_ms passed first (the
 * remaining calls keep their own timeouts), or as ph_client_poll. Events
 * and requests that arrive meanwhile are handled. Driving thread, not from
 * a callback. */
ph_err ph_client_flush(ph_client *c, uint32_t timeout_ms);

/* Calls accepted whose callback has not run yet. Driving thread. */
size_t ph_client_pending(const ph_client *c);

/* A Windows event HANDLE (as void *, so this header needs no <windows.h>)
 * that is signalled whenever the client has something to do: a read or
 * write finished, or another thread queued a reply. To serve several
 * clients from one thread, or fit a client into a loop of your own, wait on
 * it (WaitForMultipleObjects, MsgWaitForMultipleObjects, ...) with at most
 * ph_client_timeout(c) milliseconds, then call ph_client_poll(c, 0, NULL).
 * Signalled does not promise a callback; not signalled promises nothing is
 * ready. Frames the driving thread queues itself (ph_client_call_async,
 * ph_client_publish outside a poll) do not signal it: they leave at the
 * next poll, so poll once after queuing, then wait. The handle belongs to
 * the client: do not close, set or reset it; it is valid until
 * ph_client_close. Any thread. */
void *ph_client_waitable(ph_client *c);

/* Milliseconds until the earliest outstanding call times out (0 when one is
 * already due), or UINT32_MAX when no call is outstanding: the longest a
 * loop may wait on ph_client_waitable before polling. Driving thread. */
uint32_t ph_client_timeout(const ph_client *c);

/* Free reply's payload (reply itself is the caller's). NULL is ignored.
 * Any thread: a ph_reply belongs to whoever holds it, not to a client. */
void ph_reply_free(ph_reply *reply);

/* Close the connection and free c. Outstanding I/O is cancelled and waited
 * for; every outstanding call's callback is called with PH_ECLOSED first;
 * subscriptions and registrations end (the hub drops them with the
 * connection), and every ph_request not answered yet is freed (the hub
 * answers those callers UNAVAILABLE itself). No other thread may be using
 * c, or about to answer one of its requests, when this starts: join or stop
 * the workers that hold its ph_request handles first. NULL is ignored.
 * Driving thread, not from a callback. */
void ph_client_close(ph_client *c);

/* ---- publish / subscribe ------------------------------------------------ */

/* An EVENT whose topic matched a subscription's pattern. topic is
 * NUL-terminated; topic and payload stay valid only until the callback
 * returns. See ph_call_cb for what a callback may call. */
typedef void ph_event_cb(void *ctx, const char *topic, const void *payload,
                         size_t payload_len);

/* Queue an EVENT on topic; does no I/O (it leaves with the next write, as
 * ph_client_call_async's requests do). payload is copied. The hub delivers
 * it to every subscriber of a matching pattern, this client too if it
 * subscribed. Nobody subscribed is not an error, and nothing is answered.
 * PH_EINVAL: topic empty, over 255 bytes or with characters outside
 * A-Za-z0-9._-/; PH_EFORBIDDEN: a topic under "sys." (those belong to the
 * hub; refused here because the hub's refusal could not be told apart from
 * other id-less errors); PH_ENOMEM; or the error that broke the connection.
 * Driving thread; also from a callback. */
ph_err ph_client_publish(ph_client *c, const char *topic, const void *payload,
                         size_t payload_len);

/* Subscribe cb(ctx, ...) to pattern: a topic, "prefix.*" (every topic that
 * starts with "prefix.") or "*". Every EVENT this client receives goes to
 * every local subscription whose pattern matches it, once each: the hub
 * sends one copy per connection however many of its patterns match, and the
 * library fans it out. A (pattern, cb, ctx) already subscribed changes
 * nothing. The first local subscription of a pattern asks the hub
 * (sys.subscribe) and waits up to timeout_ms for its answer; later ones on
 * the same pattern need no round trip.
 * The hub sends some events without a subscription, and for those patterns
 * the library asks nothing of the hub and only listens: "sys.shutdown" (to
 * every client when the server stops), "sys.route.acquired" (to a waiting
 * exclusive provider that became the holder) and "sys.monitor" (the copies
 * a monitor receives after ph_client_call(c, "sys.monitor", ...)). Wider
 * patterns ("sys.*", "*") match them too once they arrive.
 * PH_OK, the hub's error code (PH_EBADREQ: not a pattern; FORBIDDEN),
 * PH_EINVAL, PH_ENOMEM, or as ph_client_call (PH_ETIMEDOUT, PH_ECLOSED):
 * on any error nothing was subscribed. Driving thread, not from a
 * callback. */
ph_err ph_client_subscribe(ph_client *c, const char *pattern, ph_event_cb *cb,
                           void *ctx, uint32_t timeout_ms);

/* Remove the subscription (pattern, cb, ctx). Events that arrive from now
 * on no longer reach it. When it was the last local subscription of the
 * pattern, the hub is told (sys.unsubscribe) and its answer awaited.
 * PH_ENOROUTE when (pattern, cb, ctx) is not subscribed; otherwise the
 * local subscription is gone whatever the hub answers, and the return is
 * PH_OK or the error of that exchange. Driving thread, not from a
 * callback. */
ph_err ph_client_unsubscribe(ph_client *c, const char *pattern,
                             ph_event_cb *cb, void *ctx, uint32_t timeout_ms);

/* ---- serving routes ----------------------------------------------------- */

/* A request forwarded to this client, to be answered exactly once with
 * ph_request_reply or ph_request_error (which free it). */
typedef struct ph_request ph_request;

/* A request for a route this client registered. route is NUL-terminated;
 * route and payload stay valid only until the handler returns (copy what a
 * later answer needs). caller is the calling connection's id (its conn_id in
 * sys.hello; ph_client_caller tells who it is). The handler answers now, or
 * keeps req and answers later from any thread. A request never answered
 * gets ERROR TIMEOUT from the hub; its handle is freed by ph_client_close.
 * See ph_call_cb for what a handler may call. */
typedef void ph_request_cb(void *ctx, ph_request *req, const char *route,
                           const void *payload, size_t payload_len,
                           uint32_t caller);

enum {
    PH_REGISTER_SHARED = 0,   /* share the route's requests round-robin */
    PH_REGISTER_EXCLUSIVE = 1 /* hold the route alone, or wait in line */
};

/* Serve route (a name or "prefix.*") with cb(ctx, ...): sys.register, and
 * wait up to timeout_ms for the hub's answer. flags: PH_REGISTER_SHARED or
 * PH_REGISTER_EXCLUSIVE. A request goes to the handler of the most specific
 * registration of this client that matches its route (an exact route before
 * a prefix, a longer prefix before a shorter one), as the hub chose this
 * client by the same rule.
 * PH_OK: the hub accepted it; the client serves the route, or waits in line
 * for an exclusive one (then it receives the EVENT "sys.route.acquired",
 * which ph_client_subscribe can listen for, when it becomes the holder).
 * *answer (may be NULL) is always written, and the caller frees it with
 * ph_reply_free: the hub's answer, the JSON
 * {"route":...,"mode":...,"state":"serving"|"waiting"[,"position":N]} or
 * an ERROR's message ("route 'x' is held exclusively by conn 5 ..."), or
 * an empty reply (kind 0, payload NULL) when no answer came.
 * Errors: FORBIDDEN (a sys. route, or exclusivity refused), PH_EBADREQ,
 * PH_EINVAL (a route already registered here with another handler or mode;
 * a bad name), PH_ENOMEM, or as ph_client_call; after any error nothing was
 * registered. Registering the same (route, flags, cb, ctx) again asks the
 * hub again and returns its current state. Driving thread, not from a
 * callback. */
ph_err ph_client_register(ph_client *c, const char *route, unsigned flags,
                          ph_request_cb *cb, void *ctx, uint32_t timeout_ms,
                          ph_reply *answer);

/* As ph_client_register, with a description of the route (UTF-8 text of at
 * most PH_DESCRIBE_MAX bytes; NULL or "" for none) that sys.describe and
 * `pipehub describe ROUTE` show (docs/PROTOCOL.md, "Describing a route",
 * recommends a small grammar). The route keeps the latest description any
 * of its providers gave. PH_EINVAL for a longer one. */
#define PH_DESCRIBE_MAX (16u * 1024u)
ph_err ph_client_register_described(ph_client *c, const char *route,
                                    unsigned flags, const char *description,
                                    ph_request_cb *cb, void *ctx,
                                    uint32_t timeout_ms, ph_reply *answer);

/* Stop serving (or waiting for) route: sys.unregister, waiting up to
 * timeout_ms. The handler gets no request from now on; requests it already
 * holds may still be answered (the hub answered their callers UNAVAILABLE
 * when the route went, and drops the late answers). PH_ENOROUTE when route
 * is not registered here; otherwise the local registration is gone whatever
 * the hub answers, and the return is PH_OK or that exchange's error.
 * Driving thread, not from a callback. */
ph_err ph_client_unregister(ph_client *c, const char *route,
                            uint32_t timeout_ms);

/* Answer req with a REPLY carrying payload (copied) and free req. The frame
 * is queued and leaves with the driving thread's next write: at the end of
 * the current poll when called from a handler, otherwise the waitable is
 * signalled so the driving thread's next ph_client_poll sends it.
 * PH_OK; PH_EINVAL (req NULL, or payload NULL with a length: req is then
 * not touched); PH_ENOMEM or PH_ETOOBIG (no room or too large: an ERROR
 * INTERNAL is sent instead when possible); PH_ECLOSED when the connection
 * is broken. Except for PH_EINVAL, req is freed in every case.
 * Any thread, any number at once; never twice for one req, and never after
 * ph_client_close started on its client. */
ph_err ph_request_reply(ph_request *req, const void *payload,
                        size_t payload_len);

/* Answer req with an ERROR: code (nonzero; 1..255 are the protocol's codes,
 * applications use 256 and up) and msg (may be NULL; cut to 200 bytes on a
 * UTF-8 character boundary), and free req. As ph_request_reply otherwise.
 * Any thread. */
ph_err ph_request_error(ph_request *req, uint32_t code, const char *msg);

/* The calling connection's id, as the handler was given it. Any thread,
 * until req is answered. */
uint32_t ph_request_caller_id(const ph_request *req);

/* Who is connection conn_id: sys.client, waiting up to timeout_ms. The hub
 * answers only while this client holds an unanswered request from that
 * connection, so call it after a handler kept its ph_request and before
 * answering it. (Inside a handler, where blocking calls are refused, send
 * ph_client_call_async(c, "sys.client", "<decimal id>", ...) instead.)
 * PH_OK: *json (a REPLY) holds the hub's JSON object (conn_id, pid,
 * process_start, sid, account, logon_session, integrity, integrity_rid,
 * exe, admin); free it with ph_reply_free. An ERROR answer returns its code
 * (FORBIDDEN) and *json is not written; so do the errors of
 * ph_client_call. Driving thread, not from a callback. */
ph_err ph_client_caller(ph_client *c, uint32_t conn_id, uint32_t timeout_ms,
                        ph_reply *json);

/* ---- monitor ------------------------------------------------------------ */

/* One copy received by a monitor: the payload of an EVENT "sys.monitor"
 * (docs/PROTOCOL.md, "Monitor"). */
typedef struct ph_monitor_copy {
    uint64_t time_ms; /* Unix time in ms when the hub routed the frame */
    uint32_t from;    /* sender's conn id, 0 for the hub */
    uint32_t to;      /* receiver's conn id, 0 for the hub or subscribers */
    ph_frame frame;   /* the frame; route and payload point into the
                         payload given to ph_monitor_decode */
} ph_monitor_copy;

/* Decode a sys.monitor EVENT's payload. PH_OK, or PH_EBADFRAME when it is
 * not a time, two ids and exactly one well-formed frame. Any thread. */
ph_err ph_monitor_decode(const void *payload, size_t len,
                         ph_monitor_copy *out);

#endif
