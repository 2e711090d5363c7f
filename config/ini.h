/* The project's own INI reader, with inih's API and behaviour.
 *
 * Builds that find an installed inih (Debian's libinih-dev natively; vcpkg
 * or MSYS2 on Windows) use it; builds that do not (the mingw cross-build
 * here) use this one. Same callbacks for the same input, as inih does with
 * its default compile-time options (Debian's build): ';' and '#' start
 * comment lines, ';' after whitespace starts an inline comment on a
 * name = value line (Debian's inih 55 keeps it in a continuation line's
 * value), a UTF-8 BOM is skipped, indented lines continue the previous
 * value (multi-line), INI_MAX_LINE is 200 (a longer line is read in pieces
 * of 199 bytes, each parsed and numbered as a line of its own), "name =
 * value" and "name : value" both work, names and values are trimmed
 * (section names are not), the parse goes on after an error and returns the
 * first error's line. A tested differential (tests/unit/test_ini_diff.c)
 * keeps the two in step. Portable: no system headers beyond libc. */
#ifndef PH_INI_H
#define PH_INI_H

#include <stdio.h>

/* Called for each name = value pair. Return nonzero on success, zero to
 * count the line as an error. section is "" before the first [section]. */
typedef int (*ph_ini_handler)(void *user, const char *section,
                              const char *name, const char *value);

/* Like fgets: fill str with at most num-1 characters of the next line
 * (newline included), NUL-terminate, return str; NULL at the end. */
typedef char *(*ph_ini_reader)(char *str, int num, void *stream);

/* Each returns 0 on success, the line number of the first error, -1 when
 * the file cannot be opened, -2 on an allocation failure. */
int ph_ini_parse(const char *filename, ph_ini_handler handler, void *user);
int ph_ini_parse_file(FILE *file, ph_ini_handler handler, void *user);
int ph_ini_parse_stream(ph_ini_reader reader, void *stream,
                        ph_ini_handler handler, void *user);
int ph_ini_parse_string(const char *string, ph_ini_handler handler,
                        void *user);

#endif
