#include "err.h"

#include <stddef.h>

static const char *const proto_names[] = {
    NULL,        "BAD_FRAME", "TOO_LARGE", "NO_ROUTE", "FORBIDDEN",
    "BUSY",      "UNAVAILABLE", "TIMEOUT", "INTERNAL", "BAD_REQUEST",
};

const char *ph_err_name(ph_err err)
{
    if (err <= PH_OK || err > PH_PROTO_MAX)
        return NULL;
    return proto_names[err];
}

const char *ph_strerror(ph_err err)
{
    const char *name = ph_err_name(err);

    if (name != NULL)
        return name;
    switch (err) {
    case PH_OK:        return "OK";
    case PH_EAGAIN:    return "incomplete frame";
    case PH_ENOMEM:    return "out of memory";
    case PH_EINVAL:    return "invalid argument";
    case PH_ECLOSED:   return "connection closed";
    case PH_ENOTFOUND: return "no server on this pipe";
    default:
        return err >= PH_ESYSERR ? "system error" : "unknown error";
    }
}
