#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <windows.h>

/* One lock for everything below: the level is read without it (a word). */
static SRWLOCK log_lock = SRWLOCK_INIT;
static volatile LONG current_level = PH_LOG_INFO;
static int console_on = 1;
static ph_log_sink sink;
static void *sink_ctx;
static int sink_on = 1;
static FILE *log_file;
static char log_path[PH_PATH_MAX];
static uint64_t log_size;
static uint64_t log_max = 10u * 1024u * 1024u;
static unsigned log_keep = 5;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void ph_log_set_level(ph_log_level level) { current_level = (LONG)level; }

void ph_log_console(int on) { console_on = on; }

void ph_log_set_sink(ph_log_sink fn, void *ctx)
{
    AcquireSRWLockExclusive(&log_lock);
    sink = fn;
    sink_ctx = ctx;
    ReleaseSRWLockExclusive(&log_lock);
}

/* log_lock held. name -> name.1 -> ... -> name.keep; the oldest goes. */
static void rotate(void)
{
    char from[PH_PATH_MAX + 16], to[PH_PATH_MAX + 16];
    unsigned i;

    fclose(log_file);
    log_file = NULL;
    if (log_keep == 0) {
        DeleteFileA(log_path);
    } else {
        for (i = log_keep; i > 1; i--) {
            snprintf(from, sizeof from, "%s.%u", log_path, i - 1);
            snprintf(to, sizeof to, "%s.%u", log_path, i);
            MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING);
        }
        snprintf(to, sizeof to, "%s.1", log_path);
        MoveFileExA(log_path, to, MOVEFILE_REPLACE_EXISTING);
    }
    log_file = fopen(log_path, "ab");
    log_size = 0;
}

static void emit(ph_log_level level, int to_sink, const char *fmt, va_list ap)
{
    char line[1024];
    SYSTEMTIME t;
    int head, n;

    if ((LONG)level > current_level)
        return;
    GetLocalTime(&t);
    head = snprintf(line, sizeof line,
                    "%04u-%02u-%02u %02u:%02u:%02u.%03u %-5s ", t.wYear,
                    t.wMonth, t.wDay, t.wHour, t.wMinute, t.wSecond,
                    t.wMilliseconds, level_names[level]);
    n = vsnprintf(line + head, sizeof line - (size_t)head, fmt, ap);
    if (n < 0)
        n = 0;
    /* Room is kept for the CR LF the console write adds. */
    if ((size_t)(head + n) + 2 >= sizeof line)
        n = (int)(sizeof line - 3) - head;
    /* One write per line under a lock, so lines from workers never mix. */
    AcquireSRWLockExclusive(&log_lock);
    if (console_on) {
        /* One WriteFile for the whole line: stderr is unbuffered, and the
         * C runtime writes a character device (a console, or /dev/null
         * under Wine) a character at a time, which cost 45 us a byte under
         * Wine, under this lock, often with a connection's lock held. */
        DWORD done;
        line[head + n] = '\r';
        line[head + n + 1] = '\n';
        if (!WriteFile(GetStdHandle(STD_ERROR_HANDLE), line,
                       (DWORD)(head + n + 2), &done, NULL))
            (void)done;
        line[head + n] = '\0';
    }
    if (log_file != NULL) {
        if (log_size + (uint64_t)(head + n) + 2 > log_max)
            rotate();
        if (log_file != NULL) {
            fprintf(log_file, "%s\r\n", line);
            fflush(log_file);
            log_size += (uint64_t)(head + n) + 2;
        }
    }
    if (sink != NULL && sink_on && (to_sink || level == PH_LOG_ERROR))
        sink(sink_ctx, level, line + head);
    ReleaseSRWLockExclusive(&log_lock);
}

void ph_log(ph_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level, 0, fmt, ap);
    va_end(ap);
}

void ph_log_event(ph_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level, 1, fmt, ap);
    va_end(ap);
}

ph_err ph_log_configure(const ph_options *o)
{
    FILE *f = NULL;
    int changed;

    ph_log_set_level((ph_log_level)o->log_level);
    AcquireSRWLockExclusive(&log_lock);
    log_max = o->log_max_file_bytes;
    log_keep = o->log_keep_files;
    sink_on = o->log_event_log != 0;
    changed = strcmp(log_path, o->log_file) != 0;
    ReleaseSRWLockExclusive(&log_lock);
    if (!changed)
        return PH_OK;
    if (o->log_file[0] != '\0') {
        f = fopen(o->log_file, "ab");
        if (f == NULL) {
            ph_log_event(PH_LOG_ERROR, "cannot open the log file %s; keeping "
                         "the previous log", o->log_file);
            return PH_ENOTFOUND;
        }
    }
    AcquireSRWLockExclusive(&log_lock);
    if (log_file != NULL)
        fclose(log_file);
    log_file = f;
    snprintf(log_path, sizeof log_path, "%s", o->log_file);
    log_size = 0;
    if (f != NULL) {
        fseek(f, 0, SEEK_END);
        log_size = (uint64_t)ftell(f);
    }
    ReleaseSRWLockExclusive(&log_lock);
    return PH_OK;
}

void ph_log_shutdown(void)
{
    AcquireSRWLockExclusive(&log_lock);
    if (log_file != NULL)
        fclose(log_file);
    log_file = NULL;
    log_path[0] = '\0';
    ReleaseSRWLockExclusive(&log_lock);
}

/* The one rate limit for lines about limits that fired, the server's own
 * and the hub's (PH_HUB_LOG_LIMITED): a burst of 20, then 5 a second. */
int ph_log_limit_allow(void)
{
    static volatile LONG64 window;   /* the second being counted */
    static volatile LONG used;       /* lines written in it */
    static volatile LONG suppressed; /* lines refused since the last one */
    LONG64 now = (LONG64)(GetTickCount64() / 1000u), w = window;
    LONG n;

    if (now != w && InterlockedCompareExchange64(&window, now, w) == w)
        InterlockedExchange(&used, now - w > 4 ? -15 : 0); /* burst 20 */
    if (InterlockedIncrement(&used) > 5) {
        InterlockedIncrement(&suppressed);
        return 0;
    }
    n = InterlockedExchange(&suppressed, 0);
    if (n > 0)
        ph_log(PH_LOG_WARN, "%ld more limit messages were not logged (rate "
               "limit)", (long)n);
    return 1;
}
