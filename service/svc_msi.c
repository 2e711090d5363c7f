#include "svc_msi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aclapi.h>
#include <sddl.h>

#include "daemon_config.h"
#include "eventlog.h"
#include "names.h"
#include "svc.h"
#include "svc_admin.h"
#include "wintext.h"

/* Where a first install records the START property, per service name:
 * HKLM\SOFTWARE\pipehub\NAME, value Start. The MSI does not own the key,
 * so an upgrade (which deletes and recreates the service) finds it, and a
 * removal keeps it with the config file: the administrator's choices. The
 * next first install (no config file) starts them over. */
#define CHOICES_KEY L"SOFTWARE\\pipehub"
#define KEY_MAX 256
#define DESC_MAX 1024
#define INI_MAX (1024 * 1024) /* a config file larger than this is not ours */

static HANDLE event_log;

/* One line to stderr and, when the event source is registered (the MSI's
 * Registry table writes it before this runs), to the Application log:
 * msiexec keeps no custom action's output. */
static void say(ph_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "pipehubd: %s\n", line);
    ph_eventlog_sink(event_log, level, line);
}

static int choices_key(const char *name, wchar_t *out, size_t cap)
{
    wchar_t wname[PH_SVC_NAME_MAX + 1];

    if (ph_wintext_wide(name, wname, PH_SVC_NAME_MAX + 1) != 0 ||
        wcslen(CHOICES_KEY) + 1 + wcslen(wname) + 1 > cap)
        return -1;
    swprintf(out, cap, L"%ls\\%ls", CHOICES_KEY, wname);
    return 0;
}

/* Record start (auto, delayed, demand) for service name; NULL forgets it. */
static int remember_start(const char *name, const char *start)
{
    wchar_t path[KEY_MAX], value[16];
    HKEY key;
    LSTATUS rc;

    if (choices_key(name, path, KEY_MAX) != 0)
        return -1;
    if (start == NULL) {
        rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, path);
        return rc == ERROR_SUCCESS || rc == ERROR_FILE_NOT_FOUND ? 0 : -1;
    }
    if (ph_wintext_wide(start, value, 16) != 0)
        return -1;
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, path, 0, NULL,
                         REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, NULL, &key,
                         NULL);
    if (rc != ERROR_SUCCESS)
        return -1;
    rc = RegSetValueExW(key, L"Start", 0, REG_SZ, (const BYTE *)value,
                        (DWORD)((wcslen(value) + 1) * sizeof(wchar_t)));
    RegCloseKey(key);
    return rc == ERROR_SUCCESS ? 0 : -1;
}

/* The start type a first install recorded, into out; "" when none. */
static void recorded_start(const char *name, char *out, size_t cap)
{
    wchar_t path[KEY_MAX], value[16];
    DWORD size = sizeof value - sizeof(wchar_t), type;
    HKEY key;

    out[0] = '\0';
    if (choices_key(name, path, KEY_MAX) != 0 ||
        RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, KEY_QUERY_VALUE, &key) !=
            ERROR_SUCCESS)
        return;
    memset(value, 0, sizeof value);
    if (RegQueryValueExW(key, L"Start", NULL, &type, (BYTE *)value, &size) ==
            ERROR_SUCCESS &&
        type == REG_SZ)
        (void)ph_wintext_narrow(value, out, cap);
    RegCloseKey(key);
}

/* ---- the config file's pipe_name ----------------------------------------- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = malloc(INI_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, INI_MAX + 1, f);
    fclose(f);
    if (n > INI_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_all(const char *path, const char *data, size_t len)
{
    char tmp[PH_PATH_MAX];
    FILE *f;
    int ok;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", path) >= sizeof tmp)
        return -1;
    f = fopen(tmp, "wb");
    if (f == NULL)
        return -1;
    ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || !MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING)) {
        DeleteFileA(tmp);
        return -1;
    }
    return 0;
}

/* 1 when line (not NUL-terminated, n bytes) is `key =` after blanks. */
static int line_sets(const char *line, size_t n, const char *key)
{
    size_t k = strlen(key), i = 0;

    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (n - i < k || memcmp(line + i, key, k) != 0)
        return 0;
    i += k;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < n && line[i] == '=';
}

/* 1 when line is the header of section. */
static int line_is_section(const char *line, size_t n, const char *section)
{
    size_t k = strlen(section), i = 0;

    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return n - i >= k + 2 && line[i] == '[' &&
           memcmp(line + i + 1, section, k) == 0 && line[i + 1 + k] == ']';
}

/* Set [server] pipe_name in the text in, into a new string: replace the
 * line that sets it, else add a [server] section with it at the end (a
 * second [server] header is allowed; its key wins).
 * Each line keeps its own line ending. */
static char *with_pipe_name(const char *in, size_t len, const char *pipe,
                            size_t *out_len)
{
    size_t cap = len + strlen(pipe) + 64, o = 0, i = 0, n, end;
    char *out = malloc(cap);
    int in_server = 0, done = 0;

    if (out == NULL)
        return NULL;
    while (i < len) {
        end = i;
        while (end < len && in[end] != '\n')
            end++;
        n = end - i; /* the line without its '\n' */
        if (n > 0 && in[i] == '[')
            in_server = 0;
        if (line_is_section(in + i, n, "server"))
            in_server = 1;
        if (!done && in_server && line_sets(in + i, n, "pipe_name")) {
            int crlf = n > 0 && in[i + n - 1] == '\r';
            o += (size_t)sprintf(out + o, "pipe_name = %s%s", pipe,
                                 crlf ? "\r" : "");
            done = 1;
        } else {
            memcpy(out + o, in + i, n);
            o += n;
        }
        if (end < len)
            out[o++] = '\n';
        i = end < len ? end + 1 : end;
    }
    if (!done) {
        if (o > 0 && out[o - 1] != '\n')
            out[o++] = '\n';
        o += (size_t)sprintf(out + o, "\n[server]\npipe_name = %s\n", pipe);
    }
    *out_len = o;
    return out;
}

static void print_problem(void *ctx, const char *message)
{
    (void)ctx;
    say(PH_LOG_ERROR, "%s", message);
}

/* Write pipe into the config file, and keep the file only if it then
 * loads. */
static int set_pipe_name(const char *config, const char *pipe)
{
    char path[PH_PATH_MAX], used[PH_PATH_MAX];
    char *old, *text;
    size_t old_len, len;
    ph_options opts;
    int rc = -1;

    if (ph_pipe_path(pipe, path, sizeof path) != PH_OK) {
        say(PH_LOG_ERROR, "PIPE_NAME '%s' is not a local pipe name: give a "
            "bare name or \\\\.\\pipe\\NAME", pipe);
        return -1;
    }
    old = read_all(config, &old_len);
    if (old == NULL) {
        say(PH_LOG_ERROR, "cannot read %s to set PIPE_NAME", config);
        return -1;
    }
    text = with_pipe_name(old, old_len, pipe, &len);
    if (text == NULL || write_all(config, text, len) != 0) {
        say(PH_LOG_ERROR, "cannot write %s to set PIPE_NAME", config);
        goto out;
    }
    /* Loaded back, it must be the same name: a ';' would start a comment. */
    if (ph_daemon_config_load(config, &opts, used, sizeof used, print_problem,
                              NULL) != PH_OK ||
        strcmp(opts.pipe_name, path) != 0) {
        say(PH_LOG_ERROR, "%s does not load with pipe_name = %s; put back "
            "as it was", config, pipe);
        (void)write_all(config, old, old_len);
        goto out;
    }
    say(PH_LOG_INFO, "%s: pipe_name = %s (PIPE_NAME)", config, pipe);
    rc = 0;
out:
    free(text);
    free(old);
    return rc;
}

/* ---- the settings folder's DACL ------------------------------------------- */

/* ProgramData lets every user create files in the folders under it, and a
 * LocalSystem service that reads a file planted there would run on a
 * stranger's settings (a log file path is a file write as SYSTEM). So the
 * folder holding the config file gets its own protected DACL: SYSTEM and
 * Administrators full control, Users read, inherited by what is in it. */
#define CONFIG_DIR_SDDL L"D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"

static int lock_config_dir(const char *config)
{
    wchar_t dir[PH_PATH_MAX], *slash;
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL acl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    DWORD rc;

    if (ph_wintext_wide(config, dir, PH_PATH_MAX) != 0 ||
        (slash = wcsrchr(dir, L'\\')) == NULL)
        return -1;
    *slash = L'\0';
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
            CONFIG_DIR_SDDL, SDDL_REVISION_1, &sd, NULL))
        return -1;
    if (!GetSecurityDescriptorDacl(sd, &present, &acl, &defaulted) ||
        !present) {
        LocalFree(sd);
        return -1;
    }
    rc = SetNamedSecurityInfoW(dir, SE_FILE_OBJECT,
                               DACL_SECURITY_INFORMATION |
                                   PROTECTED_DACL_SECURITY_INFORMATION,
                               NULL, NULL, acl, NULL);
    LocalFree(sd);
    if (rc != ERROR_SUCCESS) {
        char text[256];
        say(PH_LOG_ERROR, "cannot set the access rules of the folder of %s: "
            "%s", config, ph_wintext_syserr(rc, text, sizeof text));
        return -1;
    }
    return 0;
}

/* ---- the verbs ------------------------------------------------------------ */

/* `--flag VALUE` pairs; a VALUE may be empty (an unset MSI property). */
static int parse(const char *verb, int argc, char **argv, ph_msi_args *a)
{
    int i;

    memset(a, 0, sizeof *a);
    a->name = PH_SVC_DEFAULT_NAME;
    for (i = 0; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (strcmp(argv[i], "--name") == 0)
            a->name = v;
        else if (strcmp(argv[i], "--config") == 0)
            a->config = v;
        else if (strcmp(argv[i], "--found") == 0)
            a->found = v;
        else if (strcmp(argv[i], "--pipe") == 0)
            a->pipe = v;
        else if (strcmp(argv[i], "--start") == 0)
            a->start = v;
        else
            break;
    }
    if (i != argc) {
        fprintf(stderr, "pipehubd: %s: unexpected '%s' (it takes --name, "
                "--config, --found, --pipe, --start, each with a value)\n",
                verb, argv[i]);
        return 2;
    }
    if (!ph_svc_name_ok(a->name)) {
        fprintf(stderr, "pipehubd: '%s' is not a usable service name\n",
                a->name);
        return 2;
    }
    return 0;
}

static int apply_to_service(const ph_msi_args *a, const char *start)
{
    wchar_t wname[PH_SVC_NAME_MAX + 1], wconfig[PH_PATH_MAX];
    wchar_t description[DESC_MAX], exe[PH_PATH_MAX], cmdline[3 * PH_PATH_MAX];
    SC_HANDLE scm, svc = NULL;
    const char *step = "open the service";
    DWORD type;
    int delayed, rc = -1;

    if (ph_admin_parse_start(start, &type, &delayed) != 0 ||
        ph_wintext_wide(a->name, wname, PH_SVC_NAME_MAX + 1) != 0 ||
        ph_wintext_wide(a->config, wconfig, PH_PATH_MAX) != 0 ||
        ph_admin_description(wname, wconfig, description, DESC_MAX) != 0 ||
        ph_daemon_exe_path(exe, PH_PATH_MAX) != PH_OK ||
        ph_admin_command_line(exe, wname, wconfig, cmdline,
                              3 * PH_PATH_MAX) != 0) {
        say(PH_LOG_ERROR, "service %s: bad start type or names", a->name);
        return -1;
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm != NULL)
        svc = OpenServiceW(scm, wname, SERVICE_CHANGE_CONFIG);
    if (svc == NULL)
        goto out;
    /* The command line as `pipehubd install` writes it: Windows Installer
     * quotes the program's path, Wine's does not. */
    step = "set the start type and command line";
    if (!ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, type, SERVICE_NO_CHANGE,
                              cmdline, NULL, NULL, NULL, NULL, NULL, NULL))
        goto out;
    if (ph_admin_configure(svc, description, &delayed, &step) != 0)
        goto out;
    say(PH_LOG_INFO, "service %s: start %s, restarts after a crash, "
        "settings %s", a->name, start, a->config);
    rc = 0;
out:
    if (rc != 0) {
        char text[256];
        say(PH_LOG_ERROR, "service %s: cannot %s: %s", a->name, step,
            ph_wintext_syserr(GetLastError(), text, sizeof text));
    }
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    return rc;
}

int ph_msi_configure(int argc, char **argv)
{
    char start[16];
    wchar_t wname[PH_SVC_NAME_MAX + 1];
    const char *want;
    ph_msi_args a;
    DWORD type;
    int delayed, first, rc;

    if ((rc = parse("msi-configure", argc, argv, &a)) != 0)
        return rc;
    if (a.config == NULL || a.config[0] == '\0') {
        fprintf(stderr, "pipehubd: msi-configure needs --config PATH\n");
        return 2;
    }
    if (ph_wintext_wide(a.name, wname, PH_SVC_NAME_MAX + 1) == 0)
        event_log = ph_eventlog_open(wname);
    /* The MSI's AppSearch sets --found to the config file's path when the
     * file was there before this install: then this is an upgrade, a
     * repair or a reinstall over a kept file, and the administrator's file
     * and choices stand. */
    first = a.found == NULL || a.found[0] == '\0';
    want = a.start != NULL && a.start[0] != '\0' ? a.start : NULL;
    rc = 1;
    if (first) {
        if (want && ph_admin_parse_start(want, &type, &delayed) != 0) {
            say(PH_LOG_ERROR, "START='%s': use auto, delayed or demand",
                want);
            goto out;
        }
        /* The folder's DACL on a first install only: an administrator
         * who changes it later keeps the change through upgrades. */
        if (lock_config_dir(a.config) != 0)
            goto out;
        /* The file first: a bad PIPE_NAME fails the install before any
         * choice is recorded. */
        if (a.pipe != NULL && a.pipe[0] != '\0' &&
            set_pipe_name(a.config, a.pipe) != 0)
            goto out;
        /* A first install starts the choices over: no START is auto. */
        if (remember_start(a.name, want) != 0) {
            say(PH_LOG_ERROR, "cannot record START for service %s", a.name);
            goto out;
        }
    } else if ((a.pipe && a.pipe[0]) || want) {
        say(PH_LOG_WARN, "%s was already there: PIPE_NAME and START apply "
            "to a first install only, and were left out", a.config);
    }
    recorded_start(a.name, start, sizeof start);
    if (apply_to_service(&a, start[0] ? start : "auto") != 0)
        goto out;
    rc = 0;
out:
    ph_eventlog_close(event_log);
    event_log = NULL;
    return rc;
}
