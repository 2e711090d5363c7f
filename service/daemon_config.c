#include "daemon_config.h"

#include <string.h>

#include "wintext.h"

ph_err ph_daemon_exe_path(wchar_t *out, size_t cap)
{
    DWORD n;

    if (cap == 0 || cap > MAXDWORD)
        return PH_EINVAL;
    /* A path that fills the buffer exactly was cut short. */
    n = GetModuleFileNameW(NULL, out, (DWORD)cap);
    if (n == 0 || n >= cap)
        return PH_EINVAL;
    return PH_OK;
}

ph_err ph_daemon_default_config(char *out, size_t cap)
{
    wchar_t exe[PH_PATH_MAX];
    wchar_t *slash;
    size_t dir_len;
    static const wchar_t name[] = L"" PH_DEFAULT_CONFIG_NAME;

    if (ph_daemon_exe_path(exe, PH_PATH_MAX) != PH_OK)
        return PH_EINVAL;
    slash = wcsrchr(exe, L'\\');
    dir_len = slash ? (size_t)(slash - exe) + 1 : 0;
    if (dir_len + wcslen(name) + 1 > PH_PATH_MAX)
        return PH_EINVAL;
    memcpy(exe + dir_len, name, sizeof name);
    return ph_wintext_narrow(exe, out, cap) == 0 ? PH_OK : PH_EINVAL;
}

ph_err ph_daemon_full_path(const char *path, char *out, size_t cap)
{
    wchar_t in[PH_PATH_MAX], full[PH_PATH_MAX];
    DWORD n;

    if (ph_wintext_wide(path, in, PH_PATH_MAX) != 0 || in[0] == L'\0')
        return PH_EINVAL;
    n = GetFullPathNameW(in, PH_PATH_MAX, full, NULL);
    if (n == 0 || n >= PH_PATH_MAX)
        return PH_EINVAL;
    return ph_wintext_narrow(full, out, cap) == 0 ? PH_OK : PH_EINVAL;
}

int ph_daemon_file_exists(const char *path)
{
    wchar_t w[PH_PATH_MAX];
    DWORD attr;

    if (ph_wintext_wide(path, w, PH_PATH_MAX) != 0)
        return 0;
    attr = GetFileAttributesW(w);
    return attr != INVALID_FILE_ATTRIBUTES &&
           (attr & FILE_ATTRIBUTE_DIRECTORY) == 0;
}

ph_err ph_daemon_config_load(const char *explicit_path, ph_options *out,
                             char *used, size_t cap, ph_config_report report,
                             void *ctx)
{
    char path[PH_PATH_MAX], full[PH_PATH_MAX];
    ph_options o;
    ph_err err;

    if (explicit_path != NULL) {
        if (strlen(explicit_path) >= sizeof path) {
            if (report)
                report(ctx, "the config path is too long");
            return PH_EINVAL;
        }
        strcpy(path, explicit_path);
    } else {
        if (ph_daemon_default_config(path, sizeof path) != PH_OK) {
            if (report)
                report(ctx, "cannot tell where pipehubd.exe is to find "
                            PH_DEFAULT_CONFIG_NAME " beside it");
            return PH_EINVAL;
        }
        if (!ph_daemon_file_exists(path)) {
            if (cap == 0)
                return PH_EINVAL;
            ph_options_defaults(out);
            used[0] = '\0';
            return PH_OK;
        }
    }
    if (ph_daemon_full_path(path, full, sizeof full) != PH_OK ||
        strlen(full) >= cap) {
        if (report)
            report(ctx, "the config path is too long");
        return PH_EINVAL;
    }
    /* Messages name the file as the user wrote it; the server keeps the
     * absolute path, since a service's current directory is system32. */
    err = ph_config_load_file(path, &o, report, ctx);
    if (err != PH_OK)
        return err;
    *out = o;
    strcpy(used, full);
    return PH_OK;
}
