/* example_caller: publish TEXT on "example.news", then call the route
 * "example.upper" with TEXT and print the answer.
 *
 *   example_caller [PIPE] [TEXT]
 *
 * Exit status: 0 answered, 1 an ERROR answer, 3 no server or no answer. */
#include <stdio.h>
#include <string.h>

#include "pipehub.h"

int main(int argc, char **argv)
{
    const char *pipe = argc > 1 ? argv[1] : "pipehub";
    const char *text = argc > 2 ? argv[2] : "hello";
    ph_client *c;
    ph_reply r;
    ph_err err;
    int rc;

    if ((err = ph_client_connect(pipe, 5000, &c)) != PH_OK) {
        fprintf(stderr, "connect %s: %s\n", pipe, ph_strerror(err));
        return 3;
    }
    /* Queued now, written with the call's request in one WriteFile; the
     * hub handles a connection's frames in order. */
    err = ph_client_publish(c, "example.news", text, strlen(text));
    if (err != PH_OK) {
        fprintf(stderr, "publish: %s\n", ph_strerror(err));
        ph_client_close(c);
        return 3;
    }
    err = ph_client_call(c, "example.upper", text, strlen(text), 5000, &r);
    ph_client_close(c);
    if (err != PH_OK) {
        fprintf(stderr, "call: %s\n", ph_strerror(err));
        return 3;
    }
    if (r.kind == PH_ERROR) {
        fprintf(stderr, "error %lu: %s\n", (unsigned long)r.status,
                (const char *)r.payload);
        rc = 1;
    } else {
        printf("%s\n", (const char *)r.payload);
        rc = 0;
    }
    ph_reply_free(&r);
    return rc;
}
