/* Logging for the daemon: one line per event, with a timestamp and level.
 * Console mode writes to stderr. Payloads are never logged. */
#ifndef PH_LOG_H
#define PH_LOG_H

typedef enum ph_log_level {
    PH_LOG_ERROR,
    PH_LOG_WARN,
    PH_LOG_INFO,
    PH_LOG_DEBUG
} ph_log_level;

void ph_log_set_level(ph_log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void ph_log(ph_log_level level, const char *fmt, ...);

#endif
