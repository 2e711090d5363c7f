/* Unit tests of the INI reader (config/ini.h) alone, rule by rule. Portable
 * C11: it runs natively and, in the Windows build, under Wine.
 *
 * Each test parses a text and compares the handler calls, logged one per
 * line as "section|name|value", with the calls inih makes for the same
 * text (checked against Debian's libinih 55 by test_ini_diff.c). Bytes
 * below 0x20 or above 0x7e are logged as \xNN. The handler refuses
 * (returns 0) any value containing '!'. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ini.h"
#include "ini_util.h"

/* The handler's log; big enough for every test here. */
typedef struct call_log {
    char text[8192];
    size_t len;
} call_log;

/* Log s, escaped unless raw (the separators). */
static void log_str(call_log *c, const char *s, int raw)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        int n;

        if (raw || (ch >= 0x20 && ch < 0x7f))
            n = snprintf(c->text + c->len, sizeof c->text - c->len, "%c", ch);
        else
            n = snprintf(c->text + c->len, sizeof c->text - c->len, "\\x%02X",
                         ch);
        if (n > 0 && (size_t)n < sizeof c->text - c->len)
            c->len += (size_t)n;
    }
}

static int log_call(void *user, const char *section, const char *name,
                    const char *value)
{
    call_log *c = user;

    log_str(c, section, 0);
    log_str(c, "|", 1);
    log_str(c, name, 0);
    log_str(c, "|", 1);
    log_str(c, value, 0);
    log_str(c, "\n", 1);
    return strchr(value, '!') == NULL;
}

static void log_clear(call_log *c)
{
    c->len = 0;
    c->text[0] = '\0';
}

/* Parse text with ph_ini_parse_string into c (emptied first). */
static int parse(const char *text, call_log *c)
{
    log_clear(c);
    return ph_ini_parse_string(text, log_call, c);
}

/* Parse len bytes, NULs included, through the stream API (byte_reader,
 * ini_util.h) into c (emptied first). */
static int parse_bytes(const char *data, size_t len, call_log *c)
{
    byte_stream s = byte_stream_of(data, len, 0);

    log_clear(c);
    return ph_ini_parse_stream(byte_reader, &s, log_call, c);
}

/* input must parse (ph_ini_parse_string) to rv, with exactly the calls in
 * want. */
#define CHECK_PARSE(input, rv, want)                                          \
    do {                                                                      \
        call_log ph__log;                                                     \
        CHECK_EQ(parse((input), &ph__log), (rv));                             \
        CHECK_STR(ph__log.text, (want));                                      \
    } while (0)

/* n copies of ch, appended at p; returns the end. */
static char *put_chars(char *p, char ch, size_t n)
{
    memset(p, ch, n);
    return p + n;
}

/* ---- pairs, sections, separators --------------------------------------- */

static void test_pairs_and_sections(void)
{
    CHECK_PARSE("", 0, "");
    /* Before the first header the section is "". */
    CHECK_PARSE("a=1\n[s]\nb=2\n[t]\nc=3", 0, "|a|1\ns|b|2\nt|c|3\n");
    /* A header may name a section again; nothing is merged or checked. */
    CHECK_PARSE("[s]\nk=1\n[s]\nk=2\n", 0, "s|k|1\ns|k|2\n");
}

static void test_separators(void)
{
    /* Whichever of '=' and ':' comes first splits; the other stays in the
     * value. */
    CHECK_PARSE("a : 1\nb:2=3\nc=4:5\n", 0, "|a|1\n|b|2=3\n|c|4:5\n");
}

static void test_trimming(void)
{
    CHECK_PARSE("  name  =  some value \t\n", 0, "|name|some value\n");
    /* Inside the brackets nothing is trimmed, and text after ']' is
     * ignored. */
    CHECK_PARSE("[ a b ] junk\nk=v\n[]\nk=w\n[[x]]\nk=z\n", 0,
                " a b |k|v\n|k|w\n[x|k|z\n");
}

static void test_empty_names_and_values(void)
{
    CHECK_PARSE("a=\nb =\nc =  \n=v\n = w\n:\n", 0,
                "|a|\n|b|\n|c|\n||v\n||w\n||\n");
}

/* ---- comments ----------------------------------------------------------- */

static void test_comment_lines(void)
{
    /* ';' or '#' first on a line, after any whitespace; blank and
     * whitespace-only lines are skipped. */
    CHECK_PARSE("; one\n# two\n  ; three\n\t# four\n\n \t \nk=v\n", 0,
                "|k|v\n");
}

static void test_inline_comments(void)
{
    /* ';' starts a comment only after whitespace; '#' never does inline. */
    CHECK_PARSE("a=b ;c\nb=b;c\nc= ;c\nd=;c\ne=b #c\nf=b\t;c\n", 0,
                "|a|b\n|b|b;c\n|c|\n|d|;c\n|e|b #c\n|f|b\n");
    /* Any isspace() byte counts, \v, \f and a lone \r included. */
    CHECK_PARSE("a=1\v;x\nb=1\f;y\nc=1\r;z\n", 0, "|a|1\n|b|1\n|c|1\n");
    /* In a header: "[a;b]" is the section "a;b", while in "[a ;b]" the
     * comment hides the ']' and the line is an error. */
    CHECK_PARSE("[a;b]\nk=1\n[c ;d]\nk=2\n", 3, "a;b|k|1\na;b|k|2\n");
    /* Before the separator, a comment hides it: an error too. */
    CHECK_PARSE("a ;b=c\na;b=c\n", 1, "|a;b|c\n");
}

/* ---- errors ------------------------------------------------------------- */

static void test_section_errors(void)
{
    /* No ']': an error, and the section stays what it was. */
    CHECK_PARSE("[s]\n[unclosed\nk=v\n", 2, "s|k|v\n");
}

static void test_name_without_separator(void)
{
    /* An error, the parse goes on, and the first error's line is returned. */
    CHECK_PARSE("a=1\njust text\nb=2\nmore text\n", 2, "|a|1\n|b|2\n");
}

static void test_handler_refuses(void)
{
    /* A zero from the handler marks the line as an error, continuation
     * lines included, and the parse still goes on to the end. */
    CHECK_PARSE("a=1\nb=2!\nc=3\n  more!\nd=4!\n", 2,
                "|a|1\n|b|2!\n|c|3\n|c|more!\n|d|4!\n");
    CHECK_PARSE("a=1\n  b!\n", 2, "|a|1\n|a|b!\n");
    /* An earlier syntax error wins over a later refusal. */
    CHECK_PARSE("oops\na=!\n", 1, "|a|!\n");
}

/* ---- multi-line values -------------------------------------------------- */

static void test_continuation(void)
{
    /* An indented line repeats the last name with a new value. Blank and
     * comment lines between do not end the run; a header does. */
    CHECK_PARSE("[s]\na = 1\n  two\n\tthree\n\n  four\n; c\n  five\n"
                "[t]\n  six=6\n", 0,
                "s|a|1\ns|a|two\ns|a|three\ns|a|four\ns|a|five\nt|six|6\n");
    /* Indented text is the value whole: "[x]" is no header, and '=' is no
     * separator. An indented comment is still a comment. */
    CHECK_PARSE("a=1\n  [x]\n  b=2\n  ; c\n  # d\n", 0,
                "|a|1\n|a|[x]\n|a|b=2\n");
}

static void test_indented_line_with_nothing_to_continue(void)
{
    /* At the top of the file, or right after a header, an indented line is
     * parsed like any other; once it is a pair it can be continued. */
    CHECK_PARSE("  a=1\n  b\n[s]\n  c=2\n  d\n  [t]\n", 0,
                "|a|1\n|a|b\ns|c|2\ns|c|d\ns|c|[t]\n");
    /* An empty name leaves nothing to continue either. */
    CHECK_PARSE("=v\n  w\n", 2, "||v\n");
    CHECK_PARSE("=v\n  w=x\n", 0, "||v\n|w|x\n");
}

static void test_continuation_survives_errors(void)
{
    /* Neither a line without a separator nor a header without ']' ends a
     * multi-line value: only a complete header does. */
    CHECK_PARSE("a=1\nbad\n  b\n[oops\n  c\n[x ;y]\n  d\n", 2,
                "|a|1\n|a|b\n|a|c\n|a|d\n");
}

static void test_continuation_keeps_inline_comment(void)
{
    /* Debian's inih 55 strips inline comments on pair lines only; a
     * continued value keeps them. Trailing whitespace still goes. */
    CHECK_PARSE("a=1 ; x\n  b ; c  \n  d;e\n", 0, "|a|1\n|a|b ; c\n|a|d;e\n");
}

/* ---- line length, name length ------------------------------------------- */

static void test_long_line_is_split(void)
{
    char text[600], want[600], *p;
    call_log c;

    /* A line comes in pieces of at most 199 bytes, each parsed and counted
     * as a line: here "k=" and 197 v's, then 51 v's with no '=' (an error
     * on line 2), then x=1 on line 3. */
    p = put_chars(text, 'v', 250);
    memcpy(text, "k=", 2);
    strcpy(p, "\nx=1\nbad\n");
    CHECK_EQ(parse(text, &c), 2);
    p = put_chars(want, 'v', 197);
    *p = '\0';
    CHECK(strncmp(c.text, "|k|", 3) == 0);
    CHECK(strncmp(c.text + 3, want, 197) == 0);
    CHECK_STR(c.text + 200, "\n|x|1\n");

    /* 199 bytes then '\n': the newline is a (blank) line of its own, so the
     * error on "bad" is reported on line 3, not 2. */
    p = put_chars(text, 'v', 199);
    memcpy(text, "k=", 2);
    strcpy(p, "\nbad\n");
    CHECK_EQ(parse(text, &c), 3);

    /* 198 bytes then '\n' fit in one piece. */
    p = put_chars(text, 'v', 198);
    memcpy(text, "k=", 2);
    strcpy(p, "\nbad\n");
    CHECK_EQ(parse(text, &c), 2);
}

static void test_long_line_piece_can_continue(void)
{
    char text[600], *p;
    call_log c;

    /* When the 200th byte of a line is whitespace, the rest of the line is
     * indented text after a pair: a continuation of the line's own name. */
    p = put_chars(text, 'v', 199);
    memcpy(text, "k=", 2);
    strcpy(p, "   more=1\n");
    CHECK_EQ(parse(text, &c), 0);
    CHECK_STR(c.text + 3 + 197, "\n|k|more=1\n");

    /* A long continuation line is cut the same way. */
    p = text;
    memcpy(p, "k=1\n  ", 6);
    p = put_chars(p + 6, 'c', 200);
    strcpy(p, "\n");
    CHECK_EQ(parse(text, &c), 3);
    CHECK(strncmp(c.text, "|k|1\n|k|ccc", 11) == 0);
    CHECK_EQ(strlen(c.text), 5 + 3 + 197 + 1);
}

static void test_max_section_and_name(void)
{
    char text[300], want[300], *p;
    call_log c;

    /* The section is cut to 49 bytes. */
    p = text;
    *p++ = '[';
    p = put_chars(p, 's', 60);
    strcpy(p, "]\nk=v\n");
    CHECK_EQ(parse(text, &c), 0);
    p = put_chars(want, 's', 49);
    strcpy(p, "|k|v\n");
    CHECK_STR(c.text, want);

    /* A pair's name is passed whole; the copy kept for continuation lines
     * is cut to 49 bytes. */
    p = put_chars(text, 'n', 60);
    strcpy(p, "=1\n  two\n");
    CHECK_EQ(parse(text, &c), 0);
    p = want;
    *p++ = '|';
    p = put_chars(p, 'n', 60);
    strcpy(p, "|1\n|");
    p = put_chars(p + 4, 'n', 49);
    strcpy(p, "|two\n");
    CHECK_STR(c.text, want);
}

/* ---- bytes: BOM, line endings, NUL ------------------------------------- */

static void test_bom(void)
{
    CHECK_PARSE("\xEF\xBB\xBF" "a=1\n", 0, "|a|1\n");
    CHECK_PARSE("\xEF\xBB\xBF[s]\nb=2\n", 0, "s|b|2\n");
    /* After a BOM, an indented first line is still an ordinary line. */
    CHECK_PARSE("\xEF\xBB\xBF  a=1\n  b\n", 0, "|a|1\n|a|b\n");
    /* Only on line 1, and only whole. */
    CHECK_PARSE("x=1\n\xEF\xBB\xBF" "b=2\n\xEF\xBBz=3\n", 0,
                "|x|1\n|\\xEF\\xBB\\xBFb|2\n|\\xEF\\xBBz|3\n");
    CHECK_PARSE("\xEF\xBB\xBF\xEF\xBB\xBF" "a=1\n", 0, "|\\xEF\\xBB\\xBFa|1\n");
}

static void test_line_endings(void)
{
    CHECK_PARSE("a = 1\r\n[s]\r\nb=2 \r\n  c\r\n", 0, "|a|1\ns|b|2\ns|b|c\n");
    /* A lone CR does not end a line: it is whitespace inside one. */
    CHECK_PARSE("a=1\rb=2\n", 0, "|a|1\\x0Db=2\n");
    /* No newline at the end is fine. */
    CHECK_PARSE("a=1\nb=2", 0, "|a|1\n|b|2\n");
}

static void test_embedded_nul(void)
{
    static const char raw[] = "a=1\0junk\nb=\0x\n  \0y\n[s\0]\nc=3\n";
    call_log c;

    /* The string API stops at the first NUL, as strlen does. */
    CHECK_PARSE("a=1\0b=2\n", 0, "|a|1\n");
    /* Through a stream a NUL ends its line: the rest of that line is
     * dropped, and "[s" then lacks its ']'. */
    CHECK_EQ(parse_bytes(raw, sizeof raw - 1, &c), 4);
    CHECK_STR(c.text, "|a|1\n|b|\n|c|3\n");
}

/* ---- the ways in ------------------------------------------------------- */

static void test_stream(void)
{
    static const char text[] = "[s]\na=1\n  b\nbad\n";
    byte_stream s = byte_stream_of(text, sizeof text - 1, 0);
    call_log c, from_string;

    log_clear(&c);
    CHECK_EQ(ph_ini_parse_stream(byte_reader, &s, log_call, &c), 4);
    /* inih's INI_MAX_LINE: the reader is offered 200 bytes, NUL included. */
    CHECK_EQ(s.max_num, 200);
    CHECK_EQ(parse(text, &from_string), 4);
    CHECK_STR(c.text, from_string.text);
    /* A stream that is empty from the start. */
    CHECK_EQ(parse_bytes("", 0, &c), 0);
    CHECK_STR(c.text, "");
}

static void test_file(void)
{
    /* In the working directory (the build tree under ctest), which Wine
     * maps as well as a native run does. No CR here: a Windows C library
     * reading in text mode would drop it, a POSIX one would not. */
    static const char path[] = "test_ini.tmp.ini";
    static const char text[] = "; pipehub\n[server]\npipe = \\\\.\\pipe\\x ; c\n"
                               "  more\nbad line\n[log\nlevel=info!\n";
    call_log c, from_string;
    FILE *f;

    f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fclose(f);

    CHECK_EQ(parse(text, &from_string), 5);
    CHECK_STR(from_string.text, "server|pipe|\\\\.\\pipe\\x\n"
                                "server|pipe|more\nserver|level|info!\n");

    log_clear(&c);
    CHECK_EQ(ph_ini_parse(path, log_call, &c), 5);
    CHECK_STR(c.text, from_string.text);

    f = fopen(path, "r");
    CHECK(f != NULL);
    log_clear(&c);
    CHECK_EQ(ph_ini_parse_file(f, log_call, &c), 5);
    fclose(f);
    CHECK_STR(c.text, from_string.text);

    remove(path);
    CHECK_EQ(ph_ini_parse(path, log_call, &c), -1);
}

int main(void)
{
    PH_RUN(test_pairs_and_sections);
    PH_RUN(test_separators);
    PH_RUN(test_trimming);
    PH_RUN(test_empty_names_and_values);
    PH_RUN(test_comment_lines);
    PH_RUN(test_inline_comments);
    PH_RUN(test_section_errors);
    PH_RUN(test_name_without_separator);
    PH_RUN(test_handler_refuses);
    PH_RUN(test_continuation);
    PH_RUN(test_indented_line_with_nothing_to_continue);
    PH_RUN(test_continuation_survives_errors);
    PH_RUN(test_continuation_keeps_inline_comment);
    PH_RUN(test_long_line_is_split);
    PH_RUN(test_long_line_piece_can_continue);
    PH_RUN(test_max_section_and_name);
    PH_RUN(test_bom);
    PH_RUN(test_line_endings);
    PH_RUN(test_embedded_nul);
    PH_RUN(test_stream);
    PH_RUN(test_file);
    return ph_test_summary();
}
