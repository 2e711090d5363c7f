/* Helpers shared by the Windows integration tests. Header-only. */
#ifndef PH_WINE_UTIL_H
#define PH_WINE_UTIL_H

#include <windows.h>

#include <stdio.h>

/* 1 under Wine, which ignores pipe DACLs, PIPE_REJECT_REMOTE_CLIENTS and
 * FILE_FLAG_FIRST_PIPE_INSTANCE: tests of those skip themselves there. */
static inline int ph_under_wine(void)
{
    return GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version") !=
           NULL;
}

/* ctest hands a test a Unix path (/tmp/build/pipehubd.exe); CreateProcess
 * wants a DOS one. Wine exports the converter from kernel32; without it, the
 * default Z: drive maps the Unix root. A path that is not a Unix one is
 * copied as it is. Returns 0, or -1 when out is too small. */
static inline int ph_dos_path(const char *path, char *out, size_t cap)
{
    typedef WCHAR *(CDECL * to_dos_fn)(const char *);
    to_dos_fn to_dos;
    WCHAR *w;
    size_t i;

    if (path[0] != '/')
        return (size_t)snprintf(out, cap, "%s", path) < cap ? 0 : -1;
    to_dos = (to_dos_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleA("kernel32.dll"), "wine_get_dos_file_name");
    if (to_dos && (w = to_dos(path)) != NULL) {
        int n = WideCharToMultiByte(CP_ACP, 0, w, -1, out, (int)cap, NULL,
                                    NULL);
        HeapFree(GetProcessHeap(), 0, w);
        return n > 0 ? 0 : -1;
    }
    if ((size_t)snprintf(out, cap, "Z:%s", path) >= cap)
        return -1;
    for (i = 0; out[i]; i++)
        if (out[i] == '/')
            out[i] = '\\';
    return 0;
}

#endif
