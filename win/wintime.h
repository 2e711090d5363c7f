/* Time at the Win32 boundary: FILETIME (100 ns ticks since 1601, UTC) and
 * the Unix milliseconds the protocol and the logs use. */
#ifndef PH_WINTIME_H
#define PH_WINTIME_H

#include <windows.h>

#include <stdint.h>

/* The wall clock now, Unix time in ms. */
uint64_t ph_win_unix_ms(void);

/* A FILETIME as Unix time in ms, and back. */
uint64_t ph_win_filetime_to_unix_ms(const FILETIME *ft);
void ph_win_unix_ms_to_filetime(uint64_t ms, FILETIME *ft);

#endif
