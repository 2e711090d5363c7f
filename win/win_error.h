/* Win32 error codes to ph_err: the one place they are mapped. */
#ifndef PH_WIN_ERROR_H
#define PH_WIN_ERROR_H

#include <windows.h>

#include "err.h"

ph_err ph_win_err(DWORD code);

#endif
