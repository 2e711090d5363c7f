#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <windows.h>

static volatile LONG current_level = PH_LOG_INFO;
static SRWLOCK log_lock = SRWLOCK_INIT;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void ph_log_set_level(ph_log_level level) { current_level = level; }

void ph_log(ph_log_level level, const char *fmt, ...)
{
    char line[1024];
    SYSTEMTIME t;
    va_list ap;
    int n;

    if ((LONG)level > current_level)
        return;
    GetLocalTime(&t);
    n = snprintf(line, sizeof line, "%04u-%02u-%02u %02u:%02u:%02u.%03u %-5s ",
                 t.wYear, t.wMonth, t.wDay, t.wHour, t.wMinute, t.wSecond,
                 t.wMilliseconds, level_names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line under a lock, so lines from workers never mix. */
    AcquireSRWLockExclusive(&log_lock);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    ReleaseSRWLockExclusive(&log_lock);
}
