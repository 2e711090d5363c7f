/* The project's own INI reader: inih's API and, byte for byte, the
 * callbacks and return values of Debian's libinih 55 with its default
 * options. The contract is in ini.h; this file explains the rules that
 * make the two agree, because most of them are accidents of inih's
 * fgets-and-fixed-buffer design that a "cleaner" parser would get wrong.
 * tests/unit/test_ini_diff.c and tests/fuzz/fuzz_ini.c hold the two side
 * by side. */
#include "ini.h"

#include <assert.h>
#include <ctype.h>
#include <string.h>

/* inih's INI_MAX_LINE is the size of its line buffer, NUL included, so one
 * reader call yields at most 199 bytes. A longer line arrives in pieces and
 * inih parses (and numbers) every piece as a line of its own; it does not
 * skip the rest of a long line. Keeping the same buffer size keeps the same
 * pieces, line numbers and callbacks. */
#define LINE_SIZE 200

/* inih's MAX_SECTION and MAX_NAME: the section name and the name that a
 * continuation line repeats are copied into buffers this big, so both are
 * cut to 49 bytes. The name passed with a name = value pair is not cut. */
#define SECTION_SIZE 50
#define NAME_SIZE 50

/* State that lives from one line to the next. */
typedef struct parser {
    ph_ini_handler handler;
    void *user;
    char section[SECTION_SIZE]; /* current section, "" before the first */
    char prev_name[NAME_SIZE];  /* what an indented line continues, or "" */
    int lineno;                 /* 1-based; each reader piece counts one */
    int error;                  /* line of the first error, 0 while none */
} parser;

/* What ph_ini_parse_string reads from: the rest of the string. */
typedef struct string_stream {
    const char *next;
    size_t left;
} string_stream;

/* isspace() rather than a fixed ASCII set: inih classifies with it, so in
 * any locale the program sets both readers split lines the same way. The
 * cast keeps bytes >= 0x80 out of undefined behaviour, as inih does. */
static int is_space(char c)
{
    return isspace((unsigned char)c);
}

static char *skip_space(char *s)
{
    while (*s != '\0' && is_space(*s))
        s++;
    return s;
}

/* Cut trailing whitespace in place. It works up to the first NUL, so a NUL
 * byte that a stream put inside a line ends that line for every rule. */
static void trim_end(char *s)
{
    char *p = s + strlen(s);

    while (p > s && is_space(p[-1]))
        *--p = '\0';
}

/* The first byte of s that is in stops (may be NULL), or a ';' that follows
 * a whitespace byte (an inline comment), or the terminating NUL. A ';' at
 * s itself never counts as a comment, whatever came before s: "a=;b" has
 * the value ";b". '#' only starts a comment at the start of a line. */
static char *find_stop(char *s, const char *stops)
{
    int after_space = 0;

    while (*s != '\0') {
        if (stops != NULL && strchr(stops, *s) != NULL)
            break;
        if (after_space && *s == ';')
            break;
        after_space = is_space(*s);
        s++;
    }
    return s;
}

/* Copy at most size - 1 bytes of src and terminate, without strncpy's
 * padding. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; i + 1 < size && src[i] != '\0'; i++)
        dst[i] = src[i];
    dst[i] = '\0';
}

static void note_error(parser *p)
{
    if (p->error == 0)
        p->error = p->lineno;
}

static void call(parser *p, const char *name, const char *value)
{
    if (!p->handler(p->user, p->section, name, value))
        note_error(p);
}

/* "[name]": everything between '[' and the first ']' is the section, not
 * trimmed ("[ a ]" is " a "), and whatever follows ']' is ignored. An inline
 * comment before any ']' means there is no closing bracket: an error, which
 * leaves both the section and the name being continued as they were. */
static void parse_section(parser *p, char *start)
{
    char *end = find_stop(start + 1, "]");

    if (*end != ']') {
        note_error(p);
        return;
    }
    *end = '\0';
    copy_cut(p->section, sizeof p->section, start + 1);
    p->prev_name[0] = '\0';
}

/* "name = value" or "name : value", split at whichever of '=' and ':' comes
 * first, so a value may contain both. Name and value are trimmed and the
 * value loses an inline comment. A line with neither separator (or with an
 * inline comment before it) is an error; it does not end a multi-line value,
 * so an indented line after it still continues the name before it. */
static void parse_pair(parser *p, char *start)
{
    char *end = find_stop(start, "=:");
    char *value;

    if (*end != '=' && *end != ':') {
        note_error(p);
        return;
    }
    *end = '\0';
    trim_end(start);
    value = end + 1;
    *find_stop(value, NULL) = '\0';
    value = skip_space(value);
    trim_end(value);
    /* An empty name is passed on, but leaves nothing to continue, so an
     * indented line after "=x" is parsed as a line of its own. */
    copy_cut(p->prev_name, sizeof p->prev_name, start);
    call(p, start, value);
}

static void parse_line(parser *p, char *line)
{
    char *start = line;

    /* A UTF-8 BOM is skipped on the first line only; anywhere else its
     * bytes are ordinary text. */
    if (p->lineno == 1 && (unsigned char)line[0] == 0xEF &&
        (unsigned char)line[1] == 0xBB && (unsigned char)line[2] == 0xBF)
        start += 3;
    trim_end(start);
    start = skip_space(start);

    /* Blank lines and comments change nothing, so a multi-line value goes
     * on across them. */
    if (*start == '\0' || *start == ';' || *start == '#')
        return;

    /* Leading whitespace means continuation, but only while there is a name
     * to continue: a pair must have set it and no section header may have
     * come since. So an indented line at the top of the file or right after
     * "[section]" is an ordinary line, and an indented "[x]" after a pair is
     * the value "[x]". inih tests "start > line", which a BOM also makes
     * true; harmless, as nothing can be continued on line 1. Debian's
     * inih 55 passes the rest of the line whole: an inline comment stays in
     * a continued value ("  b ; c" gives "b ; c"), unlike on a pair line. */
    if (p->prev_name[0] != '\0' && start > line) {
        call(p, p->prev_name, start);
        return;
    }

    if (*start == '[')
        parse_section(p, start);
    else
        parse_pair(p, start);
}

int ph_ini_parse_stream(ph_ini_reader reader, void *stream,
                        ph_ini_handler handler, void *user)
{
    char line[LINE_SIZE];
    parser p = {.handler = handler, .user = user};

    assert(reader != NULL);
    assert(handler != NULL);

    /* Each call's bytes are one line, whether or not they end in '\n'; the
     * parse goes on after errors, remembering the first. */
    while (reader(line, (int)sizeof line, stream) != NULL) {
        p.lineno++;
        parse_line(&p, line);
    }
    return p.error;
}

/* fgets itself has restrict-qualified, FILE-typed parameters; calling it
 * through a ph_ini_reader pointer, as inih does with a cast, would be
 * undefined behaviour. */
static char *file_reader(char *str, int num, void *stream)
{
    return fgets(str, num, (FILE *)stream);
}

int ph_ini_parse_file(FILE *file, ph_ini_handler handler, void *user)
{
    assert(file != NULL);
    return ph_ini_parse_stream(file_reader, file, handler, user);
}

int ph_ini_parse(const char *filename, ph_ini_handler handler, void *user)
{
    FILE *file;
    int rv;

    /* Text mode, as inih opens it: on Windows the C library turns CRLF into
     * LF, elsewhere the '\r' is trailing whitespace and trimmed anyway. */
    file = fopen(filename, "r");
    if (file == NULL)
        return -1;
    rv = ph_ini_parse_file(file, handler, user);
    fclose(file);
    return rv;
}

/* fgets over a string: at most num - 1 bytes, stopping after a '\n', NULL
 * once nothing is left. inih's string reader behaves the same, so a long
 * line splits at the same byte whether it comes from a file or a string. */
static char *string_reader(char *str, int num, void *stream)
{
    string_stream *s = stream;
    char *out = str;

    if (s->left == 0 || num < 2)
        return NULL;
    while (num > 1 && s->left > 0) {
        char c = *s->next++;

        s->left--;
        *out++ = c;
        if (c == '\n')
            break;
        num--;
    }
    *out = '\0';
    return str;
}

int ph_ini_parse_string(const char *string, ph_ini_handler handler,
                        void *user)
{
    string_stream s;

    assert(string != NULL);
    /* The input ends at its first NUL, as with inih's strlen. */
    s.next = string;
    s.left = strlen(string);
    return ph_ini_parse_stream(string_reader, &s, handler, user);
}
