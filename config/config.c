#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* The parser: Debian's inih where the build found it, else our reader of
 * the same API (config/ini.c). Only ini_parse_stream is used, through a
 * reader of our own, because Debian's inih is built without
 * INI_HANDLER_LINENO: our reader counts the lines it hands over, which is
 * exactly how inih numbers them, so the handler knows the current line. */
#ifdef PH_SYSTEM_INIH
/* By full path: config/ini.h, ours, has the same name. */
#include PH_INIH_HEADER
#define PARSE_STREAM ini_parse_stream
/* inih's buffer size: a longer line reaches the handler in pieces. */
/* fgets into INI_MAX_LINE bytes: 198 characters, the newline and a NUL. */
_Static_assert(INI_MAX_LINE == 200, "messages say 198 characters a line");
#else
#include "ini.h"
#define PARSE_STREAM ph_ini_parse_stream
#endif

#define MSG_MAX 512
#define SECTION_MAX 256

typedef struct loader {
    const char *name;            /* the file, as messages name it */
    ph_config_report report;
    void *ctx;
    ph_options opts;             /* fresh: defaults, then the file */
    unsigned errors;
    unsigned line;               /* lines handed to the parser so far */
    int in_long_line;            /* the current line is past the limit */
    int after_pair;              /* a name = value came since the section */
    int ignore_pairs;            /* the current line is already reported */
    unsigned real_line;          /* lines of the file (l->line counts the
                                    pieces of an over-long line apart, as
                                    the parser does) */
    /* Lines (as the parser numbers them) already reported, so the parser's
     * own first error is not reported twice. */
    unsigned char reported[512];
    /* Where each setting was first set, for duplicates (0 = not yet). */
    unsigned set_on[64];
    char bad_section[SECTION_MAX]; /* last unknown section, reported once */
    /* The source: a FILE or a NUL-terminated string. */
    FILE *file;
    const char *text;
} loader;

/* Report "FILE:LINE: [warning: ]message"; only problems count as errors. */
static void vreport(loader *l, unsigned line, int is_warning, const char *fmt,
                    va_list ap)
{
    char msg[MSG_MAX];
    int n;

    if (line > 0)
        n = snprintf(msg, sizeof msg, "%s:%u: %s", l->name, line,
                     is_warning ? "warning: " : "");
    else
        n = snprintf(msg, sizeof msg, "%s: %s", l->name,
                     is_warning ? "warning: " : "");
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    if (!is_warning)
        l->errors++;
    if (l->report)
        l->report(l->ctx, msg);
}

static void problem(loader *l, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(l, line, 0, fmt, ap);
    va_end(ap);
}

/* Something to tell the admin that does not make the file wrong. */
static void warning(loader *l, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(l, line, 1, fmt, ap);
    va_end(ap);
}

static size_t row_index(const ph_option_def *d)
{
    return (size_t)(d - ph_option_defs);
}

static int known_section(const char *section)
{
    const ph_option_def *d;

    if (strncmp(section, "route.", 6) == 0)
        return 1; /* its name is checked by route_section */
    for (d = ph_option_defs; d->key != NULL; d++) {
        if (strcmp(d->section, section) == 0)
            return 1;
    }
    return 0;
}

static ph_route_section *route_find(ph_options *o, const char *name)
{
    uint32_t i;

    for (i = 0; i < o->nroutes; i++)
        if (strcmp(o->routes[i].name, name) == 0)
            return &o->routes[i];
    return NULL;
}

/* A [route.NAME] header: NAME must be a route or "prefix.*". The section is
 * created here, so its keys find it; a bad one is reported once and its
 * keys are then ignored. */
static void route_section(loader *l, const char *section)
{
    const char *name = section + 6;
    size_t n = strlen(name);
    int ok;

    if (route_find(&l->opts, name) != NULL)
        return;
    ok = ph_pattern_valid(name, n, 0);
    if (!ok || n > PH_ROUTE_SECTION_NAME_MAX) {
        problem(l, l->real_line, "[%s]: '%s' is not a route or a 'prefix.*' "
                "pattern (letters, digits and ._-/, at most %u characters)",
                section, name, (unsigned)PH_ROUTE_SECTION_NAME_MAX);
        return;
    }
    if (l->opts.nroutes >= PH_ROUTE_SECTIONS_MAX) {
        problem(l, l->real_line, "[%s]: too many [route.*] sections (at most "
                "%u)", section, (unsigned)PH_ROUTE_SECTIONS_MAX);
        return;
    }
    memset(&l->opts.routes[l->opts.nroutes], 0, sizeof l->opts.routes[0]);
    memcpy(l->opts.routes[l->opts.nroutes].name, name, n + 1);
    l->opts.nroutes++;
}

static ph_sid_resolver resolver;
static void *resolver_ctx;

void ph_config_set_resolver(ph_sid_resolver fn, void *ctx)
{
    resolver = fn;
    resolver_ctx = ctx;
}

/* The SDDL abbreviations of well-known SIDs an admin is likely to write. */
static const struct {
    const char *abbr, *sid;
} well_known[] = {
    {"SY", "S-1-5-18"},     {"LS", "S-1-5-19"},     {"NS", "S-1-5-20"},
    {"BA", "S-1-5-32-544"}, {"BU", "S-1-5-32-545"}, {"BG", "S-1-5-32-546"},
    {"PU", "S-1-5-32-547"}, {"AU", "S-1-5-11"},     {"IU", "S-1-5-4"},
    {"SU", "S-1-5-6"},      {"NU", "S-1-5-2"},      {"AN", "S-1-5-7"},
    {"WD", "S-1-1-0"},      {"RD", "S-1-5-32-555"}, {"NO", "S-1-5-32-556"},
    {"CO", "S-1-3-0"},      {"CG", "S-1-3-1"},      {"OW", "S-1-3-4"},
    {"RC", "S-1-5-12"},     {"AC", "S-1-15-2-1"},
};

/* "S-1-" then digits and dashes, no empty part. */
static int sid_syntax(const char *s, size_t n)
{
    size_t i;

    if (n < 5 || n > 184 || memcmp(s, "S-1-", 4) != 0)
        return 0;
    for (i = 4; i < n; i++) {
        if (s[i] == '-' ? s[i - 1] == '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return s[n - 1] != '-';
}

ph_err ph_config_parse_access_list(const char *text, char *out, size_t cap,
                                   char *why, size_t why_cap)
{
    char entry[256], sid[192];
    const char *p = text, *end, *a, *b;
    size_t len = 0, n, i;

    if (cap == 0)
        return PH_EINVAL;
    out[0] = '\0';
    for (;;) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        for (a = p; a < end && (*a == ' ' || *a == '\t'); a++)
            ;
        for (b = end; b > a && (b[-1] == ' ' || b[-1] == '\t'); b--)
            ;
        n = (size_t)(b - a);
        if (n == 0 || n >= sizeof entry) {
            snprintf(why, why_cap, n == 0 ? "empty entry in the list" :
                     "an entry of the list is too long");
            return PH_EINVAL;
        }
        memcpy(entry, a, n);
        entry[n] = '\0';
        sid[0] = '\0';
        if (sid_syntax(entry, n)) {
            memcpy(sid, entry, n + 1);
        } else {
            for (i = 0; i < sizeof well_known / sizeof well_known[0]; i++)
                if (strcmp(entry, well_known[i].abbr) == 0)
                    snprintf(sid, sizeof sid, "%s", well_known[i].sid);
            if (sid[0] == '\0') {
                if (resolver == NULL) {
                    snprintf(why, why_cap, "unknown account '%s' (write a SID "
                             "or an SDDL abbreviation such as BA)", entry);
                    return PH_EINVAL;
                }
                if (resolver(resolver_ctx, entry, sid, sizeof sid, why,
                             why_cap) != 0)
                    return PH_EINVAL;
                if (!sid_syntax(sid, strlen(sid))) {
                    snprintf(why, why_cap, "account '%s' did not resolve to "
                             "a SID", entry);
                    return PH_EINVAL;
                }
            }
        }
        n = strlen(sid);
        if (len + n + (len ? 1 : 0) + 1 > cap) {
            snprintf(why, why_cap, "the list is too long (at most %u bytes "
                     "of SIDs)", (unsigned)cap - 1);
            return PH_EINVAL;
        }
        if (len)
            out[len++] = ',';
        memcpy(out + len, sid, n + 1);
        len += n;
        if (*end == '\0')
            return PH_OK;
        p = end + 1;
    }
}

static uint32_t integrity_rid(const char *v)
{
    static const struct {
        const char *name;
        uint32_t rid;
    } levels[] = {{"low", 0x1000}, {"medium", 0x2000}, {"high", 0x3000},
                  {"system", 0x4000}};
    size_t i;

    for (i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(v, levels[i].name) == 0)
            return levels[i].rid;
    return 0;
}

static void route_pair(loader *l, const char *section, const char *name,
                       const char *value)
{
    ph_route_section *r = route_find(&l->opts, section + 6);
    const ph_option_def *d = ph_option_find_in("limits", "request_timeout_ms");
    char why[MSG_MAX - 64], *list = NULL;
    uint32_t saved;

    if (r == NULL)
        return; /* the header was reported */
    if (strcmp(name, "call") == 0)
        list = r->call;
    else if (strcmp(name, "provide") == 0)
        list = r->provide;
    else if (strcmp(name, "publish") == 0)
        list = r->publish;
    else if (strcmp(name, "subscribe") == 0)
        list = r->subscribe;
    if (list != NULL) {
        if (list[0] != '\0') {
            problem(l, l->real_line, "duplicate key '%s' in [%s]", name,
                    section);
            return;
        }
        if (ph_config_parse_access_list(value, list, PH_RULE_LIST_MAX, why,
                                        sizeof why) != PH_OK) {
            list[0] = '\0';
            problem(l, l->real_line, "[%s] %s: %s", section, name, why);
        }
        return;
    }
    if (strcmp(name, "min_integrity") == 0) {
        if (r->min_integrity != 0) {
            problem(l, l->real_line, "duplicate key '%s' in [%s]", name,
                    section);
            return;
        }
        r->min_integrity = integrity_rid(value);
        if (r->min_integrity == 0)
            problem(l, l->real_line, "[%s] min_integrity must be low, medium, "
                    "high or system, not '%s'", section, value);
        return;
    }
    if (strcmp(name, "activate_service") == 0) {
        size_t n = strlen(value), k;
        if (r->activate_service[0] != '\0') {
            problem(l, l->real_line, "duplicate key '%s' in [%s]", name,
                    section);
            return;
        }
        /* What the SCM allows in a name: no slashes, at most 256. */
        for (k = 0; k < n && value[k] != '/' && value[k] != '\\'; k++)
            ;
        if (n == 0 || n > PH_SERVICE_NAME_MAX || k != n) {
            problem(l, l->real_line, "[%s] activate_service must be a "
                    "service name (1-%u characters, no / or \\), not '%s'",
                    section, (unsigned)PH_SERVICE_NAME_MAX, value);
            return;
        }
        memcpy(r->activate_service, value, n + 1);
        r->activate_line = l->real_line;
        return;
    }
    if (strcmp(name, "activate_timeout_ms") == 0) {
        char *end;
        unsigned long v = strtoul(value, &end, 10);
        if (r->activate_timeout_ms != 0) {
            problem(l, l->real_line, "duplicate key '%s' in [%s]", name,
                    section);
            return;
        }
        if (*value < '0' || *value > '9' || *end != '\0' || v < 100 ||
            v > 3600000) {
            problem(l, l->real_line, "[%s] activate_timeout_ms must be a "
                    "whole number from 100 to 3600000, not '%s'", section,
                    value);
            return;
        }
        r->activate_timeout_ms = (uint32_t)v;
        return;
    }
    if (strcmp(name, "request_timeout_ms") != 0) {
        problem(l, l->real_line, "unknown key '%s' in [%s] (a route section "
                "takes request_timeout_ms, call, provide, publish, subscribe, "
                "min_integrity, activate_service and activate_timeout_ms)",
                name, section);
        return;
    }
    if (r->request_timeout_ms != 0) {
        problem(l, l->real_line, "duplicate key '%s' in [%s]", name, section);
        return;
    }
    /* Parsed by the [limits] row, for the same bounds and messages. */
    saved = l->opts.request_timeout_ms;
    if (ph_option_set(&l->opts, d, value, why, sizeof why) != PH_OK) {
        problem(l, l->real_line, "%s", why);
        return;
    }
    r->request_timeout_ms = l->opts.request_timeout_ms;
    l->opts.request_timeout_ms = saved;
}

/* Levenshtein distance, capped: names are short. */
static unsigned distance(const char *a, const char *b)
{
    unsigned prev[64], cur[64];
    size_t la = strlen(a), lb = strlen(b), i, j;

    if (la >= 63 || lb >= 63)
        return 99;
    for (j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        for (j = 1; j <= lb; j++) {
            unsigned del = prev[j] + 1, ins = cur[j - 1] + 1;
            unsigned sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? del : ins;
            if (sub < cur[j])
                cur[j] = sub;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const char *ph_config_suggest(const char *section, const char *name)
{
    const ph_option_def *d;
    const char *best = NULL;
    unsigned best_d = 3, dd;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (section != NULL && strcmp(d->section, section) != 0)
            continue;
        dd = distance(name, d->key);
        if (dd < best_d) {
            best_d = dd;
            best = d->key;
        }
    }
    return best;
}

static const char *suggest_section(const char *section)
{
    static const char *const sections[] = {"server", "limits", "security",
                                           "log"};
    size_t i;

    for (i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (distance(section, sections[i]) <= 2)
            return sections[i];
    }
    return NULL;
}

/* One message per unknown section, not one per key in it. */
static void unknown_section(loader *l, const char *section)
{
    const char *hint;

    if (strcmp(l->bad_section, section) == 0)
        return;
    snprintf(l->bad_section, sizeof l->bad_section, "%s", section);
    hint = suggest_section(section);
    if (hint)
        problem(l, l->real_line, "unknown section [%s] (did you mean [%s]?)",
                section, hint);
    else
        problem(l, l->real_line, "unknown section [%s]", section);
}

static int on_pair(void *user, const char *section, const char *name,
                   const char *value)
{
    loader *l = user;
    const ph_option_def *d;
    const char *hint;
    char why[MSG_MAX - 64];
    size_t i;

    if (l->ignore_pairs)
        return 1; /* a line classify() already reported */
    if (section[0] == '\0') {
        problem(l, l->real_line, "'%s' is outside any [section]", name);
        return 1;
    }
    if (!known_section(section)) {
        unknown_section(l, section);
        return 1;
    }
    if (strncmp(section, "route.", 6) == 0) {
        route_pair(l, section, name, value);
        return 1;
    }
    d = ph_option_find_in(section, name);
    if (d == NULL) {
        const ph_option_def *elsewhere = ph_option_find(name);
        if (elsewhere != NULL) {
            problem(l, l->real_line, "'%s' belongs in [%s], not [%s]", name,
                    elsewhere->section, section);
        } else if ((hint = ph_config_suggest(section, name)) != NULL ||
                   (hint = ph_config_suggest(NULL, name)) != NULL) {
            problem(l, l->real_line, "unknown key '%s' in [%s] (did you mean '%s'?)",
                    name, section, hint);
        } else {
            problem(l, l->real_line, "unknown key '%s' in [%s]", name, section);
        }
        return 1;
    }
    i = row_index(d);
    if (l->set_on[i] != 0) {
        problem(l, l->real_line, "duplicate key '%s' in [%s] (first set on line %u)",
                name, section, l->set_on[i]);
        return 1;
    }
    l->set_on[i] = l->real_line;
    if (ph_option_set(&l->opts, d, value, why, sizeof why) != PH_OK)
        problem(l, l->real_line, "%s", why);
    return 1;
}

static void mark_reported(loader *l)
{
    if (l->line / 8 < sizeof l->reported)
        l->reported[l->line / 8] |= (unsigned char)(1u << (l->line % 8));
}

static int was_reported(const loader *l, unsigned line)
{
    return line / 8 < sizeof l->reported &&
           (l->reported[line / 8] & (1u << (line % 8)));
}

static void syntax_problem(loader *l, const char *what)
{
    mark_reported(l);
    l->ignore_pairs = 1;
    problem(l, l->real_line, "%s", what);
}

/* The parser reports only its first syntax error (as a line number), so
 * each raw line is also looked at here, to report every bad line with what
 * is wrong with it. The rules are inih's. */
static void classify(loader *l, const char *s)
{
    int indented;

    if (l->line == 1 && (unsigned char)s[0] == 0xEF &&
        (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    indented = *s == ' ' || *s == '\t';
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' ||
           *s == '\f' || *s == '\v')
        s++;
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (indented && l->after_pair) {
        /* inih would append this to the previous value (a multi-line
         * value); no setting takes more than one line. */
        syntax_problem(l, "indented line continues the previous setting; "
                          "each setting takes one line");
        return;
    }
    if (*s == '[') {
        const char *end = strchr(s, ']');
        char name[SECTION_MAX];
        size_t n;

        if (end == NULL) {
            syntax_problem(l, "section name without a closing ']'");
            return;
        }
        l->after_pair = 0;
        /* inih trims nothing inside the brackets: "[ server ]" is the
         * section " server ", which is unknown. */
        n = (size_t)(end - s - 1);
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, s + 1, n);
        name[n] = '\0';
        if (!known_section(name))
            unknown_section(l, name);
        else if (strncmp(name, "route.", 6) == 0)
            route_section(l, name);
        return;
    }
    if (strpbrk(s, "=:") == NULL) {
        syntax_problem(l, "expected 'name = value', '[section]' or a comment");
        return;
    }
    l->after_pair = 1;
}

/* Hands the parser one line at a time, counting them as inih does. */
static char *next_line(char *str, int num, void *stream)
{
    loader *l = stream;
    size_t n = 0;

    if (num < 2)
        return NULL;
    if (l->file != NULL) {
        if (fgets(str, num, l->file) == NULL)
            return NULL;
        n = strlen(str);
    } else {
        if (*l->text == '\0')
            return NULL;
        while (n < (size_t)num - 1 && l->text[n] != '\0') {
            str[n] = l->text[n];
            if (l->text[n++] == '\n')
                break;
        }
        str[n] = '\0';
        l->text += n;
    }
    l->line++;
    l->ignore_pairs = 0;
    if (!l->in_long_line)
        l->real_line++;
    /* A piece that ends without a newline before the end of input is the
     * front of a line the parser cannot hold whole. */
    if (n > 0 && str[n - 1] != '\n' &&
        (l->file ? !feof(l->file) : *l->text != '\0')) {
        if (!l->in_long_line)
            syntax_problem(l, "line is longer than the 198 characters a "
                              "line may have");
        l->in_long_line = 1;
        l->ignore_pairs = 1;
        mark_reported(l);
    } else if (l->in_long_line) {
        /* The tail of a long line, already reported. */
        l->in_long_line = 0;
        l->ignore_pairs = 1;
        mark_reported(l);
    } else {
        classify(l, str);
    }
    return str;
}

static void check_whole(loader *l)
{
    if (l->opts.pending_instances > l->opts.max_connections)
        problem(l, l->set_on[row_index(ph_option_find("pending_instances"))],
                "pending_instances (%u) is more than max_connections (%u)",
                (unsigned)l->opts.pending_instances,
                (unsigned)l->opts.max_connections);
    /* Not an error: a frame always fits an empty queue, so big payloads
     * pass. But a second big frame queued behind the first finds the
     * receiver over its quota although it reads: a subscriber or caller is
     * then disconnected. The line named is whichever of the two was set. */
    if (l->opts.send_queue_bytes < l->opts.max_frame_bytes) {
        unsigned line =
            l->set_on[row_index(ph_option_find("send_queue_bytes"))];
        if (line == 0)
            line = l->set_on[row_index(ph_option_find("max_frame_bytes"))];
        warning(l, line, "send_queue_bytes (%u) is smaller than "
                "max_frame_bytes (%u): one big frame fills a client's "
                "quota, and a second one queued behind it disconnects a "
                "subscriber or caller that is still reading the first; "
                "set send_queue_bytes to a few times max_frame_bytes",
                (unsigned)l->opts.send_queue_bytes,
                (unsigned)l->opts.max_frame_bytes);
    }
}

static ph_err run(loader *l, ph_options *out)
{
    int rc;

    _Static_assert(sizeof(((loader *)0)->set_on) /
                           sizeof(((loader *)0)->set_on[0]) >= 32,
                   "room for every setting");
    ph_options_defaults(&l->opts);
    rc = PARSE_STREAM(next_line, l, on_pair, l);
    /* The parser's first error should be the first one classify() found;
     * anything else is a rule classify() does not know, still an error. */
    if (rc > 0 && !was_reported(l, (unsigned)rc))
        problem(l, (unsigned)rc, "syntax error");
    else if (rc < 0)
        problem(l, 0, "cannot parse (out of memory)");
    if (l->errors == 0)
        check_whole(l);
    if (l->errors != 0)
        return PH_EINVAL;
    *out = l->opts;
    return PH_OK;
}

static void loader_init(loader *l, const char *name, ph_config_report report,
                        void *ctx)
{
    memset(l, 0, sizeof *l);
    l->name = name;
    l->report = report;
    l->ctx = ctx;
}

ph_err ph_config_load_string(const char *name, const char *text,
                             ph_options *out, ph_config_report report,
                             void *ctx)
{
    loader l;

    loader_init(&l, name, report, ctx);
    l.text = text;
    return run(&l, out);
}

ph_err ph_config_load_file(const char *path, ph_options *out,
                           ph_config_report report, void *ctx)
{
    char msg[MSG_MAX];
    loader l;
    ph_err err;

    loader_init(&l, path, report, ctx);
    l.file = fopen(path, "r");
    if (l.file == NULL) {
        snprintf(msg, sizeof msg, "%s: cannot open the file", path);
        if (report)
            report(ctx, msg);
        return PH_ENOTFOUND;
    }
    err = run(&l, out);
    fclose(l.file);
    return err;
}

unsigned ph_config_merge_live(const ph_options *running,
                              const ph_options *loaded, ph_options *out,
                              ph_config_report report, void *ctx)
{
    const ph_option_def *d;
    char was[128], now[128], msg[MSG_MAX];
    unsigned kept = 0;
    ph_options merged = *running;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (ph_option_equal(d, running, loaded))
            continue;
        if (d->live) {
            memcpy((char *)&merged + d->offset,
                   (const char *)loaded + d->offset,
                   d->type == PH_OPT_PIPE ? sizeof merged.pipe_name
                   : d->type == PH_OPT_STR
                       ? (d->max + 1)
                       : sizeof(uint32_t));
            continue;
        }
        kept++;
        ph_option_format(d, running, was, sizeof was);
        ph_option_format(d, loaded, now, sizeof now);
        snprintf(msg, sizeof msg, "[%s] %s changed from '%s' to '%s': it "
                 "applies at the next restart", d->section, d->key, was, now);
        if (report)
            report(ctx, msg);
    }
    /* [route.NAME] sections are all live. */
    memcpy(merged.routes, loaded->routes, sizeof merged.routes);
    merged.nroutes = loaded->nroutes;
    *out = merged;
    return kept;
}
