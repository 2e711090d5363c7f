#include "wintime.h"

/* Milliseconds from 1601-01-01 to 1970-01-01. */
#define EPOCH_DIFF_MS 11644473600000ull

uint64_t ph_win_filetime_to_unix_ms(const FILETIME *ft)
{
    ULARGE_INTEGER t;

    t.LowPart = ft->dwLowDateTime;
    t.HighPart = ft->dwHighDateTime;
    return t.QuadPart / 10000u - EPOCH_DIFF_MS;
}

void ph_win_unix_ms_to_filetime(uint64_t ms, FILETIME *ft)
{
    ULARGE_INTEGER t;

    t.QuadPart = (ms + EPOCH_DIFF_MS) * 10000u;
    ft->dwLowDateTime = t.LowPart;
    ft->dwHighDateTime = t.HighPart;
}

uint64_t ph_win_unix_ms(void)
{
    FILETIME ft;

    GetSystemTimeAsFileTime(&ft);
    return ph_win_filetime_to_unix_ms(&ft);
}
