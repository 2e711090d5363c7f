/* example_provider: serve the route "example.upper", answering each request
 * with its payload in capitals, until Ctrl+C or COUNT requests.
 *
 *   example_provider [PIPE] [COUNT]
 *
 * The handler answers at once, on the polling thread. A handler may also
 * keep its ph_request and answer later, from any thread. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipehub.h"

static unsigned long served;

static void upper(void *ctx, ph_request *req, const char *route,
                  const void *payload, size_t len, uint32_t caller)
{
    const unsigned char *in = payload;
    char *out = malloc(len + 1);
    size_t i;

    (void)ctx;
    if (out == NULL) {
        ph_request_error(req, PH_EINTERNAL, "out of memory");
        return;
    }
    for (i = 0; i < len; i++)
        out[i] = (char)toupper(in[i]);
    ph_request_reply(req, out, len); /* copies out and frees req */
    free(out);
    printf("%s from conn %lu: %lu bytes\n", route, (unsigned long)caller,
           (unsigned long)len);
    fflush(stdout);
    served++;
}

int main(int argc, char **argv)
{
    const char *pipe = argc > 1 ? argv[1] : "pipehub";
    unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    ph_client *c;
    ph_reply answer;
    ph_err err;

    if ((err = ph_client_connect(pipe, 5000, &c)) != PH_OK) {
        fprintf(stderr, "connect %s: %s\n", pipe, ph_strerror(err));
        return 3;
    }
    err = ph_client_register(c, "example.upper", PH_REGISTER_SHARED, upper,
                             NULL, 5000, &answer);
    if (err != PH_OK) {
        fprintf(stderr, "register: %s %s\n", ph_strerror(err),
                answer.payload ? (const char *)answer.payload : "");
        ph_reply_free(&answer);
        ph_client_close(c);
        return 1;
    }
    printf("registered: %s\n", (const char *)answer.payload);
    fflush(stdout);
    ph_reply_free(&answer);
    /* Each poll reads what arrived and runs the handler for every request
     * in it; the replies leave before it returns. */
    while (count == 0 || served < count)
        if ((err = ph_client_poll(c, 1000, NULL)) != PH_OK)
            break;
    ph_client_close(c);
    return err == PH_OK ? 0 : 3;
}
