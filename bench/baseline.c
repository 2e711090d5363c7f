/* The baseline of bench/run.sh: the textbook thread-per-client synchronous
 * echo server that pipehubd is measured against.
 *
 *   baseline [PIPE]      serve PIPE (default "pipehub-baseline") until killed
 *
 * The main thread creates an instance, blocks in ConnectNamedPipe, hands the
 * connected instance to a new thread and loops. Each client thread reads
 * whatever arrives (up to 64 KiB, the pipe's buffer) and writes it back, with
 * plain blocking ReadFile/WriteFile, until the client goes away. No framing:
 * it echoes bytes, so `pipehub bench --raw` drives it. It is deliberately
 * naive; only the buffer sizes match pipehubd's, so that the comparison is
 * about the I/O model. */
#include <windows.h>

#include <stdio.h>
#include <string.h>

#define BUFFER_BYTES (64u * 1024u)

static DWORD WINAPI serve(LPVOID arg)
{
    HANDLE pipe = arg;
    static const DWORD size = BUFFER_BYTES;
    char *buf = HeapAlloc(GetProcessHeap(), 0, size);
    DWORD n, w, off;

    while (buf != NULL && ReadFile(pipe, buf, size, &n, NULL)) {
        for (off = 0; off < n; off += w) {
            if (!WriteFile(pipe, buf + off, n - off, &w, NULL))
                goto done;
        }
    }
done:
    HeapFree(GetProcessHeap(), 0, buf);
    CloseHandle(pipe);
    return 0;
}

int main(int argc, char **argv)
{
    char path[300];
    const char *name = argc > 1 ? argv[1] : "pipehub-baseline";
    HANDLE pipe, thread;

    if (strncmp(name, "\\\\.\\pipe\\", 9) == 0)
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "\\\\.\\pipe\\%s", name);
    fprintf(stderr, "baseline: serving %s\n", path);
    for (;;) {
        pipe = CreateNamedPipeA(path, PIPE_ACCESS_DUPLEX,
                                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                PIPE_UNLIMITED_INSTANCES, BUFFER_BYTES,
                                BUFFER_BYTES, 0, NULL);
        if (pipe == INVALID_HANDLE_VALUE) {
            fprintf(stderr, "baseline: CreateNamedPipe failed: %lu\n",
                    (unsigned long)GetLastError());
            return 1;
        }
        if (!ConnectNamedPipe(pipe, NULL) &&
            GetLastError() != ERROR_PIPE_CONNECTED) {
            CloseHandle(pipe);
            continue;
        }
        thread = CreateThread(NULL, 0, serve, pipe, 0, NULL);
        if (thread == NULL)
            CloseHandle(pipe);
        else
            CloseHandle(thread);
    }
}
