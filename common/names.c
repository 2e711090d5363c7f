#include "names.h"

#include <ctype.h>
#include <string.h>

ph_err ph_pipe_path(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name), need;
    int full = n >= PH_PIPE_PREFIX_LEN;
    size_t i;

    for (i = 0; full && i < PH_PIPE_PREFIX_LEN; i++) {
        if (tolower((unsigned char)name[i]) != PH_PIPE_PREFIX[i])
            full = 0;
    }
    if (full) {
        name += PH_PIPE_PREFIX_LEN;
        n -= PH_PIPE_PREFIX_LEN;
    } else if (name[0] == '\\' && name[1] == '\\') {
        return PH_EINVAL; /* \\server\pipe\x: remote pipes are not served */
    }
    need = PH_PIPE_PREFIX_LEN + n;
    if (n == 0 || need > PH_PIPE_PATH_MAX || need + 1 > cap)
        return PH_EINVAL;
    memcpy(out, PH_PIPE_PREFIX, PH_PIPE_PREFIX_LEN);
    memcpy(out + PH_PIPE_PREFIX_LEN, name, n + 1);
    return PH_OK;
}

int ph_pattern_valid(const char *p, size_t len, int allow_star)
{
    if (len == 1 && p[0] == '*')
        return allow_star;
    if (len >= 2 && p[len - 1] == '*')
        return len >= 3 && p[len - 2] == '.' && ph_route_valid(p, len - 1);
    return len > 0 && len <= PH_ROUTE_MAX && ph_route_valid(p, len);
}

int ph_pattern_match(const char *pattern, size_t plen, const char *name,
                     size_t nlen)
{
    if (plen == 1 && pattern[0] == '*')
        return 1;
    if (plen >= 2 && pattern[plen - 1] == '*')
        return nlen > plen - 1 && memcmp(pattern, name, plen - 1) == 0;
    return plen == nlen && memcmp(pattern, name, nlen) == 0;
}
