/* The pipe server: what service/ uses to run one. */
#ifndef PH_SERVER_H
#define PH_SERVER_H

#include <stdint.h>

#include "err.h"
#include "options.h"

typedef struct ph_server ph_server;

/* Called while a stop drains, at least every 500 ms, so a service can
 * advance its STOP_PENDING checkpoint. */
typedef void (*ph_progress_fn)(void *ctx);

/* Create the completion port, the worker threads and the pending pipe
 * instances, and return once the pipe name is being served. The caller
 * applies opts' [log] settings first (ph_log_configure); a reload applies
 * them again itself. Fails (with a
 * logged reason) when another process already serves the name or the
 * security descriptor is invalid. config_path is the INI file the settings
 * came from ("" for built-in defaults); reloads read it again. On success
 * *out owns the running server. */
ph_err ph_server_start(const ph_options *opts, const char *config_path,
                       ph_server **out);

/* Stop accepting, tell every client the server is stopping (an EVENT on
 * route sys.shutdown), close every connection, wait until each one's
 * completions have drained, join the workers and free everything. progress
 * may be NULL. */
void ph_server_stop(ph_server *srv, ph_progress_fn progress, void *ctx);

/* Re-read the config file and swap in what can change live, without
 * dropping a client. Settings that need a restart are logged and keep their
 * value. An invalid file changes nothing; every problem is logged. Returns
 * PH_OK when the file was applied. Safe to call from any thread. */
ph_err ph_server_reload(ph_server *srv);

/* Let config files name accounts and groups in [route.NAME] access lists
 * (config.h ph_config_set_resolver). Call once before loading a file. */
void ph_server_init_config(void);

/* Which config generation is running (1 at start, +1 per applied reload). */
uint32_t ph_server_generation(ph_server *srv);

#endif
