/* Shared by the server's Win32 files: the server, its workers, pipe
 * instances and connections. Nothing here leaves server/. */
#ifndef PH_SERVER_INTERNAL_H
#define PH_SERVER_INTERNAL_H

#include <windows.h>

#include "frame.h"
#include "hub.h"
#include "lane.h"
#include "options.h"
#include "router.h"
#include "server.h"

/* Reads start small so an idle connection commits little memory (Wine
 * touches every page of a pending read buffer); a read that fills the buffer
 * shows data is flowing and grows it once to the large size. */
#define PH_READ_SMALL 1024u
#define PH_READ_LARGE (64u * 1024u)
/* The most one read takes of a large frame's tail (see read_now). */
#define PH_TAIL_READ_MAX (256u * 1024u)
/* Disconnected instances kept for reuse beyond the pending ones. */
#define PH_SPARE_INSTANCES_MAX 64

typedef struct ph_conn ph_conn;
typedef struct ph_worker ph_worker;

typedef enum ph_op_type {
    PH_OP_CONNECT,
    PH_OP_READ,
    PH_OP_WRITE,
    PH_OP_CLOSE, /* queued by hand when a close finds nothing outstanding */
    PH_OP_KICK   /* queued by hand: resume a connection's reads */
} ph_op_type;

/* One overlapped operation. The OVERLAPPED lives here, inside the connection
 * that owns it, and is recovered from a completion with CONTAINING_RECORD. */
typedef struct ph_op {
    OVERLAPPED ov;
    ph_op_type type;
    ph_conn *conn;
} ph_op;

typedef enum ph_conn_state {
    PH_CONN_IDLE,      /* a disconnected instance, kept for reuse */
    PH_CONN_LISTENING, /* ConnectNamedPipe outstanding */
    PH_CONN_OPEN,      /* a client is connected */
    PH_CONN_CLOSING    /* cancelled; waiting for completions to drain */
} ph_conn_state;

/* A client's identity as read from the pipe, with room for its strings. */
typedef struct ph_conn_identity {
    ph_identity who;         /* its strings point into the arrays below */
    char sid[192];
    char account[260];
    char logon_session[40];
    char integrity[16];
    char exe[MAX_PATH * 3];  /* UTF-8 of a MAX_PATH wide path */
    char groups[2048];       /* enabled group SIDs, comma separated */
} ph_conn_identity;

/* A connection's shared-memory lane (win_lane.c; docs/PROTOCOL.md, "The
 * lane"). Guarded by the connection's lock. */
typedef struct ph_conn_lane {
    uint8_t *view;          /* the section, mapped; NULL: no lane */
    size_t bytes;           /* of the section */
    ph_lane rings;          /* the hub's side of both rings */
    uint32_t threshold;     /* payloads from this size go to the ring */
    uint8_t *in;            /* a payload read from the client's ring */
    uint32_t in_cap;
    int blocked;            /* a payload waits for room in the client's
                               ring: writing stops until it wakes us */
} ph_conn_lane;

/* One pipe instance and, while a client is connected, its connection.
 * Lifetime: close (cancel I/O) -> drain (ops_pending reaches 0) -> recycle
 * the instance or free it. Only the thread that sees ops_pending reach 0
 * with the state CLOSING may finish it. */
struct ph_conn {
    ph_server *srv;
    HANDLE pipe;
    CRITICAL_SECTION lock;  /* guards everything below */
    ph_conn_state state;
    int ops_pending;        /* operations whose completion is still due */
    int reading;            /* a read is outstanding */
    int read_into_tail;     /* ...into the decoder's large frame, not rbuf */
    int writing;            /* a write is outstanding */
    int close_after_flush;  /* close once the send queue has been written */
    const char *close_why;  /* static text: why, for the log */
    int reusable;           /* the pipe may be disconnected and reused */
    ULONGLONG last_active;  /* GetTickCount64 of the last bytes received */
    ph_op op_connect, op_read, op_write, op_close;
    uint8_t *rbuf;          /* read buffer, rcap bytes; owned */
    uint32_t rcap;
    ph_decoder decoder;
    ph_buf send_queue;      /* encoded frames not yet handed to WriteFile */
    ph_buf in_flight;       /* bytes of the outstanding WriteFile */
    size_t in_flight_done;  /* of in_flight, bytes already written */
    ph_peer peer;
    ph_conn *prev, *next;   /* in srv->listening, srv->open or srv->spare */
    int in_hub;             /* known to the hub (ph_hub_connect done) */
    int holds_hub;          /* this thread holds srv->hub_lock for c */
    int kick_posted;        /* op_kick is queued */
    ph_op op_kick;
    /* Frames other connections route to this one arrive here, under
     * inbox_lock, a leaf lock: whoever holds it takes no other lock. The
     * owner moves them to send_queue. attention says the owner has work
     * (inbox bytes or a close the hub asked for); it is read without a
     * lock after every unlock of c->lock (conn_unlock in win_conn.c). */
    CRITICAL_SECTION inbox_lock;
    ph_buf inbox;
    const char *hub_close;  /* the hub asked to close c, for this reason */
    volatile LONG attention;
    volatile LONG64 owner_queued; /* send_queue + in_flight, by the owner */
    /* Deadlines (checked once a second by ph_listener_check). */
    ULONGLONG connected_at; /* GetTickCount64 at connect */
    uint64_t connected_ms;  /* the same, Unix time in ms (sys.clients) */
    int got_frame;          /* a whole frame has arrived */
    ULONGLONG partial_since; /* a frame begun and not complete since; 0 */
    ULONGLONG stall_since;  /* output at quota, unread since; 0 */
    ULONGLONG close_by;     /* close_after_flush: cut off after this; 0 */
    char who[80];           /* account or SID, for log lines */
    char sid[192];          /* the client's user SID (its lane's DACL) */
    ph_conn_lane lane;
    size_t check_queued;    /* ph_listener_check's scratch (srv->lock) */
    /* Per-connection counters (sys.clients), written under lock. */
    volatile LONG64 frames_in, frames_out, bytes_in, bytes_out;
};

/* Limits that fired in the server (not the hub), for sys.stats. Rare:
 * incremented with interlocked operations. */
typedef struct ph_limit_counters {
    volatile LONG64 max_connections;
    volatile LONG64 first_frame_timeout;
    volatile LONG64 frame_timeout;
    volatile LONG64 send_stall;
    volatile LONG64 max_queued_bytes;
} ph_limit_counters;

/* Per-worker counters: each is written by one thread only, so the hot path
 * takes no lock and shares no cache line; sys.stats sums them. */
typedef struct ph_counters {
    volatile LONG64 frames_in, frames_out, bytes_in, bytes_out, errors_sent;
    char pad[64 - (5 * sizeof(LONG64)) % 64];
} ph_counters;

struct ph_worker {
    ph_server *srv;
    HANDLE thread;
    ph_counters counters;
};

typedef struct ph_conn_list {
    ph_conn *head;
    unsigned count;
} ph_conn_list;

/* One loaded configuration. Generations are never changed once published
 * and live until the server stops, so a worker may keep using the one it
 * read while a reload publishes the next. */
typedef struct ph_generation {
    ph_options opts;
    ph_route_rule rules[PH_ROUTE_SECTIONS_MAX]; /* opts.routes for the hub */
    uint32_t number;              /* 1 at start */
    uint64_t loaded_ms;           /* Unix time in ms */
    struct ph_generation *older;
} ph_generation;

struct ph_server {
    ph_options opts;        /* as started: what cannot change live */
    ph_generation *live;    /* the current generation: read with
                               ph_server_live(), published by reload */
    char config_path[PH_PATH_MAX]; /* "" when running on defaults */
    CRITICAL_SECTION reload_lock;  /* one reload at a time */
    volatile LONG64 next_idle_check; /* GetTickCount64 when it is due */
    ph_counters control;    /* frames queued by the control thread */
    ph_router router;
    HANDLE port;
    ph_worker *workers;
    unsigned nworkers;
    ULONGLONG started_ms;
    CRITICAL_SECTION lock;  /* guards the lists, the ids and stopping */
    ph_conn_list listening; /* instances with ConnectNamedPipe outstanding */
    ph_conn_list open;      /* connected clients */
    ph_conn_list spare;     /* disconnected instances ready for reuse */
    unsigned closing;       /* connections draining, in no list */
    uint64_t next_conn_id;
    uint64_t connections_total;
    int stopping;
    HANDLE drained;         /* set when stopping and nothing is left */
    /* The hub (common/hub.h). Lock order: a connection's lock, then
     * hub_lock, then (only by TryEnter) another connection's lock, then an
     * inbox_lock. No thread holding hub_lock ever waits for a connection
     * lock, so two connections routing to each other cannot deadlock. */
    CRITICAL_SECTION hub_lock;
    /* Held shared by a thread kicking connections after it left hub_lock
     * (ph_server_hub_unlock), exclusive by finish() around the hub's
     * disconnect: a connection the hub named is not recycled under a
     * kick. */
    SRWLOCK kick_lock;
    ph_hub *hub;
    volatile LONG64 next_hub_tick; /* GetTickCount64 when it is due */
    ph_limit_counters limits;
    /* Lanes (win_lane.c): how many, their sections' bytes together (held
     * against [lane] max_total_bytes), and payload bytes each way. */
    volatile LONG64 lanes_current, lane_section_bytes;
    volatile LONG64 lane_bytes_in, lane_bytes_out;
    volatile LONG64 lane_bytes_direct; /* of lane_bytes_out, copied from
                                          one client's ring straight into
                                          another's (or its own) */
    volatile LONG watches;  /* activation watchers running (win_activate.c) */
    SECURITY_ATTRIBUTES sa; /* from [security] sddl */
    PSECURITY_DESCRIPTOR sd; /* owned: LocalFree */
};

/* The settings in force now. */
static inline const ph_options *ph_server_live(ph_server *srv)
{
    return &__atomic_load_n(&srv->live, __ATOMIC_ACQUIRE)->opts;
}

/* Reads one pump() does inline before the connection yields its worker. */
#define PH_PUMP_READS_MAX 32
/* A connection told why it is being closed gets this long to read it. */
#define PH_CLOSE_GRACE_MS 2000
/* How often open connections are checked against their deadlines. */
#define PH_IDLE_CHECK_MS 1000
/* Worker threads need little stack. (Under Wine a thread costs about 1 MiB
 * resident whatever its stack, measured: Wine's own per-thread stacks; so
 * the worker count, not this, is what decides memory there.) */
#define PH_WORKER_STACK (128u * 1024u)

/* Completion keys: 0 for I/O; PH_KEY_QUIT tells a worker to exit. */
#define PH_KEY_QUIT 1

/* win_iocp.c */
ph_err ph_iocp_start(ph_server *srv);
void ph_iocp_stop(ph_server *srv);

/* win_listener.c: keep opts.pending_instances instances listening. Takes
 * srv->lock; call without any conn lock held. */
ph_err ph_listener_create_first(ph_server *srv);
void ph_listener_refill(ph_server *srv);
/* A finished connection's instance comes back: reused or freed. */
void ph_listener_recycle(ph_server *srv, ph_conn *c);
/* Stop accepting and close every connection: politely (an EVENT
 * sys.shutdown, then close once written) or, with force, by cancelling. */
void ph_listener_stop(ph_server *srv, int force);
/* Once a second: close connections past a deadline (idle, first frame,
 * frame, send stall) and, while the output queued for all of them passes
 * max_queued_bytes, the ones holding the most. */
void ph_listener_check(ph_server *srv);

/* win_identity.c: who the client is (reads the pipe's client token). */
int ph_win_resolve_account(void *ctx, const char *name, char *sid, size_t cap,
                           char *why, size_t why_cap);
void ph_identity_capture(HANDLE pipe, ULONG pid, ph_conn_identity *id);

/* server.c: the hub's limits from a generation. */
void ph_server_hub_limits(ph_server *srv, ph_generation *g,
                          ph_hub_limits *out);
/* The hub's timers: every PH_HUB_TICK_MS a worker answers overdue requests. */
#define PH_HUB_TICK_MS 100
void ph_server_hub_tick(ph_server *srv);

/* win_activate.c: ph_hub_io.activate (ctx is the server). */
void ph_activate_start(void *ctx, const char *service, uint32_t id);

/* win_conn.c: the transport the hub drives (ph_hub_io). */
extern const ph_hub_io ph_conn_hub_io;

/* win_conn.c */
/* A worker's counters, for writes it does on behalf of other connections. */
void ph_conn_thread_init(ph_counters *k);
ph_conn *ph_conn_new(ph_server *srv, HANDLE pipe);
void ph_conn_free(ph_conn *c);
/* Forget the last client before the instance is reused. */
void ph_conn_reset(ph_conn *c);
/* Arm ConnectNamedPipe on an idle instance (srv->lock held). */
ph_err ph_conn_listen(ph_conn *c);
/* A completion for one of c's operations. */
void ph_conn_complete(ph_worker *w, ph_op *op, DWORD bytes, DWORD error);
/* Begin closing (takes c->lock). */
void ph_conn_close(ph_conn *c, const char *why);
/* At shutdown: queue an EVENT sys.shutdown, then close once it is written
 * (takes c->lock). */
void ph_conn_shutdown(ph_conn *c);
/* Close c if it is past one of its deadlines (takes c->lock). Returns the
 * bytes it holds queued (0 once closing). */
size_t ph_conn_check(ph_conn *c, ULONGLONG now, const ph_options *live);
/* Close c for holding too much of max_queued_bytes (takes c->lock). */
void ph_conn_close_for_memory(ph_conn *c, size_t queued, uint32_t cap);

/* Leave srv->hub_lock, then start the writes the hub asked for while it
 * was held (its kicks are deferred to here): fan-out and routed replies
 * are written outside the hub's lock. */
void ph_server_hub_unlock(ph_server *srv);

/* The lane (win_lane.c), all with c->lock held. Open: sys.lane's work, a
 * section with rings of ring bytes shared with c's process; PH_EFORBIDDEN,
 * PH_EBADREQ, PH_EBUSY or PH_EINTERNAL with why for the client. Close:
 * unmap it (at reset). Take: a lane frame f from the client becomes *out
 * with its payload copied out of the ring (in_place: left in the ring, for
 * a route marked PH_SYS_OPAQUE, and given back with ph_lane_consume(*end)
 * once handled); PH_EBADFRAME (the client broke
 * its lane; why says how) or PH_ENOMEM. Outgoing: move big payloads of
 * c->in_flight into the client's ring (see win_lane.c); PH_EBADFRAME when
 * the client's counters make no sense, PH_ENOMEM. */
ph_err ph_conn_lane_open(ph_conn *c, uint32_t ring, ph_lane_offer *offer,
                         char *why, size_t cap);
void ph_conn_lane_close(ph_conn *c);
ph_err ph_conn_lane_take(ph_conn *c, const ph_frame *f, int in_place,
                         ph_frame *out, uint64_t *end, char *why, size_t cap);
ph_err ph_conn_lane_outgoing(ph_conn *c);
/* c->lock held: queue a frame for c whose payload goes straight into c's
 * ring, the one copy it gets: head is the frame's header and route
 * (head_len bytes; its length field and flags are rewritten), payload the
 * plen bytes, possibly in another client's ring. Only when nothing waits
 * ahead of it (c's send queue and inbox empty, no payload waiting for
 * room), the payload goes to c's lane at all, and the ring has room now;
 * otherwise PH_EAGAIN and nothing changed: the caller queues the frame
 * whole (the ring's order is the pipe's). PH_ENOMEM likewise changes
 * nothing. The caller sees that c gets written (attention, a kick). */
ph_err ph_conn_lane_direct(ph_conn *c, const uint8_t *head, uint32_t head_len,
                           const uint8_t *payload, uint32_t plen);
/* c->lock held, by c's reader: answer c's sys.echo request f (its payload
 * still in c's ring) with the payload written straight into c's other
 * ring (ph_conn_lane_direct). PH_OK: answered; else nothing changed and
 * the router answers it. */
ph_err ph_conn_lane_echo(ph_conn *c, const ph_frame *f);
/* List helpers (srv->lock held). */
void ph_list_push(ph_conn_list *l, ph_conn *c);
void ph_list_remove(ph_conn_list *l, ph_conn *c);

#endif
