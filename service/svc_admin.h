/* The verbs an administrator runs in a console to install and drive a
 * pipehubd service: install, uninstall, start, stop, status, reload.
 *
 * They use the SCM API only (no sc.exe), print what they did or why they
 * could not, and return the process exit code: 0 done, 1 failed (the
 * service does not exist, access denied, it failed to start, ...), 2 bad
 * usage or a config file with problems. */
#ifndef PH_SVC_ADMIN_H
#define PH_SVC_ADMIN_H

#include <stddef.h>
#include <windows.h>

typedef struct ph_svc_args {
    const char *name;    /* --name; PH_SVC_DEFAULT_NAME when not given */
    const char *config;  /* --config, or NULL for the default file */
    const char *start;   /* --start: auto, delayed or demand; NULL = auto */
    const char *account; /* --account, or NULL for LocalSystem */
} ph_svc_args;

/* CreateService with display name, description, the command line that
 * runs `pipehubd service`, failure actions, preshutdown timeout, delayed
 * start when asked, and the service's event source. All or nothing: a step
 * that fails undoes the ones before. */
int ph_admin_install(const ph_svc_args *a);

/* Stop the service (bounded wait for STOPPED), delete it and its event
 * source. Refuses a service that does not run `pipehubd service`. */
int ph_admin_uninstall(const ph_svc_args *a);

/* StartService, then wait (bounded) for RUNNING or STOPPED. */
int ph_admin_start(const ph_svc_args *a);

/* SERVICE_CONTROL_STOP, then wait (bounded) for STOPPED. */
int ph_admin_stop(const ph_svc_args *a);

/* State, pid, pipe (from the service's config file), config, start type,
 * account, and the exit code of a failed run. */
int ph_admin_status(const ph_svc_args *a);

/* Check the service's config file, then send SERVICE_CONTROL_PARAMCHANGE.
 * The service reloads on its own thread and logs the outcome. */
int ph_admin_reload(const ph_svc_args *a);

/* Shared with the installer's verbs (svc_msi.c). */

/* "auto", "delayed" or "demand" (NULL = auto) as a start type; -1 for
 * anything else. */
int ph_admin_parse_start(const char *start, DWORD *type, int *delayed);

/* The command line `install` gives a service: "EXE" service --name NAME
 * [--config "CONFIG"], the program quoted (an unquoted path with spaces
 * would let C:\Program.exe run instead). -1 when it does not fit. */
int ph_admin_command_line(const wchar_t *exe, const wchar_t *name,
                          const wchar_t *config, wchar_t *out, size_t cap);

/* The description `install` gives a service: what it is, its settings file
 * (config, or NULL for the default) and how to reload it. -1 when it does
 * not fit in cap wide characters. */
int ph_admin_description(const wchar_t *name, const wchar_t *config,
                         wchar_t *out, size_t cap);

/* What CreateService does not set: the description, failure actions
 * (restart after 5 s, 10 s, 30 s), preshutdown timeout and, when *delayed,
 * delayed auto-start (cleared where the system has none). 0, or -1 with
 * the failed step's name in *step (GetLastError). */
int ph_admin_configure(SC_HANDLE svc, const wchar_t *description, int *delayed,
                       const char **step);

#endif
