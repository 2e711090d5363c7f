/* Where pipehubd finds its config file, and loading it.
 *
 * One rule for every verb (run, service, check-config, install, status,
 * reload): an explicit path must name a file that exists; without one the
 * file is pipehub.ini beside pipehubd.exe, and when that file does not exist
 * the daemon runs on the built-in defaults. The default is looked up at each
 * start, so a file created beside the executable later takes effect at the
 * next start without reinstalling the service. */
#ifndef PH_DAEMON_CONFIG_H
#define PH_DAEMON_CONFIG_H

#include <windows.h>

#include "config.h"
#include "err.h"
#include "options.h"

#define PH_DEFAULT_CONFIG_NAME "pipehub.ini"

/* The full path of the running pipehubd.exe in out (cap wide characters).
 * PH_EINVAL when it does not fit. */
ph_err ph_daemon_exe_path(wchar_t *out, size_t cap);

/* The default config file: pipehub.ini in the directory of pipehubd.exe. */
ph_err ph_daemon_default_config(char *out, size_t cap);

/* path made absolute (against the current directory) in out. */
ph_err ph_daemon_full_path(const char *path, char *out, size_t cap);

/* 1 when path names an existing file (not a directory). */
int ph_daemon_file_exists(const char *path);

/* Load the settings for a daemon.
 *
 * explicit_path is --config or NULL. On PH_OK *out holds the defaults
 * overlaid with the file, and used (cap bytes) the absolute path of the file
 * that was read, or "" when there was none and the built-in defaults apply.
 * PH_ENOTFOUND: the explicit file does not exist or cannot be read.
 * PH_EINVAL: the file has problems, each passed to report as
 * "file:line: message". *out and used are written only on PH_OK. */
ph_err ph_daemon_config_load(const char *explicit_path, ph_options *out,
                             char *used, size_t cap, ph_config_report report,
                             void *ctx);

#endif
