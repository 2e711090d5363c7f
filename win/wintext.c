#include "wintext.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ph_wintext_wide(const char *s, wchar_t *out, size_t cap)
{
    int n;

    if (cap == 0)
        return -1;
    out[0] = L'\0';
    if (cap > INT_MAX)
        cap = INT_MAX;
    /* -1 as the length converts the NUL too, so n counts it. */
    n = MultiByteToWideChar(CP_ACP, 0, s, -1, out, (int)cap);
    if (n <= 0) {
        out[0] = L'\0';
        return -1;
    }
    return 0;
}

int ph_wintext_narrow(const wchar_t *w, char *out, size_t cap)
{
    int n;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (cap > INT_MAX)
        cap = INT_MAX;
    n = WideCharToMultiByte(CP_ACP, 0, w, -1, out, (int)cap, NULL, NULL);
    if (n <= 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

void ph_wintext_utf8(const wchar_t *w, char *out, size_t cap)
{
    int n, need;
    char *tmp;

    if (cap == 0)
        return;
    if (cap > INT_MAX)
        cap = INT_MAX;
    n = WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL);
    if (n > 0)
        return;
    /* Too long for out, most likely: convert into a big buffer and cut. */
    need = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    tmp = need > 0 ? malloc((size_t)need) : NULL;
    if (tmp != NULL &&
        WideCharToMultiByte(CP_UTF8, 0, w, -1, tmp, need, NULL, NULL) > 0)
        snprintf(out, cap, "%s", tmp);
    else
        snprintf(out, cap, "?");
    free(tmp);
}

const char *ph_wintext_syserr(DWORD code, char *out, size_t cap)
{
    DWORD n;

    if (cap == 0)
        return out;
    n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                           FORMAT_MESSAGE_IGNORE_INSERTS |
                           FORMAT_MESSAGE_MAX_WIDTH_MASK,
                       NULL, code, 0, out, (DWORD)(cap > 65535 ? 65535 : cap),
                       NULL);
    /* MAX_WIDTH_MASK turns line breaks into spaces; drop the trailing ones. */
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\r' ||
                     out[n - 1] == '\n'))
        out[--n] = '\0';
    if (n == 0)
        snprintf(out, cap, "error %lu", (unsigned long)code);
    return out;
}
