/* pipehubd: the daemon's entry point.
 *
 *   pipehubd run [--pipe NAME] [--threads N] [--instances N] [--max-frame B]
 *
 * runs the server in the console until Ctrl+C or Ctrl+Break. (Running under
 * the Service Control Manager comes with the service work; see README.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "log.h"
#include "options.h"
#include "server.h"

static HANDLE stop_event;
static HANDLE stopped_event;

/* Flags of `run`, each mapped onto a row of the settings table so that
 * bounds and messages are the table's. */
static const struct {
    const char *flag;
    const char *key;
} run_flags[] = {
    {"--pipe", "pipe_name"},
    {"--threads", "worker_threads"},
    {"--instances", "pending_instances"},
    {"--max-frame", "max_frame_bytes"},
};

static void usage(FILE *to)
{
    const ph_option_def *d;
    size_t i;

    fprintf(to, "usage: pipehubd run [options]\n"
                "  Serve pipehub clients in this console until Ctrl+C.\n\n"
                "options:\n");
    for (i = 0; i < sizeof run_flags / sizeof run_flags[0]; i++) {
        d = ph_option_find(run_flags[i].key);
        fprintf(to, "  %-12s %s (default %s", run_flags[i].flag, d->help,
                d->def);
        if (d->type == PH_OPT_U32)
            fprintf(to, ", %u..%u", (unsigned)d->min, (unsigned)d->max);
        fprintf(to, ")\n");
    }
}

/* Runs on a thread of its own that the console creates. Returning TRUE keeps
 * the default handler (ExitProcess) away, so the main thread can drain and
 * return normally. For a console close the process dies when this returns,
 * so it waits for the stop to finish first. */
static BOOL WINAPI on_console_event(DWORD type)
{
    switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
        SetEvent(stop_event);
        return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        SetEvent(stop_event);
        WaitForSingleObject(stopped_event, 5000);
        return TRUE;
    default:
        return FALSE;
    }
}

static int parse_run(int argc, char **argv, ph_options *o)
{
    char why[400];
    int i;
    size_t k;

    ph_options_defaults(o);
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        for (k = 0; k < sizeof run_flags / sizeof run_flags[0]; k++) {
            if (strcmp(argv[i], run_flags[k].flag) == 0)
                break;
        }
        if (k == sizeof run_flags / sizeof run_flags[0]) {
            fprintf(stderr, "pipehubd: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pipehubd: %s needs a value\n", argv[i]);
            return 2;
        }
        if (ph_options_set(o, run_flags[k].key, argv[i + 1], why, sizeof why) !=
            PH_OK) {
            fprintf(stderr, "pipehubd: %s: %s\n", argv[i], why);
            return 2;
        }
        i++;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    ph_options opts;
    ph_server *srv;
    int rc;

    rc = parse_run(argc, argv, &opts);
    if (rc != 0)
        return rc;
    stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    stopped_event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (stop_event == NULL || stopped_event == NULL ||
        !SetConsoleCtrlHandler(on_console_event, TRUE)) {
        fprintf(stderr, "pipehubd: cannot set up the console (error %lu)\n",
                GetLastError());
        return 1;
    }
    if (ph_server_start(&opts, &srv) != PH_OK)
        return 1; /* the reason is logged */
    ph_log(PH_LOG_INFO, "press Ctrl+C to stop");
    WaitForSingleObject(stop_event, INFINITE);
    ph_server_stop(srv);
    SetEvent(stopped_event);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return run(argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2)
        fprintf(stderr, "pipehubd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
