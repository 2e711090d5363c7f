#include "eventlog.h"

#include <stdio.h>
#include <string.h>

#include "win_error.h"
#include "wintext.h"

#define SOURCES_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\"
#define KEY_MAX 512
#define RECORD_MAX 2048 /* wide characters of one record's text */

static ph_err source_key(const wchar_t *source, wchar_t *out, size_t cap)
{
    static const wchar_t prefix[] = SOURCES_KEY;
    size_t n = wcslen(source), p = wcslen(prefix);

    if (n == 0 || p + n + 1 > cap)
        return PH_EINVAL;
    memcpy(out, prefix, p * sizeof(wchar_t));
    memcpy(out + p, source, (n + 1) * sizeof(wchar_t));
    return PH_OK;
}

ph_err ph_eventlog_register(const wchar_t *source, const wchar_t *exe)
{
    wchar_t path[KEY_MAX];
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE |
                  EVENTLOG_INFORMATION_TYPE;
    HKEY key = NULL;
    LSTATUS rc;

    if (source_key(source, path, KEY_MAX) != PH_OK)
        return PH_EINVAL;
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, path, 0, NULL,
                         REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, NULL, &key,
                         NULL);
    if (rc != ERROR_SUCCESS)
        return ph_win_err((DWORD)rc);
    /* REG_EXPAND_SZ is what Event Viewer expects for message files. */
    rc = RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ,
                        (const BYTE *)exe,
                        (DWORD)((wcslen(exe) + 1) * sizeof(wchar_t)));
    if (rc != ERROR_SUCCESS)
        goto fail;
    rc = RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD,
                        (const BYTE *)&types, sizeof types);
    if (rc != ERROR_SUCCESS)
        goto fail;
    RegCloseKey(key);
    return PH_OK;

fail:
    RegCloseKey(key);
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, path);
    return ph_win_err((DWORD)rc);
}

ph_err ph_eventlog_unregister(const wchar_t *source)
{
    wchar_t path[KEY_MAX];
    LSTATUS rc;

    if (source_key(source, path, KEY_MAX) != PH_OK)
        return PH_EINVAL;
    /* The key has values only, no subkeys, so RegDeleteKeyW is enough. */
    rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, path);
    return rc == ERROR_SUCCESS ? PH_OK : ph_win_err((DWORD)rc);
}

int ph_eventlog_registered(const wchar_t *source)
{
    wchar_t path[KEY_MAX];
    HKEY key;

    if (source_key(source, path, KEY_MAX) != PH_OK)
        return 0;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, KEY_QUERY_VALUE, &key) !=
        ERROR_SUCCESS)
        return 0;
    RegCloseKey(key);
    return 1;
}

HANDLE ph_eventlog_open(const wchar_t *source)
{
    return RegisterEventSourceW(NULL, source);
}

void ph_eventlog_close(HANDLE log)
{
    if (log != NULL)
        DeregisterEventSource(log);
}

void ph_eventlog_sink(void *ctx, ph_log_level level, const char *msg)
{
    wchar_t text[RECORD_MAX];
    const wchar_t *strings[1] = {text};
    WORD type;

    if (ctx == NULL)
        return;
    switch (level) {
    case PH_LOG_ERROR:
        type = EVENTLOG_ERROR_TYPE;
        break;
    case PH_LOG_WARN:
        type = EVENTLOG_WARNING_TYPE;
        break;
    default:
        type = EVENTLOG_INFORMATION_TYPE;
        break;
    }
    /* A line too long for the buffer is logged cut rather than lost. */
    if (ph_wintext_wide(msg, text, RECORD_MAX) != 0) {
        char cut[RECORD_MAX / 2];

        snprintf(cut, sizeof cut, "%s", msg);
        if (ph_wintext_wide(cut, text, RECORD_MAX) != 0)
            return;
    }
    /* Nothing useful can be done when the Event Log refuses a record: the
     * line has gone to the file log as well. */
    ReportEventW((HANDLE)ctx, type, 0, PH_EVENT_MESSAGE, NULL, 1, 0, strings,
                 NULL);
}
