/* example_subscriber: print the events published on "example.*", one line
 * each, until COUNT have arrived or the server stops.
 *
 *   example_subscriber [PIPE] [COUNT]
 *
 * It waits on the client's waitable handle, as a program with its own
 * event loop (or several clients) would, and polls without waiting. */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>

#include "pipehub.h"

static unsigned long received;
static int stopping;

static void on_event(void *ctx, const char *topic, const void *payload,
                     size_t len)
{
    (void)ctx;
    printf("%s %.*s\n", topic, (int)len, (const char *)payload);
    fflush(stdout);
    received++;
}

static void on_shutdown(void *ctx, const char *topic, const void *payload,
                        size_t len)
{
    (void)ctx, (void)topic, (void)payload, (void)len;
    stopping = 1;
}

int main(int argc, char **argv)
{
    const char *pipe = argc > 1 ? argv[1] : "pipehub";
    unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    ph_client *c;
    ph_err err;

    if ((err = ph_client_connect(pipe, 5000, &c)) != PH_OK) {
        fprintf(stderr, "connect %s: %s\n", pipe, ph_strerror(err));
        return 3;
    }
    /* "sys.shutdown" only listens: the hub sends it to every client. */
    if ((err = ph_client_subscribe(c, "example.*", on_event, NULL, 5000)) ||
        (err = ph_client_subscribe(c, "sys.shutdown", on_shutdown, NULL,
                                   5000))) {
        fprintf(stderr, "subscribe: %s\n", ph_strerror(err));
        ph_client_close(c);
        return 1;
    }
    printf("subscribed to example.*\n");
    fflush(stdout);
    while (!stopping && (count == 0 || received < count)) {
        if (WaitForSingleObject(ph_client_waitable(c), INFINITE) ==
            WAIT_FAILED)
            break;
        if ((err = ph_client_poll(c, 0, NULL)) != PH_OK)
            break;
    }
    ph_client_close(c);
    return err == PH_OK ? 0 : 3;
}
