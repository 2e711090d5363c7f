/* The daemon's settings and the one table that describes them.
 *
 * Each setting is one row: its INI section and key, type, bounds, default,
 * whether it can change while the server runs, and where it lands in
 * ph_options. The INI loader (config.c), the command-line flags of
 * `pipehubd run`, docs/CONFIG.md and the shipped config/pipehub.ini all follow
 * this table; a unit test fails when they disagree. Portable: no system
 * headers. */
#ifndef PH_OPTIONS_H
#define PH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "names.h"

#define PH_SDDL_MAX 1024
#define PH_PATH_MAX 1024

/* [route.NAME] sections: per-route settings. NAME is a route or a prefix
 * pattern ("billing.*"); the most specific section applies. */
#define PH_ROUTE_SECTIONS_MAX 32
#define PH_ROUTE_SECTION_NAME_MAX 191 /* an INI line holds 198 characters */

/* A resolved access list: SIDs separated by commas; "" when not set. */
#define PH_RULE_LIST_MAX 512
/* The SCM's limit on a service name. */
#define PH_SERVICE_NAME_MAX 256

typedef struct ph_route_section {
    char name[PH_ROUTE_SECTION_NAME_MAX + 1];
    uint32_t request_timeout_ms; /* 0: [limits] request_timeout_ms */
    char call[PH_RULE_LIST_MAX];      /* who may send requests to it */
    char provide[PH_RULE_LIST_MAX];   /* who may register it */
    char publish[PH_RULE_LIST_MAX];   /* who may publish events on it */
    char subscribe[PH_RULE_LIST_MAX]; /* who may receive its events */
    uint32_t min_integrity;      /* integrity RID required; 0: none */
    /* Activation: the Windows service started for a request nobody serves
     * ("" for none), how long it has to register (0: 25000 ms), and the
     * line that named it (for check-config's warning). */
    char activate_service[PH_SERVICE_NAME_MAX + 1];
    uint32_t activate_timeout_ms;
    unsigned activate_line;
} ph_route_section;

typedef struct ph_options {
    /* [server] */
    char pipe_name[PH_PIPE_PATH_MAX + 1]; /* always the full \\.\pipe\ path */
    uint32_t worker_threads;     /* 0 = one per CPU */
    uint32_t pending_instances;  /* listening instances kept ready */
    uint32_t max_connections;    /* clients served at once */
    uint32_t max_frame_bytes;    /* largest frame accepted or sent */
    /* [limits] */
    uint32_t send_queue_bytes;   /* queued replies before reading pauses */
    uint32_t idle_timeout_ms;    /* close a silent client; 0 = never */
    uint32_t request_timeout_ms; /* for requests forwarded to providers */
    uint32_t max_inflight_per_client; /* forwarded requests per client */
    uint32_t first_frame_timeout_ms; /* a new client's first whole frame */
    uint32_t frame_timeout_ms;   /* a frame begun must end within this */
    uint32_t send_stall_timeout_ms; /* full output queue not read */
    uint32_t max_queued_bytes;   /* output queued for all clients */
    uint32_t max_connections_per_user; /* per account (SID) */
    uint32_t max_routes_per_client;
    uint32_t max_subscriptions_per_client;
    /* [lane] (applied to lanes set up from then on) */
    uint32_t lane_enabled;       /* 0/1: sys.lane is offered */
    uint32_t lane_max_bytes;     /* largest ring a client may ask for */
    uint32_t lane_threshold_bytes; /* payloads from this size use the lane */
    uint32_t lane_max_total_bytes; /* all lanes' sections together */
    /* [security] */
    char sddl[PH_SDDL_MAX];      /* the pipe's security descriptor */
    uint32_t allow_remote;       /* 0/1: accept clients from other hosts */
    /* [log] */
    uint32_t log_level;          /* ph_log_level: 0 error .. 3 debug */
    char log_file[PH_PATH_MAX];  /* "" = no file log */
    uint32_t log_max_file_bytes; /* rotate the file log past this size */
    uint32_t log_keep_files;     /* rotated files kept */
    uint32_t log_event_log;      /* 0/1: also write to the Windows Event Log */
    /* [route.NAME] sections, in file order; all live */
    ph_route_section routes[PH_ROUTE_SECTIONS_MAX];
    uint32_t nroutes;
} ph_options;

typedef enum ph_opt_type {
    PH_OPT_U32,   /* whole number in [min, max] */
    PH_OPT_BOOL,  /* true/false, yes/no, on/off, 1/0 */
    PH_OPT_LEVEL, /* error, warn, info, debug */
    PH_OPT_PIPE,  /* a local pipe name */
    PH_OPT_STR    /* text of at most max bytes */
} ph_opt_type;

typedef struct ph_option_def {
    const char *section;   /* INI section */
    const char *key;       /* INI key */
    ph_opt_type type;
    uint32_t min, max;     /* bounds for PH_OPT_U32; max length for STR */
    const char *def;       /* default, as it is written in the INI file */
    int live;              /* 1: a reload applies it without a restart */
    size_t offset;         /* into ph_options */
    const char *help;      /* one line for usage, the INI file and docs */
} ph_option_def;

/* The table, terminated by a row whose key is NULL. */
extern const ph_option_def ph_option_defs[];

/* Look a row up by key alone (keys are unique across sections), or by
 * section and key; NULL when there is none. */
const ph_option_def *ph_option_find(const char *key);
const ph_option_def *ph_option_find_in(const char *section, const char *key);

/* Fill o with every default. */
void ph_options_defaults(ph_options *o);

/* Set the row d from its text value. On failure o is unchanged and why (if
 * not NULL) gets a one-line reason naming the key and what is allowed. */
ph_err ph_option_set(ph_options *o, const ph_option_def *d, const char *value,
                     char *why, size_t why_cap);

/* The same, by key. */
ph_err ph_options_set(ph_options *o, const char *key, const char *value,
                      char *why, size_t why_cap);

/* 1 when a and b hold the same value for row d. */
int ph_option_equal(const ph_option_def *d, const ph_options *a,
                    const ph_options *b);

/* Write row d's value in o as INI text into out. */
void ph_option_format(const ph_option_def *d, const ph_options *o, char *out,
                      size_t cap);

#endif
