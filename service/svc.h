/* Running pipehubd under the Service Control Manager.
 *
 * The SCM launches the command line that `pipehubd install` wrote:
 *
 *   "C:\...\pipehubd.exe" service --name NAME [--config "C:\...\x.ini"]
 *
 * and main hands over to ph_svc_run, which connects to the SCM. The service's
 * life (config, START_PENDING, RUNNING, reloads, STOP_PENDING, STOPPED) is in
 * svc.c; the verbs that drive it from a console are in svc_install.c. */
#ifndef PH_SVC_H
#define PH_SVC_H

#include <windows.h>

/* Longest service name pipehubd accepts (Windows allows 256). */
#define PH_SVC_NAME_MAX 80
#define PH_SVC_DEFAULT_NAME "pipehub"

/* The service-specific exit codes a failed start reports with STOPPED
 * (dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR). Each failure is also
 * written to the Event Log with the reason. */
enum {
    PH_SVC_EXIT_CONFIG_INVALID = 1, /* the config file has problems */
    PH_SVC_EXIT_CONFIG_MISSING = 2, /* --config names no readable file */
    PH_SVC_EXIT_SERVER = 3,         /* the server did not start (pipe name
                                       served by another process, bad sddl,
                                       out of resources) */
    PH_SVC_EXIT_SETUP = 4           /* the service could not set itself up */
};

/* A sentence for one of the codes above ("the config file has problems"). */
const char *ph_svc_exit_text(DWORD code);

/* 1 when name is a usable service name: 1..PH_SVC_NAME_MAX of A-Z a-z 0-9
 * '-' '_' '.', so it can go unquoted into a command line and a registry key
 * path. */
int ph_svc_name_ok(const char *name);

/* Connect to the SCM and run service name until it stops. config is --config
 * or NULL (the default file beside pipehubd.exe). Returns the process exit
 * code: 0 after a clean stop, a PH_SVC_EXIT_* code after a failed start, or
 * -1 when the process was not started by the SCM (someone ran `pipehubd
 * service` in a console), in which case nothing has been done. */
int ph_svc_run(const char *name, const char *config);

#endif
