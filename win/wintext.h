/* Text at the Win32 boundary, for the server, the service and the client.
 *
 * The daemon's own strings (argv, config paths, log lines) are narrow, in the
 * ANSI code page, because that is what main's argv, fopen in config/ and the
 * file log use. The SCM, registry and Event Log calls take UTF-16 (the W
 * APIs), so every string crosses over here, once, with an explicit size.
 * What goes on the wire or into JSON (account names, image paths) is UTF-8:
 * ph_wintext_utf8. */
#ifndef PH_WINTEXT_H
#define PH_WINTEXT_H

#include <windows.h>

#include <stddef.h>

/* Convert s into out (cap wide characters, NUL included). Returns 0, or -1
 * when s does not fit or does not convert (out is then ""). */
int ph_wintext_wide(const char *s, wchar_t *out, size_t cap);

/* Convert w into out (cap bytes, NUL included). Characters the code page
 * lacks become '?'. Returns 0, or -1 when it does not fit (out is then ""). */
int ph_wintext_narrow(const wchar_t *w, char *out, size_t cap);

/* Convert w to UTF-8 into out (cap bytes, NUL included), cut to fit when it
 * is too long; "?" when it cannot be converted at all. */
void ph_wintext_utf8(const wchar_t *w, char *out, size_t cap);

/* The system's one-line description of a Win32 error code, without the
 * trailing newline: "Access is denied." Falls back to "error N". Returns
 * out. */
const char *ph_wintext_syserr(DWORD code, char *out, size_t cap);

#endif
