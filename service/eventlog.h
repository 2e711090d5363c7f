/* The Windows Event Log for a pipehubd service.
 *
 * Each installed service has its own event source, named like the service,
 * so instances installed side by side are told apart in Event Viewer. The
 * source is registered at install (a key under
 * HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application) and removed
 * at uninstall. While the service runs, the writer below is the log sink
 * (server/log.h): start, stop, config errors and faults land in the
 * Application log.
 *
 * Every record uses event id PH_EVENT_MESSAGE, whose entry in pipehubd.exe's
 * message table (service/pipehubd.rc) is just "%1": Event Viewer shows the
 * line as it was logged. A build without that resource still logs; Event
 * Viewer then prefixes the text with "The description for Event ID 1 ...
 * cannot be found". */
#ifndef PH_EVENTLOG_H
#define PH_EVENTLOG_H

#include <windows.h>

#include "err.h"
#include "log.h"

/* The one event id; its message table entry is "%1". */
#define PH_EVENT_MESSAGE 1

/* Create or update the source's registry key: EventMessageFile = exe (the
 * file holding the message table), TypesSupported = error, warning and
 * information. Needs an elevated caller. */
ph_err ph_eventlog_register(const wchar_t *source, const wchar_t *exe);

/* Delete the source's key. PH_ENOTFOUND when there was none. */
ph_err ph_eventlog_unregister(const wchar_t *source);

/* 1 when the source's key exists. */
int ph_eventlog_registered(const wchar_t *source);

/* Open a handle for writing records as source; NULL on failure. Pass it as
 * the ctx of ph_eventlog_sink, and close it with ph_eventlog_close after the
 * sink has been removed (ph_log_set_sink(NULL, NULL)). */
HANDLE ph_eventlog_open(const wchar_t *source);
void ph_eventlog_close(HANDLE log);

/* A ph_log_sink: one record per line. ERROR -> error, WARN -> warning,
 * anything else -> information. */
void ph_eventlog_sink(void *ctx, ph_log_level level, const char *msg);

#endif
