/* Logging for the daemon: one line per event, with a timestamp and level.
 *
 * Lines go to the console (stderr, in `run` mode), to a size-rotated file
 * when [log] file is set, and, for ERROR lines and lines written with
 * ph_log_event, to one extra sink (the service registers the Windows Event
 * Log there). Connection-level lines name the client's process id. Payloads
 * are never logged. */
#ifndef PH_LOG_H
#define PH_LOG_H

#include <stdint.h>

#include "err.h"
#include "options.h"

typedef enum ph_log_level {
    PH_LOG_ERROR,
    PH_LOG_WARN,
    PH_LOG_INFO,
    PH_LOG_DEBUG
} ph_log_level;

/* Receives a line (without timestamp or newline) for the event sink. */
typedef void (*ph_log_sink)(void *ctx, ph_log_level level, const char *msg);

/* Apply [log] settings: level and file (opened for append, rotated when it
 * would pass max_file_bytes: name.1 .. name.keep_files). Called at start and
 * again on every reload. A file that cannot be opened is logged and the
 * previous file (if any) stays. */
ph_err ph_log_configure(const ph_options *o);

/* Console output on (the default) or off (the service has no console). */
void ph_log_console(int on);

/* Set the event sink (NULL to remove). */
void ph_log_set_sink(ph_log_sink sink, void *ctx);

void ph_log_set_level(ph_log_level level);

/* Close the file log. */
void ph_log_shutdown(void);

#if defined(__GNUC__)
#define PH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PH_PRINTF(a, b)
#endif

/* The one rate limit for log lines about limits that fired (the server's
 * and the hub's): 1 when this line may be written. A burst of 20, then 5 a
 * second; the first line allowed after a refusal says how many were not
 * written. */
int ph_log_limit_allow(void);

void ph_log(ph_log_level level, const char *fmt, ...) PH_PRINTF(2, 3);

/* Log and also send to the event sink: service start and stop, config
 * errors, faults. */
void ph_log_event(ph_log_level level, const char *fmt, ...) PH_PRINTF(2, 3);

#endif
