/* The pipe server: what service/ uses to run one. */
#ifndef PH_SERVER_H
#define PH_SERVER_H

#include "err.h"
#include "options.h"

typedef struct ph_server ph_server;

/* Create the completion port, the worker threads and the pending pipe
 * instances, and return once the pipe name is being served. Fails (with a
 * logged reason) when another process already serves the name. On success
 * *out owns the running server. */
ph_err ph_server_start(const ph_options *opts, ph_server **out);

/* Stop accepting, close every connection, wait until each one's completions
 * have drained, join the workers and free everything. */
void ph_server_stop(ph_server *srv);

#endif
