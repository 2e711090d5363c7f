/* pipehubd: the daemon's entry point and its verbs.
 *
 *   run            serve in this console until Ctrl+C or Ctrl+Break
 *   check-config   report every problem in a config file
 *   install, uninstall, start, stop, status, reload
 *                  manage a Windows service (svc_admin.c)
 *   service        what the SCM runs (svc.c); not for a console
 *
 * One binary does all of it. The SCM's command line names the `service`
 * verb, so the console verbs never try to reach the SCM, and a `service`
 * run from a console is told so instead of hanging in the dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "daemon_config.h"
#include "log.h"
#include "options.h"
#include "server.h"
#include "svc.h"
#include "svc_admin.h"
#include "svc_msi.h"

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
#define RUN_FLAG_COUNT (sizeof run_flags / sizeof run_flags[0])

static void usage(FILE *to)
{
    const ph_option_def *d;
    size_t i;

    fprintf(to,
        "usage: pipehubd COMMAND [options]\n"
        "\n"
        "  run [--config PATH] [run options]\n"
        "      Serve pipehub clients in this console until Ctrl+C. Options\n"
        "      override the config file.\n"
        "  check-config [FILE]\n"
        "      Print every problem in FILE; exit 2 if there is any.\n"
        "  install [--name NAME] [--config PATH] [--start auto|delayed|demand]\n"
        "          [--account ACCOUNT]\n"
        "      Install a Windows service (elevated prompt). Default: start\n"
        "      auto, account LocalSystem; \"NT SERVICE\\NAME\" runs it under\n"
        "      its own virtual account.\n"
        "  uninstall [--name NAME]     stop the service and remove it\n"
        "  start [--name NAME]         start it and wait until it runs\n"
        "  stop [--name NAME]          stop it and wait until it has stopped\n"
        "  status [--name NAME]        state, pid, pipe and config\n"
        "  reload [--name NAME]        re-read its config file (PARAMCHANGE)\n"
        "  service --name NAME [--config PATH]\n"
        "      Run as that service; only the Service Control Manager does\n"
        "      this.\n"
        "\n"
        "NAME defaults to " PH_SVC_DEFAULT_NAME ". The config file defaults to "
        PH_DEFAULT_CONFIG_NAME " beside\n"
        "pipehubd.exe; without one the built-in defaults apply.\n"
        "\n"
        "run options:\n");
    for (i = 0; i < RUN_FLAG_COUNT; i++) {
        d = ph_option_find(run_flags[i].key);
        if (d == NULL)
            continue;
        fprintf(to, "  %-12s %s (default %s", run_flags[i].flag, d->help,
                d->def);
        if (d->type == PH_OPT_U32)
            fprintf(to, ", %u..%u", (unsigned)d->min, (unsigned)d->max);
        fprintf(to, ")\n");
    }
    fprintf(to, "\nExit codes: 0 ok, 1 failed, 2 bad usage or config "
                "problems.\n");
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 ||
           strcmp(arg, "help") == 0 || strcmp(arg, "/?") == 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "pipehubd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(pipehubd --help lists the commands and options)\n");
    return 2;
}

/* ---- config problems ----------------------------------------------------- */

static void print_problem(void *ctx, const char *message)
{
    unsigned *count = ctx;

    fprintf(stderr, "%s\n", message);
    if (count)
        (*count)++;
}

/* A [route.NAME] activate_service that names no installed service is a
 * warning, not an error: it may be installed after the config. */
static void check_services(const char *path, const ph_options *o)
{
    SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT), svc;
    uint32_t i;

    if (scm == NULL)
        return;
    for (i = 0; i < o->nroutes; i++) {
        const ph_route_section *r = &o->routes[i];
        if (r->activate_service[0] == '\0')
            continue;
        svc = OpenServiceA(scm, r->activate_service, SERVICE_QUERY_STATUS);
        if (svc != NULL) {
            CloseServiceHandle(svc);
            continue;
        }
        if (GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST)
            fprintf(stderr, "%s:%u: warning: [route.%s] activate_service: no "
                    "service '%s' is installed (yet): calls will get "
                    "UNAVAILABLE until it is\n", path, r->activate_line,
                    r->name, r->activate_service);
    }
    CloseServiceHandle(scm);
}

static int check_config(int argc, char **argv)
{
    char def[PH_PATH_MAX], used[PH_PATH_MAX];
    const char *path;
    unsigned count = 0;
    ph_options opts;
    ph_err err;

    if (argc > 1)
        return usage_error("check-config takes one file, not '%s' too",
                           argv[1]);
    if (argc == 1 && argv[0][0] == '-')
        return usage_error("unknown option '%s'", argv[0]);
    if (argc == 1) {
        path = argv[0];
    } else {
        if (ph_daemon_default_config(def, sizeof def) != PH_OK) {
            fprintf(stderr, "pipehubd: cannot tell where pipehubd.exe is\n");
            return 1;
        }
        if (!ph_daemon_file_exists(def)) {
            printf("%s: not found; pipehubd runs on the built-in defaults\n",
                   def);
            return 0;
        }
        path = def;
    }
    err = ph_daemon_config_load(path, &opts, used, sizeof used, print_problem,
                                &count);
    if (err == PH_OK) {
        check_services(path, &opts);
        printf("%s: ok\n", path);
        return 0;
    }
    if (count == 0)
        fprintf(stderr, "%s: %s\n", path, ph_strerror(err));
    else
        fprintf(stderr, "%s: %u problem%s\n", path, count,
                count == 1 ? "" : "s");
    return 2;
}

/* ---- run: the console ---------------------------------------------------- */

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

/* The settings for `run`: the config file (--config or the default), then
 * the flags on top, in the order given. used gets the file's absolute path
 * ("" for none). Returns 0 or the exit code. */
static int parse_run(int argc, char **argv, ph_options *o, char *used,
                     size_t cap)
{
    const char *config = NULL;
    char why[400];
    unsigned count = 0;
    ph_err err;
    int i;
    size_t k;

    /* The file first, wherever --config stands, so flags override it. */
    for (i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", argv[i]);
            config = argv[++i];
        } else if (i + 1 < argc && argv[i][0] == '-') {
            i++; /* a run flag's value; checked below */
        }
    }
    err = ph_daemon_config_load(config, o, used, cap, print_problem, &count);
    if (err != PH_OK) {
        fprintf(stderr, "pipehubd: not starting: %s\n",
                err == PH_ENOTFOUND ? "the config file cannot be read"
                                    : "the config file has problems");
        return 2;
    }
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        for (k = 0; k < RUN_FLAG_COUNT; k++) {
            if (strcmp(argv[i], run_flags[k].flag) == 0)
                break;
        }
        if (k == RUN_FLAG_COUNT)
            return usage_error("unknown option '%s' for run", argv[i]);
        if (i + 1 >= argc)
            return usage_error("%s needs a value", argv[i]);
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
    char used[PH_PATH_MAX];
    ph_options opts;
    ph_server *srv;
    int rc;

    rc = parse_run(argc, argv, &opts, used, sizeof used);
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
    /* A log file that cannot be opened is logged; the console still gets
     * every line. */
    (void)ph_log_configure(&opts);
    if (ph_server_start(&opts, used, &srv) != PH_OK) {
        ph_log_shutdown();
        return 1; /* the reason is logged */
    }
    ph_log(PH_LOG_INFO, "press Ctrl+C to stop");
    WaitForSingleObject(stop_event, INFINITE);
    ph_server_stop(srv, NULL, NULL);
    ph_log_shutdown();
    SetEvent(stopped_event);
    return 0;
}

/* ---- the service verbs ---------------------------------------------------- */

enum { F_NAME = 1, F_CONFIG = 2, F_START = 4, F_ACCOUNT = 8 };

/* Parse the flags of a service verb; allowed is a mask of F_*. Returns 0 or
 * the exit code. */
static int parse_service_flags(const char *verb, int argc, char **argv,
                               unsigned allowed, ph_svc_args *a)
{
    static const struct {
        const char *flag;
        unsigned bit;
    } flags[] = {
        {"--name", F_NAME},
        {"--config", F_CONFIG},
        {"--start", F_START},
        {"--account", F_ACCOUNT},
    };
    const char **slot;
    int i;
    size_t k;

    memset(a, 0, sizeof *a);
    a->name = PH_SVC_DEFAULT_NAME;
    for (i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            usage(stdout);
            exit(0);
        }
        for (k = 0; k < sizeof flags / sizeof flags[0]; k++) {
            if (strcmp(argv[i], flags[k].flag) == 0 &&
                (allowed & flags[k].bit))
                break;
        }
        if (k == sizeof flags / sizeof flags[0]) {
            fprintf(stderr, "pipehubd: %s does not take '%s'\n", verb,
                    argv[i]);
            fprintf(stderr, "(pipehubd --help lists the commands and "
                            "options)\n");
            return 2;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0')
            return usage_error("%s needs a value", argv[i]);
        switch (flags[k].bit) {
        case F_NAME:    slot = &a->name; break;
        case F_CONFIG:  slot = &a->config; break;
        case F_START:   slot = &a->start; break;
        default:        slot = &a->account; break;
        }
        *slot = argv[++i];
    }
    return 0;
}

static int service(int argc, char **argv)
{
    ph_svc_args a;
    int rc;

    rc = parse_service_flags("service", argc, argv, F_NAME | F_CONFIG, &a);
    if (rc != 0)
        return rc;
    if (!ph_svc_name_ok(a.name)) {
        fprintf(stderr, "pipehubd: '%s' is not a usable service name\n",
                a.name);
        return 2;
    }
    rc = ph_svc_run(a.name, a.config);
    if (rc == -1) {
        fprintf(stderr,
                "pipehubd: `service` is what the Service Control Manager "
                "runs; in a console use `pipehubd run`, or install the "
                "service and use `pipehubd start`.\n\n");
        usage(stderr);
        return 2;
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *verb;
        unsigned flags;
        int (*fn)(const ph_svc_args *a);
    } admin[] = {
        {"install", F_NAME | F_CONFIG | F_START | F_ACCOUNT, ph_admin_install},
        {"uninstall", F_NAME, ph_admin_uninstall},
        {"start", F_NAME, ph_admin_start},
        {"stop", F_NAME, ph_admin_stop},
        {"status", F_NAME, ph_admin_status},
        {"reload", F_NAME, ph_admin_reload},
    };
    ph_svc_args a;
    size_t i;
    int rc;

    /* Every verb that loads a file (run, the service, check-config) may
     * meet account names in [route.NAME] access lists. */
    ph_server_init_config();
    if (argc < 2) {
        fprintf(stderr, "pipehubd: no command given\n");
        usage(stderr);
        return 2;
    }
    if (is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "run") == 0)
        return run(argc - 2, argv + 2);
    if (strcmp(argv[1], "service") == 0)
        return service(argc - 2, argv + 2);
    if (strcmp(argv[1], "check-config") == 0)
        return check_config(argc - 2, argv + 2);
    /* The installer's own verb (svc_msi.h); not in the usage text. */
    if (strcmp(argv[1], "msi-configure") == 0)
        return ph_msi_configure(argc - 2, argv + 2);
    for (i = 0; i < sizeof admin / sizeof admin[0]; i++) {
        if (strcmp(argv[1], admin[i].verb) == 0) {
            rc = parse_service_flags(admin[i].verb, argc - 2, argv + 2,
                                     admin[i].flags, &a);
            return rc != 0 ? rc : admin[i].fn(&a);
        }
    }
    fprintf(stderr, "pipehubd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
