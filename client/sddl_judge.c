/* The judgement of a pipe's access rules from its SDDL; the rules are on
 * the declaration in sddl_judge.h.
 *
 * The text is read twice: once whole, so that malformed SDDL is refused
 * before a single line is said, then ACE by ACE while judging. A deny ACE's
 * effect on a later allow is found by reading the earlier ACEs again, which
 * is quadratic, but an ACL holds at most a few thousand ACEs and this runs
 * once per doctor; in exchange nothing is allocated and nothing can fail
 * half-way. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sddl_judge.h"

/* Access bits as <winnt.h> defines them. Generic rights are mapped with the
 * file generic mapping, the one NPFS applies to pipes. */
#define RIGHT_READ_DATA 0x1u
#define RIGHT_WRITE_DATA 0x2u
#define RIGHT_CREATE_PIPE_INSTANCE 0x4u /* also FILE_APPEND_DATA */
#define RIGHT_WRITE_DAC 0x40000u
#define RIGHT_WRITE_OWNER 0x80000u
#define RIGHT_FILE_ALL 0x1f01ffu
#define RIGHT_FILE_READ 0x120089u
#define RIGHT_FILE_WRITE 0x120116u
#define RIGHT_FILE_EXECUTE 0x1200a0u
#define RIGHT_GENERIC_ALL 0x10000000u
#define RIGHT_GENERIC_EXECUTE 0x20000000u
#define RIGHT_GENERIC_WRITE 0x40000000u
#define RIGHT_GENERIC_READ 0x80000000u
#define RIGHTS_ESCALATE \
    (RIGHT_CREATE_PIPE_INSTANCE | RIGHT_WRITE_DAC | RIGHT_WRITE_OWNER)

/* ACE header values, as in a binary ACL. */
#define ACE_ALLOWED 0x0u
#define ACE_DENIED 0x1u
#define ACE_INHERIT_ONLY 0x8u

/* "S-1-", a 48-bit authority and 15 sub-authorities of 10 digits fit. */
#define SID_MAX 192u
#define SUB_AUTHORITIES_MAX 15
#define TEXT_MAX (2u * PH_SDDL_WHO_MAX + 1024u)

/* ---- the SDDL vocabulary ------------------------------------------------- */

typedef struct code {
    const char *text;
    uint32_t value;
} code;

static const code ace_types[] = {
    {"A", 0x0},   {"D", 0x1},   {"AU", 0x2},  {"AL", 0x3},  {"OA", 0x5},
    {"OD", 0x6},  {"OU", 0x7},  {"OL", 0x8},  {"XA", 0x9},  {"XD", 0xa},
    {"ZA", 0xb},  {"XU", 0xd},  {"ML", 0x11}, {"RA", 0x12}, {"SP", 0x13},
    {"TL", 0x14}, {"FL", 0x15},
};

static const code ace_flags[] = {
    {"OI", 0x1},  {"CI", 0x2},  {"NP", 0x4},  {"IO", 0x8},  {"ID", 0x10},
    {"CR", 0x20}, {"SA", 0x40}, {"TP", 0x40}, {"FA", 0x80},
};

static const code rights[] = {
    {"GA", 0x10000000}, {"GX", 0x20000000}, {"GW", 0x40000000},
    {"GR", 0x80000000}, {"SD", 0x10000},    {"RC", 0x20000},
    {"WD", 0x40000},    {"WO", 0x80000},    {"CC", 0x1},
    {"DC", 0x2},        {"LC", 0x4},        {"SW", 0x8},
    {"RP", 0x10},       {"WP", 0x20},       {"DT", 0x40},
    {"LO", 0x80},       {"CR", 0x100},      {"FA", 0x1f01ff},
    {"FR", 0x120089},   {"FW", 0x120116},   {"FX", 0x1200a0},
    {"KA", 0xf003f},    {"KR", 0x20019},    {"KW", 0x20006},
    {"KX", 0x20019},    {"NR", 0x2},        {"NW", 0x1},
    {"NX", 0x4},
};

/* The SID aliases SDDL may use. Those with no SID here depend on the
 * machine's or the domain's SID and go to the caller's resolve. */
static const struct alias {
    const char *alias, *sid;
} aliases[] = {
    {"AA", "S-1-5-32-579"}, {"AC", "S-1-15-2-1"},   {"AN", "S-1-5-7"},
    {"AO", "S-1-5-32-548"}, {"AS", "S-1-18-1"},     {"AU", "S-1-5-11"},
    {"BA", "S-1-5-32-544"}, {"BG", "S-1-5-32-546"}, {"BO", "S-1-5-32-551"},
    {"BU", "S-1-5-32-545"}, {"CD", "S-1-5-32-574"}, {"CG", "S-1-3-1"},
    {"CO", "S-1-3-0"},      {"CY", "S-1-5-32-569"}, {"ED", "S-1-5-9"},
    {"ER", "S-1-5-32-573"}, {"ES", "S-1-5-32-576"}, {"HA", "S-1-5-32-578"},
    {"HI", "S-1-16-12288"}, {"IS", "S-1-5-32-568"}, {"IU", "S-1-5-4"},
    {"LS", "S-1-5-19"},     {"LU", "S-1-5-32-559"}, {"LW", "S-1-16-4096"},
    {"ME", "S-1-16-8192"},  {"MP", "S-1-16-8448"},  {"MS", "S-1-5-32-577"},
    {"MU", "S-1-5-32-558"}, {"NO", "S-1-5-32-556"}, {"NS", "S-1-5-20"},
    {"NU", "S-1-5-2"},      {"OW", "S-1-3-4"},      {"PO", "S-1-5-32-550"},
    {"PS", "S-1-5-10"},     {"PU", "S-1-5-32-547"}, {"RA", "S-1-5-32-575"},
    {"RC", "S-1-5-12"},     {"RD", "S-1-5-32-555"}, {"RE", "S-1-5-32-552"},
    {"RM", "S-1-5-32-580"}, {"RU", "S-1-5-32-554"}, {"SI", "S-1-16-16384"},
    {"SO", "S-1-5-32-549"}, {"SS", "S-1-18-2"},     {"SU", "S-1-5-6"},
    {"SY", "S-1-5-18"},     {"UD", "S-1-5-84-0-0-0-0-0"},
    {"WD", "S-1-1-0"},      {"WR", "S-1-5-33"},
    {"AP", NULL}, {"CA", NULL}, {"CN", NULL}, {"DA", NULL}, {"DC", NULL},
    {"DD", NULL}, {"DG", NULL}, {"DU", NULL}, {"EA", NULL}, {"EK", NULL},
    {"KA", NULL}, {"LA", NULL}, {"LG", NULL}, {"PA", NULL}, {"RO", NULL},
    {"RS", NULL}, {"SA", NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The code whose text is s[0..n), or NULL. */
static const code *lookup(const code *table, size_t count, const char *s,
                          size_t n)
{
    size_t k;

    for (k = 0; k < count; k++)
        if (strlen(table[k].text) == n && memcmp(table[k].text, s, n) == 0)
            return &table[k];
    return NULL;
}

/* ---- reading the text ---------------------------------------------------- */

typedef struct reader {
    const char *s;
    size_t i;               /* the next character to read */
    const char *why;        /* what was wrong at i, once something was */
    const ph_sddl_env *env; /* for resolve */
} reader;

typedef struct ace {
    uint32_t type;
    uint32_t flags;
    uint32_t mask;     /* as written: generic rights not mapped */
    char sid[SID_MAX]; /* "S-1-..." */
} ace;

/* What the first reading found. */
typedef struct layout {
    int has_owner;
    char owner[SID_MAX];  /* "S-1-...", when has_owner */
    int has_dacl;         /* a "D:" section */
    int dacl_null;        /* D:NO_ACCESS_CONTROL */
    int dacl_protected;   /* the P flag */
    size_t dacl_first;    /* offset of the DACL's first ACE */
    unsigned dacl_count;  /* its ACEs */
} layout;

/* Note what is wrong (the first thing only) and fail. */
static int bad(reader *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return 0;
}

/* Does a section ("O:", "G:", "D:", "S:") start at s[i]? */
static int section_at(const char *s, size_t i)
{
    return (s[i] == 'O' || s[i] == 'G' || s[i] == 'D' || s[i] == 'S') &&
           s[i + 1] == ':';
}

/* How many characters from s[i] are none of stop (nor the end). */
static size_t span(const char *s, size_t i, const char *stop)
{
    size_t n = 0;

    while (s[i + n] != '\0' && strchr(stop, s[i + n]) == NULL)
        n++;
    return n;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A number of digits in base 10 or 16 at p[0..n), at most max. */
static int number(const char *p, size_t n, unsigned base, uint64_t max,
                  uint64_t *out)
{
    uint64_t v = 0;
    size_t k;
    int d;

    if (n == 0)
        return 0;
    for (k = 0; k < n; k++) {
        d = base == 16 ? hex_value(p[k]) : (is_digit(p[k]) ? p[k] - '0' : -1);
        if (d < 0 || v > (max - (uint64_t)d) / base)
            return 0;
        v = v * base + (uint64_t)d;
    }
    *out = v;
    return 1;
}

/* Is p[0..n) a SID in the S-1-AUTHORITY(-SUB)* form? */
static int sid_form(const char *p, size_t n)
{
    size_t k = 4, m;
    uint64_t v;
    int subs = 0;

    if (n < 5 || memcmp(p, "S-1-", 4) != 0)
        return 0;
    m = span(p, k, "-");
    if (m > n - k)
        m = n - k;
    if (m > 2 && p[k] == '0' && (p[k + 1] == 'x' || p[k + 1] == 'X')) {
        if (!number(p + k + 2, m - 2, 16, 0xffffffffffffull, &v))
            return 0;
    } else if (!number(p + k, m, 10, 0xffffffffffffull, &v)) {
        return 0;
    }
    for (k += m; k < n; k += m) {
        if (p[k++] != '-' || ++subs > SUB_AUTHORITIES_MAX)
            return 0;
        m = span(p, k, "-");
        if (m > n - k)
            m = n - k;
        if (!number(p + k, m, 10, 0xffffffffu, &v))
            return 0;
    }
    return 1;
}

/* The SID written at s[i..i+n) (an alias or S-1-...) as "S-1-..." in out.
 * Leaves r->i where it was. */
static int read_sid(reader *r, size_t n, char *out)
{
    const char *p = r->s + r->i;
    char alias[3];
    size_t k;

    if (n == 0)
        return bad(r, "a SID is missing");
    if (n == 2 && p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z') {
        for (k = 0; k < COUNT(aliases); k++)
            if (memcmp(aliases[k].alias, p, 2) == 0)
                break;
        if (k == COUNT(aliases))
            return bad(r, "unknown SID alias");
        if (aliases[k].sid != NULL) {
            snprintf(out, SID_MAX, "%s", aliases[k].sid);
            return 1;
        }
        memcpy(alias, p, 2);
        alias[2] = '\0';
        out[0] = '\0';
        if (r->env->resolve == NULL ||
            r->env->resolve(r->env->ctx, alias, out, SID_MAX) != 1)
            return bad(r, "a SID alias of this machine or domain that "
                          "could not be resolved");
        /* The caller's text is checked like any other SID. */
        out[SID_MAX - 1] = '\0';
        if (!sid_form(out, strlen(out)))
            return bad(r, "a SID alias resolved to something not a SID");
        return 1;
    }
    if (n >= SID_MAX || !sid_form(p, n))
        return bad(r, "not a SID");
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

/* The rights field s[i..i+n): hex (0x...), decimal, or two-letter codes. */
static int read_rights(reader *r, size_t n, uint32_t *out)
{
    const char *p = r->s + r->i;
    const code *c;
    uint64_t v;
    uint32_t m = 0;
    size_t k;

    if (n == 0) {
        *out = 0;
        return 1;
    }
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (!number(p + 2, n - 2, 16, 0xffffffffu, &v))
            return bad(r, "a bad hexadecimal access mask");
        *out = (uint32_t)v;
        return 1;
    }
    if (is_digit(p[0])) {
        if (!number(p, n, 10, 0xffffffffu, &v))
            return bad(r, "a bad access mask");
        *out = (uint32_t)v;
        return 1;
    }
    if (n % 2 != 0)
        return bad(r, "unknown access rights");
    for (k = 0; k < n; k += 2) {
        if ((c = lookup(rights, COUNT(rights), p + k, 2)) == NULL)
            return bad(r, "unknown access rights");
        m |= c->value;
    }
    *out = m;
    return 1;
}

/* Step over the ';' or ')' that must come next. */
static int expect(reader *r, char c)
{
    if (r->s[r->i] != c)
        return bad(r, c == ';' ? "an ACE field is missing (';' expected)"
                               : "an ACE does not end with ')'");
    r->i++;
    return 1;
}

/* The ACE at r->i, which is its '('. */
static int read_ace(reader *r, ace *a)
{
    const char *s = r->s;
    const code *c;
    size_t n, k;
    int depth;

    r->i++;
    n = span(s, r->i, ";)");
    if ((c = lookup(ace_types, COUNT(ace_types), s + r->i, n)) == NULL)
        return bad(r, "unknown ACE type");
    a->type = c->value;
    r->i += n;
    if (!expect(r, ';'))
        return 0;

    n = span(s, r->i, ";)");
    a->flags = 0;
    for (k = 0; k < n; k += 2) {
        if (k + 2 > n ||
            (c = lookup(ace_flags, COUNT(ace_flags), s + r->i + k, 2)) ==
                NULL)
            return bad(r, "unknown ACE flags");
        a->flags |= c->value;
    }
    r->i += n;
    if (!expect(r, ';'))
        return 0;

    n = span(s, r->i, ";)");
    if (!read_rights(r, n, &a->mask))
        return 0;
    r->i += n;
    if (!expect(r, ';'))
        return 0;

    /* The object and inherited-object GUIDs of object ACEs: not judged. */
    for (k = 0; k < 2; k++) {
        n = span(s, r->i, ";)");
        r->i += n;
        if (!expect(r, ';'))
            return 0;
    }

    n = span(s, r->i, ";)");
    if (!read_sid(r, n, a->sid))
        return 0;
    r->i += n;

    /* Callback ACEs carry a condition, resource attribute ACEs a value,
     * both in parentheses that may nest and hold quoted strings. */
    if (s[r->i] == ';') {
        r->i++;
        if (s[r->i] != '(')
            return bad(r, "an ACE's condition does not start with '('");
        for (depth = 0; s[r->i] != '\0'; r->i++) {
            if (s[r->i] == '"') {
                r->i += 1 + span(s, r->i + 1, "\"");
                if (s[r->i] == '\0')
                    break;
            } else if (s[r->i] == '(') {
                depth++;
            } else if (s[r->i] == ')' && --depth == 0) {
                break;
            }
        }
        if (s[r->i] == '\0')
            return bad(r, "an ACE's condition does not end");
        r->i++;
    }
    return expect(r, ')');
}

/* A "D:" or "S:" section after its colon: flags, then ACEs, the first of
 * them at *first. */
static int read_acl(reader *r, int *null, int *protect, size_t *first,
                    unsigned *count)
{
    const char *s = r->s;
    ace a;

    *null = *protect = 0;
    *count = 0;
    for (;;) {
        if (strncmp(s + r->i, "NO_ACCESS_CONTROL", 17) == 0) {
            *null = 1;
            r->i += 17;
        } else if (s[r->i] == 'P') {
            *protect = 1;
            r->i++;
        } else if (strncmp(s + r->i, "AI", 2) == 0 ||
                   strncmp(s + r->i, "AR", 2) == 0) {
            r->i += 2;
        } else {
            break;
        }
    }
    *first = r->i;
    while (s[r->i] == '(') {
        if (!read_ace(r, &a))
            return 0;
        ++*count;
    }
    if (*null && *count != 0)
        return bad(r, "NO_ACCESS_CONTROL with ACEs");
    if (s[r->i] != '\0' && !section_at(s, r->i))
        return bad(r, "'(' or the next section expected");
    return 1;
}

/* The first reading: the whole text, into *l. */
static int read_all(reader *r, layout *l)
{
    const char *s = r->s;
    char group[SID_MAX], seen[5] = "";
    unsigned sacl_count;
    int sacl_null, sacl_protected;
    size_t n, sacl_first;
    char which;

    memset(l, 0, sizeof *l);
    while (s[r->i] != '\0') {
        if (!section_at(s, r->i))
            return bad(r, "O:, G:, D: or S: expected");
        which = s[r->i];
        if (strchr(seen, which) != NULL)
            return bad(r, "a section appears twice");
        seen[strlen(seen)] = which;
        r->i += 2;
        if (which == 'O' || which == 'G') {
            for (n = 0; s[r->i + n] != '\0' && !section_at(s, r->i + n); n++)
                ;
            if (!read_sid(r, n, which == 'O' ? l->owner : group))
                return 0;
            r->i += n;
            l->has_owner |= which == 'O';
        } else if (which == 'D') {
            l->has_dacl = 1;
            if (!read_acl(r, &l->dacl_null, &l->dacl_protected,
                          &l->dacl_first, &l->dacl_count))
                return 0;
        } else if (!read_acl(r, &sacl_null, &sacl_protected, &sacl_first,
                             &sacl_count)) {
            return 0;
        }
    }
    return 1;
}

/* ---- the judgement ------------------------------------------------------- */

typedef struct judge {
    const ph_sddl_env *env;
    const char *sddl;                       /* the text, already read once */
    const layout *l;                        /* what that reading found */
    const char *server_sid;                 /* "" when unknown */
    const char *owner_sid;                  /* "" when there is none */
    char owner_text[PH_SDDL_WHO_MAX];       /* its words, "" when none */
} judge;

static void say(const judge *j, ph_sddl_status st, const char *check,
                const char *fmt, ...)
{
    char text[TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    j->env->say(j->env->ctx, st, check, text);
}

/* The words for sid: the caller's, or the SID alone. */
static void describe(const judge *j, const char *sid, char *out)
{
    out[0] = '\0';
    if (j->env->describe != NULL)
        j->env->describe(j->env->ctx, sid, out, PH_SDDL_WHO_MAX);
    else
        snprintf(out, PH_SDDL_WHO_MAX, "%s", sid);
}

static int sid_is(const char *sid, const char *want)
{
    return strcmp(sid, want) == 0;
}

/* SYSTEM and Administrators: they can take any object anyway. */
static int sid_all_powerful(const char *sid)
{
    return sid_is(sid, "S-1-5-18") || sid_is(sid, "S-1-5-32-544");
}

/* Who a local hub should not let in at all: the text, or NULL. */
static const char *sid_too_broad(const char *sid)
{
    if (sid_is(sid, "S-1-1-0"))
        return "Everyone";
    if (sid_is(sid, "S-1-5-7"))
        return "anonymous logons";
    if (sid_is(sid, "S-1-5-2"))
        return "network logons (remote users)";
    if (sid_is(sid, "S-1-5-32-546"))
        return "Guests";
    if (sid_is(sid, "S-1-15-2-1") || sid_is(sid, "S-1-15-2-2"))
        return "sandboxed (AppContainer) processes";
    return NULL;
}

/* May this SID create instances without that being a finding? 1 yes,
 * 0 no, -1 cannot tell (the server's account is unknown). */
static int sid_may_create(const judge *j, const char *sid)
{
    if (sid_is(sid, "S-1-3-4")) {
        /* OWNER RIGHTS is whoever owns the pipe. */
        if (j->owner_sid[0] == '\0')
            return 0;
        sid = j->owner_sid;
    }
    if (sid_all_powerful(sid))
        return 1;
    if (j->server_sid[0] == '\0')
        return -1;
    return sid_is(sid, j->server_sid);
}

/* What MapGenericMask does with the file generic mapping. */
static uint32_t map_generic(uint32_t m)
{
    if (m & RIGHT_GENERIC_READ)
        m |= RIGHT_FILE_READ;
    if (m & RIGHT_GENERIC_WRITE)
        m |= RIGHT_FILE_WRITE;
    if (m & RIGHT_GENERIC_EXECUTE)
        m |= RIGHT_FILE_EXECUTE;
    if (m & RIGHT_GENERIC_ALL)
        m |= RIGHT_FILE_ALL;
    return m & 0x0fffffffu;
}

/* What mask m (generic rights already mapped) lets its holder do. */
static void rights_text(uint32_t m, char *out, size_t cap)
{
    size_t n = 0;
    int rd = (m & RIGHT_READ_DATA) != 0, wr = (m & RIGHT_WRITE_DATA) != 0;

#define ADD(...) \
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    if ((m & RIGHT_FILE_ALL) == RIGHT_FILE_ALL) {
        ADD("full control (may connect, create instances, change the DACL)");
    } else {
        if (rd && wr)
            ADD("may connect (read/write)");
        else if (rd)
            ADD("may connect (read only)");
        else if (wr)
            ADD("may connect (write only)");
        else
            ADD("may not connect");
        if (m & RIGHT_CREATE_PIPE_INSTANCE)
            ADD(", may create instances");
        if (m & RIGHT_WRITE_DAC)
            ADD(", may change the DACL");
        if (m & RIGHT_WRITE_OWNER)
            ADD(", may take ownership");
    }
    ADD(" [0x%lx]", (unsigned long)m);
#undef ADD
}

/* Read the DACL's ACEs from the first, for the second reading; the first
 * reading proved they are well-formed. */
static void rewind_dacl(const judge *j, reader *r)
{
    memset(r, 0, sizeof *r);
    r->s = j->sddl;
    r->i = j->l->dacl_first;
    r->env = j->env;
}

/* The allowed bits m of the ACE at index i, less those denied earlier to
 * the same SID or to Everyone. */
static uint32_t effective_allow(const judge *j, unsigned i, uint32_t m,
                                const char *sid)
{
    reader r;
    unsigned k;
    ace den;

    rewind_dacl(j, &r);
    for (k = 0; k < i && read_ace(&r, &den); k++) {
        if (den.type != ACE_DENIED || (den.flags & ACE_INHERIT_ONLY))
            continue;
        if (!sid_is(den.sid, sid) && !sid_is(den.sid, "S-1-1-0"))
            continue;
        m &= ~map_generic(den.mask);
    }
    return m;
}

static void check_ace(const judge *j, unsigned i, const ace *a)
{
    char who[PH_SDDL_WHO_MAX], what[256], label[16];
    const char *broad;
    int may;
    uint32_t m;

    snprintf(label, sizeof label, "ace %u", i + 1);
    if (a->type != ACE_ALLOWED && a->type != ACE_DENIED) {
        say(j, PH_SDDL_INFO, label, "ACE type %u, not read by doctor",
            (unsigned)a->type);
        return;
    }
    describe(j, a->sid, who);
    m = map_generic(a->mask);
    if (a->flags & ACE_INHERIT_ONLY) {
        say(j, PH_SDDL_OK, label,
            "%s: inherit-only, does not apply to the pipe", who);
        return;
    }
    if (a->type == ACE_DENIED) {
        rights_text(m, what, sizeof what);
        say(j, PH_SDDL_OK, label, "%s denied: %s", who, what);
        return;
    }
    m = effective_allow(j, i, m, a->sid);
    rights_text(m, what, sizeof what);
    broad = (m & (RIGHT_READ_DATA | RIGHT_WRITE_DATA | RIGHTS_ESCALATE)) != 0
                ? sid_too_broad(a->sid)
                : NULL;
    may = (m & RIGHTS_ESCALATE) != 0 ? sid_may_create(j, a->sid) : 1;
    if (may < 0 && broad == NULL)
        say(j, PH_SDDL_INFO, label,
            "%s: %s; it may create instances: fine if it is the server's "
            "account, which is unknown here", who, what);
    else if (may <= 0)
        say(j, PH_SDDL_WARN, label,
            "%s: %s; it may create instances of this pipe and serve "
            "clients in the hub's place (pipe squatting)%s%s%s%s",
            who, what, broad != NULL ? ", and it lets in " : "",
            broad != NULL ? broad : "",
            sid_is(a->sid, "S-1-3-4") ? "; OWNER RIGHTS is the owner: " : "",
            sid_is(a->sid, "S-1-3-4") ? (j->owner_text[0] != '\0'
                                             ? j->owner_text
                                             : "unknown")
                                      : "");
    else if (broad != NULL)
        say(j, PH_SDDL_WARN, label,
            "%s: %s; that lets %s in (the hub's audience is local, "
            "authenticated users)", who, what, broad);
    else
        say(j, PH_SDDL_OK, label, "%s: %s", who, what);
}

static void check_owner(judge *j)
{
    if (!j->l->has_owner) {
        say(j, PH_SDDL_INFO, "owner", "none reported");
        return;
    }
    describe(j, j->owner_sid, j->owner_text);
    if (sid_all_powerful(j->owner_sid) ||
        (j->server_sid[0] != '\0' && sid_is(j->owner_sid, j->server_sid)))
        say(j, PH_SDDL_OK, "owner", "%s", j->owner_text);
    else if (j->server_sid[0] == '\0')
        say(j, PH_SDDL_INFO, "owner",
            "%s (the server's account is unknown, so not compared)",
            j->owner_text);
    else
        say(j, PH_SDDL_WARN, "owner",
            "%s: not the server's account, SYSTEM or Administrators; an "
            "owner may always change the DACL", j->owner_text);
}

static void check_dacl(const judge *j)
{
    const layout *l = j->l;
    reader r;
    unsigned i;
    ace a;

    if (!l->has_dacl || l->dacl_null) {
        say(j, PH_SDDL_WARN, "dacl",
            "%s: everyone, also anonymous and remote users, has full "
            "control and may create instances",
            l->has_dacl ? "NULL DACL" : "no DACL");
        return;
    }
    if (l->dacl_count == 0) {
        say(j, PH_SDDL_OK, "dacl", "empty: nobody is granted access");
        return;
    }
    say(j, PH_SDDL_OK, "dacl", "%u entries%s:", l->dacl_count,
        l->dacl_protected ? ", protected" : "");
    rewind_dacl(j, &r);
    for (i = 0; i < l->dacl_count && read_ace(&r, &a); i++)
        check_ace(j, i, &a);
}

ph_err ph_sddl_judge(const char *sddl, const ph_sddl_env *env)
{
    reader r = {0};
    layout l;
    judge j;

    if (sddl == NULL || env == NULL || env->say == NULL)
        return PH_EINVAL;
    memset(&j, 0, sizeof j);
    j.env = env;
    j.sddl = sddl;
    j.l = &l;
    j.server_sid = env->server_sid != NULL ? env->server_sid : "";
    r.s = sddl;
    r.env = env;
    if (!read_all(&r, &l)) {
        say(&j, PH_SDDL_WARN, "dacl",
            "cannot judge the pipe's access rules: its SDDL is malformed "
            "at offset %u (%s): \"%.32s\"",
            (unsigned)r.i, r.why != NULL ? r.why : "?", sddl + r.i);
        return PH_EINVAL;
    }
    j.owner_sid = l.has_owner ? l.owner : "";
    check_owner(&j);
    check_dacl(&j);
    return PH_OK;
}
