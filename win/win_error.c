#include "win_error.h"

static const struct {
    DWORD win;
    ph_err ph;
} table[] = {
    {ERROR_SUCCESS, PH_OK},
    {ERROR_NOT_ENOUGH_MEMORY, PH_ENOMEM},
    {ERROR_OUTOFMEMORY, PH_ENOMEM},
    {ERROR_INVALID_PARAMETER, PH_EINVAL},
    {ERROR_BROKEN_PIPE, PH_ECLOSED},
    {ERROR_NO_DATA, PH_ECLOSED},
    {ERROR_PIPE_NOT_CONNECTED, PH_ECLOSED},
    {ERROR_OPERATION_ABORTED, PH_ECLOSED},
    {ERROR_FILE_NOT_FOUND, PH_ENOTFOUND},
    {ERROR_PIPE_BUSY, PH_EBUSY},
    {ERROR_SEM_TIMEOUT, PH_ETIMEDOUT},
    {WAIT_TIMEOUT, PH_ETIMEDOUT},
    {ERROR_ACCESS_DENIED, PH_EFORBIDDEN},
};

ph_err ph_win_err(DWORD code)
{
    size_t i;

    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].win == code)
            return table[i].ph;
    }
    return (ph_err)(PH_ESYSERR + code);
}
