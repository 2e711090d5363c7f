/* Helpers for Wine tests that drive the client library (pipehub.h) against
 * a real pipehubd: a provider on its own thread. Header-only, beside
 * hubtest.h, which knows nothing of the library. */
#ifndef PH_HUBTEST_CLIENT_H
#define PH_HUBTEST_CLIENT_H

#include <windows.h>

#include "hubtest.h"
#include "pipehub.h"

/* A provider: a library client serving one route on its own thread. Each
 * request is answered with reply (reply_len bytes), or with its own
 * payload when reply is NULL (an echo). */
typedef struct ht_provider {
    ph_client *c;
    const void *reply;
    size_t reply_len;
    volatile LONG served;     /* requests answered */
    volatile LONG got;        /* bytes of the last request */
    volatile LONG stop;
    HANDLE thread;
} ht_provider;

static inline void ht_provider_on_request(void *ctx, ph_request *req,
                                          const char *route,
                                          const void *payload, size_t len,
                                          uint32_t caller)
{
    ht_provider *p = ctx;

    (void)route;
    (void)caller;
    p->got = (LONG)len;
    if (ph_request_reply(req, p->reply ? p->reply : payload,
                         p->reply ? p->reply_len : len) == PH_OK)
        InterlockedIncrement(&p->served);
}

static inline DWORD WINAPI ht_provider_run(void *arg)
{
    ht_provider *p = arg;

    while (!p->stop)
        if (ph_client_poll(p->c, 100, NULL) != PH_OK)
            break;
    return 0;
}

/* Connect (flags as ph_client_connect_ex), register route and start the
 * thread. 0, or -1. */
static inline int ht_provider_start(ht_provider *p, const char *pipe,
                                    unsigned flags, const char *route)
{
    ph_reply r;

    if (ph_client_connect_ex(pipe, 20000, flags, &p->c) != PH_OK ||
        ph_client_register(p->c, route, PH_REGISTER_SHARED,
                           ht_provider_on_request, p, 20000, &r) != PH_OK)
        return -1;
    ph_reply_free(&r);
    p->thread = CreateThread(NULL, 0, ht_provider_run, p, 0, NULL);
    return p->thread != NULL ? 0 : -1;
}

static inline void ht_provider_stop(ht_provider *p)
{
    ht_join(&p->thread, &p->stop, 20000);
    if (p->c != NULL)
        ph_client_close(p->c);
    p->c = NULL;
}

#endif
