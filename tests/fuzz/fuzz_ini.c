/* libFuzzer differential target: config/ini.c against the installed
 * libinih (Debian's libinih-dev 55). Link with -linih.
 *
 * The input is INI text. Both parsers read it through the string API (a
 * NUL-terminated copy, so it ends at its first NUL byte), through the
 * stream API with an fgets-like reader over all the bytes (NULs included),
 * and through the stream API with a reader that returns at most 37 bytes a
 * call. Each time they must make the same handler calls, in the same
 * order, and return the same value. The handler fails (returns 0) for any
 * value containing '!', so the fuzzer can reach the error paths that a
 * refusing handler opens. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* inih's ini.h, by its full path, then ours (config/ini.h). */
#include "../unit/inih.h"

#include "../unit/ini_util.h"
#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parsers' calls (recorded by calls_record, ini_util.h) and return
 * values must be the same; a difference aborts with the input. */
static void check_same(const char *way, const uint8_t *data, size_t size,
                       int theirs_rv, const calls *theirs, int ours_rv,
                       const calls *ours)
{
    int same_calls = calls_equal(theirs, ours);

    if (theirs_rv == ours_rv && same_calls)
        return;
    fprintf(stderr, "MISMATCH via %s: inih returned %d, ph_ini %d; calls %s\n"
                    "input (%zu bytes): ",
            way, theirs_rv, ours_rv, same_calls ? "same" : "differ", size);
    print_escaped(stderr, data, size);
    fputc('\n', stderr);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static calls theirs, ours;
    char *copy;
    int rt, ro;
    size_t cap;

    copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    calls_reset(&theirs);
    calls_reset(&ours);
    rt = ini_parse_string(copy, calls_record, &theirs);
    ro = ph_ini_parse_string(copy, calls_record, &ours);
    free(copy);
    check_same("string", data, size, rt, &theirs, ro, &ours);

    for (cap = 0; cap <= 37; cap += 37) {
        byte_stream a = byte_stream_of(data, size, cap);
        byte_stream b = byte_stream_of(data, size, cap);

        calls_reset(&theirs);
        calls_reset(&ours);
        rt = ini_parse_stream(byte_reader, &a, calls_record, &theirs);
        ro = ph_ini_parse_stream(byte_reader, &b, calls_record, &ours);
        check_same(cap ? "stream, 37-byte reads" : "stream", data, size, rt,
                   &theirs, ro, &ours);
    }
    return 0;
}
