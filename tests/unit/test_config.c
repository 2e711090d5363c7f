/* Loading pipehub.ini. Built twice natively (against Debian's inih and
 * against config/ini.c) and once for Windows, so every case here holds for
 * both parsers. */
#include "harness.h"

#include "config.h"
#include "options.h"

#ifndef PH_SOURCE_DIR
#define PH_SOURCE_DIR "."
#endif

/* Collects reported messages, one per line. */
typedef struct msgs {
    char text[8192];
    int count;
} msgs;

static void collect(void *ctx, const char *m)
{
    msgs *ms = ctx;
    size_t n = strlen(ms->text);

    snprintf(ms->text + n, sizeof ms->text - n, "%s\n", m);
    ms->count++;
}

static ph_err load(const char *text, ph_options *o, msgs *ms)
{
    memset(ms, 0, sizeof *ms);
    return ph_config_load_string("pipehub.ini", text, o, collect, ms);
}

#define CHECK_HAS(ms, needle)                                                 \
    do {                                                                      \
        if (strstr((ms).text, (needle)) == NULL) {                            \
            PH_FAIL_HERE("messages lack \"%s\"; got:\n%s", (needle),          \
                         (ms).text);                                          \
            return;                                                           \
        }                                                                     \
    } while (0)

/* A file that must be refused (PH_EINVAL), and what the messages must say:
 * says AMONG them, or says and nothing else (ONLY); says NULL: not looked
 * at. */
enum { AMONG, ONLY };
typedef struct refusal {
    const char *text;
    const char *says;
    int only;
} refusal;

/* 1 when r->text is refused as r says; 0, saying what happened, when not. */
static int refused(const refusal *r)
{
    ph_options o;
    msgs ms;
    ph_err err = load(r->text, &o, &ms);

    if (err == PH_EINVAL &&
        (r->says == NULL || (r->only ? strcmp(ms.text, r->says) == 0
                                      : strstr(ms.text, r->says) != NULL)))
        return 1;
    fprintf(stderr, "  \"%s\": %s, messages:\n%s  want PH_EINVAL and %s\"%s\"\n",
            r->text, ph_strerror(err), ms.text, r->only ? "exactly " : "",
            r->says ? r->says : "");
    return 0;
}

static void test_empty_file_is_defaults(void)
{
    ph_options o, d;
    msgs ms;

    ph_options_defaults(&d);
    CHECK_EQ(load("", &o, &ms), PH_OK);
    CHECK_EQ(ms.count, 0);
    CHECK(memcmp(&o, &d, sizeof o) == 0);
    CHECK_EQ(load("; only a comment\n\n[server]\n", &o, &ms), PH_OK);
    CHECK(memcmp(&o, &d, sizeof o) == 0);
}

static void test_values_land(void)
{
    ph_options o;
    msgs ms;

    CHECK_EQ(load("[server]\npipe_name = \\\\.\\pipe\\abc\nworker_threads=3\n"
                  "[limits]\nidle_timeout_ms : 5000\n"
                  "[security]\nallow_remote = Yes\nsddl = D:P(A;;GA;;;WD)\n"
                  "[log]\nlevel = DEBUG\nfile = C:\\logs\\hub.log ; where\n"
                  "event_log = off\n",
                  &o, &ms),
             PH_OK);
    CHECK_STR(o.pipe_name, "\\\\.\\pipe\\abc");
    CHECK_EQ(o.worker_threads, 3);
    CHECK_EQ(o.idle_timeout_ms, 5000);
    CHECK_EQ(o.allow_remote, 1);
    CHECK_STR(o.sddl, "D:P(A;;GA;;;WD)");
    CHECK_EQ(o.log_level, 3);
    CHECK_STR(o.log_file, "C:\\logs\\hub.log");
    CHECK_EQ(o.log_event_log, 0);
}

/* Each numeric key: both bounds accepted, one past each refused with the
 * range in the message and the line number. */
static void test_every_bound(void)
{
    const ph_option_def *d;
    char text[256], want[128];
    ph_options o;
    msgs ms;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (d->type != PH_OPT_U32)
            continue;
        /* The one cross-key rule: pending_instances <= max_connections. */
        snprintf(text, sizeof text, "[%s]\n%s\n%s = %u\n", d->section,
                 strcmp(d->key, "max_connections") ? ""
                                                   : "pending_instances = 1",
                 d->key, (unsigned)d->min);
        if (load(text, &o, &ms) != PH_OK)
            PH_FAIL_HERE("%s = min rejected: %s", d->key, ms.text);
        snprintf(text, sizeof text, "[%s]\n%s = %u\n", d->section, d->key,
                 (unsigned)d->max);
        if (load(text, &o, &ms) != PH_OK && strcmp(d->key, "pending_instances"))
            PH_FAIL_HERE("%s = max rejected: %s", d->key, ms.text);
        snprintf(want, sizeof want, "pipehub.ini:3: %s = %llu is out of range "
                 "(%u..%u)", d->key, (unsigned long long)d->max + 1,
                 (unsigned)d->min, (unsigned)d->max);
        snprintf(text, sizeof text, "[%s]\n\n%s = %llu\n", d->section, d->key,
                 (unsigned long long)d->max + 1);
        CHECK_EQ(load(text, &o, &ms), PH_EINVAL);
        CHECK_HAS(ms, want);
        if (d->min > 0) {
            snprintf(text, sizeof text, "[%s]\n%s = %u\n", d->section, d->key,
                     (unsigned)d->min - 1);
            CHECK_EQ(load(text, &o, &ms), PH_EINVAL);
            CHECK_HAS(ms, "out of range");
        }
    }
}

static void test_type_errors(void)
{
    static const refusal cases[] = {
        {"[server]\nmax_connections = lots\n",
         "pipehub.ini:2: max_connections = 'lots' is not a whole number "
         "(1..100000)", AMONG},
        {"[server]\nmax_connections = -5\n", NULL, AMONG},
        {"[security]\nallow_remote = maybe\n",
         "pipehub.ini:2: allow_remote = 'maybe' is not true or false", AMONG},
        {"[log]\nlevel = verbose\n",
         "level = 'verbose' is not one of error, warn, info, debug", AMONG},
        {"[server]\npipe_name = \\\\server\\pipe\\x\n",
         "pipehub.ini:2: pipe_name = '\\\\server\\pipe\\x' is not a local pipe "
         "name", AMONG},
        {"[server]\npipe_name =\n", NULL, AMONG},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(refused(&cases[i]));
}

static void test_misspelt_key(void)
{
    static const refusal cases[] = {
        {"[log]\nlevl = info\n",
         "unknown key 'levl' in [log] (did you mean 'level'?)", AMONG},
        {"[log]\nzzzzzz = 1\n",
         "pipehub.ini:2: unknown key 'zzzzzz' in [log]\n", ONLY},
    };
    char text[512] = "";
    refusal issue = {text,
                     "pipehub.ini:12: unknown key 'max_conections' in "
                     "[server] (did you mean 'max_connections'?)\n",
                     ONLY};
    size_t i;

    /* The example of the issue, on line 12. */
    for (i = 0; i < 10; i++)
        strcat(text, "; comment\n");
    strcat(text, "[server]\nmax_conections = 10\n");
    CHECK(refused(&issue));
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(refused(&cases[i]));
}

static void test_structure_errors(void)
{
    static const refusal cases[] = {
        {"[server]\nworker_threads = 1\nworker_threads = 2\n",
         "pipehub.ini:3: duplicate key 'worker_threads' in [server] (first "
         "set on line 2)", AMONG},
        {"[servr]\nworker_threads = 1\nmax_connections = 2\n",
         "pipehub.ini:1: unknown section [servr] (did you mean [server]?)\n",
         ONLY},
        {"[plugins]\n", "pipehub.ini:1: unknown section [plugins]\n", ONLY},
        {"[limits]\nmax_frame_bytes = 2048\n",
         "pipehub.ini:2: 'max_frame_bytes' belongs in [server], not "
         "[limits]", AMONG},
        {"worker_threads = 2\n",
         "pipehub.ini:1: 'worker_threads' is outside any [section]", AMONG},
        {"[server]\npending_instances = 10\nmax_connections = 5\n",
         "pipehub.ini:2: pending_instances (10) is more than "
         "max_connections (5)", AMONG},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(refused(&cases[i]));
}

static void test_syntax_errors_all_reported(void)
{
    ph_options o;
    msgs ms;

    CHECK_EQ(load("[server\nworker_threads 2\n[log]\nlevel = info\njunk\n", &o, &ms),
             PH_EINVAL);
    CHECK_HAS(ms, "pipehub.ini:1: section name without a closing ']'");
    CHECK_HAS(ms, "pipehub.ini:2: expected 'name = value', '[section]' or a comment");
    CHECK_HAS(ms, "pipehub.ini:5: expected 'name = value'");
    CHECK_EQ(ms.count, 3);
}

static void test_continuation_and_long_lines(void)
{
    char text[600];
    ph_options o;
    msgs ms;

    CHECK_EQ(load("[log]\nfile = a\n   b\nlevel = warn\n", &o, &ms), PH_EINVAL);
    CHECK_STR(ms.text, "pipehub.ini:3: indented line continues the previous "
                       "setting; each setting takes one line\n");
    /* A 300-character line: reported once, on its own line number, and the
     * lines after it keep their numbers. */
    snprintf(text, sizeof text, "[security]\nsddl = %0300d\n[log]\nlevl = x\n", 0);
    CHECK_EQ(load(text, &o, &ms), PH_EINVAL);
    CHECK_HAS(ms, "pipehub.ini:2: line is longer than the 198 characters");
    CHECK_HAS(ms, "pipehub.ini:4: unknown key 'levl'");
    if (ms.count != 2)
        PH_FAIL_HERE("expected 2 messages, got:\n%s", ms.text);
    /* 198 characters is fine, 199 is not. */
    snprintf(text, sizeof text, "[log]\nfile = %0191d\n", 0);
    CHECK_EQ(strlen(strchr(text, '\n') + 1), 199);
    CHECK_EQ(load(text, &o, &ms), PH_OK);
    snprintf(text, sizeof text, "[log]\nfile = %0192d\n", 0);
    CHECK_EQ(load(text, &o, &ms), PH_EINVAL);
}

static void test_crlf_and_bom(void)
{
    ph_options o;
    msgs ms;

    CHECK_EQ(load("\xEF\xBB\xBF[server]\r\nworker_threads = 7\r\n", &o, &ms), PH_OK);
    CHECK_EQ(o.worker_threads, 7);
}

static void test_bad_file_changes_nothing(void)
{
    ph_options o;
    msgs ms;

    memset(&o, 0xAB, sizeof o);
    CHECK_EQ(load("[server]\nworker_threads = 3\nmax_connections = 0\n", &o, &ms), PH_EINVAL);
    CHECK_EQ(o.worker_threads, 0xABABABAB);
    CHECK_EQ(ph_config_load_file(PH_SOURCE_DIR "/no/such/file.ini", &o, collect, &ms),
             PH_ENOTFOUND);
    CHECK_HAS(ms, "cannot open the file");
}

/* send_queue_bytes below max_frame_bytes loads (big frames pass an empty
 * queue) but is a warning naming the line and both values. */
static void test_queue_smaller_than_frame_warns(void)
{
    ph_options o;
    msgs ms;

    CHECK_EQ(load("[server]\nmax_frame_bytes = 17825792\n", &o, &ms), PH_OK);
    CHECK_EQ(ms.count, 1);
    CHECK_HAS(ms, "pipehub.ini:2: warning: send_queue_bytes (4194304) is "
                  "smaller than max_frame_bytes (17825792)");
    CHECK_EQ(o.max_frame_bytes, 17825792);
    CHECK_EQ(load("[server]\nmax_frame_bytes = 17825792\n[limits]\n"
                  "send_queue_bytes = 1048576\n", &o, &ms), PH_OK);
    CHECK_HAS(ms, "pipehub.ini:4: warning: send_queue_bytes (1048576)");
    CHECK_EQ(load("[server]\nmax_frame_bytes = 17825792\n[limits]\n"
                  "send_queue_bytes = 67108864\n", &o, &ms), PH_OK);
    CHECK_EQ(ms.count, 0);
}

static void test_merge_live(void)
{
    ph_options run, loaded, out;
    msgs ms;

    ph_options_defaults(&run);
    CHECK_EQ(load("[server]\npipe_name = other\nworker_threads = 9\n"
                  "max_frame_bytes = 4096\n[log]\nlevel = debug\n",
                  &loaded, &ms),
             PH_OK);
    memset(&ms, 0, sizeof ms);
    CHECK_EQ(ph_config_merge_live(&run, &loaded, &out, collect, &ms), 2);
    CHECK_STR(out.pipe_name, run.pipe_name);
    CHECK_EQ(out.worker_threads, run.worker_threads);
    CHECK_EQ(out.max_frame_bytes, 4096);
    CHECK_EQ(out.log_level, 3);
    CHECK_HAS(ms, "[server] pipe_name changed from '\\\\.\\pipe\\pipehub' to "
                  "'\\\\.\\pipe\\other': it applies at the next restart");
    CHECK_HAS(ms, "[server] worker_threads changed from '0' to '9'");
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The table, the shipped pipehub.ini and docs/CONFIG.md say the same. */
static void test_route_sections(void)
{
    ph_options o, running, merged;
    msgs ms;

    CHECK_EQ(load("[limits]\nrequest_timeout_ms = 5000\n"
                  "[route.billing.*]\nrequest_timeout_ms = 120000\n"
                  "[route.billing.ping]\nrequest_timeout_ms = 2000\n"
                  "[route.quiet]\n", &o, &ms), PH_OK);
    CHECK_EQ(ms.count, 0);
    CHECK_EQ(o.nroutes, 3);
    CHECK_STR(o.routes[0].name, "billing.*");
    CHECK_EQ(o.routes[0].request_timeout_ms, 120000);
    CHECK_STR(o.routes[1].name, "billing.ping");
    CHECK_EQ(o.routes[1].request_timeout_ms, 2000);
    CHECK_STR(o.routes[2].name, "quiet");
    CHECK_EQ(o.routes[2].request_timeout_ms, 0); /* the [limits] default */

    /* Bad names, keys and values, each with its line. */
    CHECK_EQ(load("[route.a*]\nrequest_timeout_ms = 100\n"
                  "[route.ok]\ncolour = blue\n"
                  "request_timeout_ms = 5\n"
                  "[route.ok]\nrequest_timeout_ms = 200\n"
                  "request_timeout_ms = 300\n", &o, &ms), PH_EINVAL);
    CHECK_HAS(ms, "pipehub.ini:1: [route.a*]: 'a*' is not a route");
    CHECK_HAS(ms, "pipehub.ini:4: unknown key 'colour' in [route.ok]");
    CHECK_HAS(ms, "pipehub.ini:5: ");
    CHECK_HAS(ms, "pipehub.ini:8: duplicate key 'request_timeout_ms' in [route.ok]");
    CHECK_EQ(ms.count, 4);

    /* All live: a reload takes the new sections whole. */
    CHECK_EQ(load("[route.x]\nrequest_timeout_ms = 1000\n", &running, &ms),
             PH_OK);
    CHECK_EQ(load("[route.y]\nrequest_timeout_ms = 2000\n", &o, &ms), PH_OK);
    CHECK_EQ(ph_config_merge_live(&running, &o, &merged, NULL, NULL), 0);
    CHECK_EQ(merged.nroutes, 1);
    CHECK_STR(merged.routes[0].name, "y");
}

/* A resolver that knows two names, as the Windows one would ask the
 * machine. */
static int fake_resolve(void *ctx, const char *name, char *sid, size_t cap,
                        char *why, size_t why_cap)
{
    (void)ctx;
    if (strcmp(name, "NT SERVICE\\billing") == 0) {
        snprintf(sid, cap, "S-1-5-80-1-2-3-4-5");
        return 0;
    }
    if (strcmp(name, "CONTOSO\\bob") == 0) {
        snprintf(sid, cap, "not a sid");
        return 0;
    }
    snprintf(why, why_cap, "unknown account '%s'", name);
    return -1;
}

static void test_access_rules(void)
{
    ph_options o;
    msgs ms;
    char out[PH_RULE_LIST_MAX], why[128];

    /* SIDs and abbreviations need no resolver. */
    CHECK_EQ(load("[route.pay.*]\ncall = SY, BA,S-1-5-21-1-2-3-1001\n"
                  "provide = NS\npublish = WD\nsubscribe = AU, IU\n"
                  "min_integrity = high\n", &o, &ms), PH_OK);
    CHECK_EQ(ms.count, 0);
    CHECK_STR(o.routes[0].call, "S-1-5-18,S-1-5-32-544,S-1-5-21-1-2-3-1001");
    CHECK_STR(o.routes[0].provide, "S-1-5-20");
    CHECK_STR(o.routes[0].publish, "S-1-1-0");
    CHECK_STR(o.routes[0].subscribe, "S-1-5-11,S-1-5-4");
    CHECK_EQ(o.routes[0].min_integrity, 0x3000);

    /* Names need the resolver; without one they are errors. */
    CHECK_EQ(load("[route.a]\ncall = NT SERVICE\\billing\n", &o, &ms),
             PH_EINVAL);
    CHECK_HAS(ms, "pipehub.ini:2: [route.a] call: unknown account 'NT SERVICE\\billing'");
    ph_config_set_resolver(fake_resolve, NULL);
    CHECK_EQ(load("[route.a]\ncall = NT SERVICE\\billing, SY\n", &o, &ms),
             PH_OK);
    CHECK_STR(o.routes[0].call, "S-1-5-80-1-2-3-4-5,S-1-5-18");
    CHECK_EQ(load("[route.a]\ncall = ghost\nprovide = CONTOSO\\bob\n"
                  "publish = SY,,BA\nsubscribe = S-1-5-\n"
                  "min_integrity = extreme\ncall = SY\n", &o, &ms),
             PH_EINVAL);
    ph_config_set_resolver(NULL, NULL);
    CHECK_HAS(ms, "pipehub.ini:2: [route.a] call: unknown account 'ghost'");
    CHECK_HAS(ms, "pipehub.ini:3: [route.a] provide: account 'CONTOSO\\bob' did not resolve");
    CHECK_HAS(ms, "pipehub.ini:4: [route.a] publish: empty entry");
    CHECK_HAS(ms, "pipehub.ini:5: [route.a] subscribe: unknown account 'S-1-5-'");
    CHECK_HAS(ms, "pipehub.ini:6: [route.a] min_integrity must be low, medium, high or system");
    CHECK_EQ(ms.count, 5); /* line 7: call was never set, so no duplicate */

    /* The list is bounded. */
    CHECK_EQ(ph_config_parse_access_list("SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,"
                                         "SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,"
                                         "SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,"
                                         "SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,"
                                         "SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,SY,"
                                         "SY,SY,SY,SY,SY", out, sizeof out,
                                         why, sizeof why), PH_EINVAL);
    CHECK(strstr(why, "too long") != NULL);
}

static void test_table_ini_and_docs_agree(void)
{
    const ph_option_def *d;
    ph_options o, def;
    char want[512], range[64];
    const char *doc, *ini, *sec;
    msgs ms;

    memset(&ms, 0, sizeof ms);
    CHECK_EQ(ph_config_load_file(PH_SOURCE_DIR "/config/pipehub.ini", &o,
                                 collect, &ms),
             PH_OK);
    ph_options_defaults(&def);
    ini = slurp(PH_SOURCE_DIR "/config/pipehub.ini");
    CHECK(ini != NULL);
    for (d = ph_option_defs; d->key != NULL; d++) {
        if (!ph_option_equal(d, &o, &def))
            PH_FAIL_HERE("pipehub.ini sets %s to something else than its "
                         "default", d->key);
        snprintf(want, sizeof want, "\n%s = %s\n", d->key, d->def);
        if (d->def[0] == '\0')
            snprintf(want, sizeof want, "\n%s =\n", d->key);
        if (strstr(ini, want) == NULL)
            PH_FAIL_HERE("pipehub.ini lacks the line '%s = %s'", d->key, d->def);
    }
    doc = slurp(PH_SOURCE_DIR "/docs/CONFIG.md");
    CHECK(doc != NULL);
    for (d = ph_option_defs; d->key != NULL; d++) {
        snprintf(want, sizeof want, "## [%s]", d->section);
        sec = strstr(doc, want);
        if (sec == NULL) {
            PH_FAIL_HERE("CONFIG.md has no section %s", want);
            continue;
        }
        if (d->type == PH_OPT_U32)
            snprintf(range, sizeof range, " | %u..%u | ", (unsigned)d->min,
                     (unsigned)d->max);
        else
            range[0] = '\0';
        if (d->def[0])
            snprintf(want, sizeof want, "| `%s` | ", d->key);
        else
            snprintf(want, sizeof want, "| `%s` | ", d->key);
        sec = strstr(sec, want);
        if (sec == NULL) {
            PH_FAIL_HERE("CONFIG.md lacks a row for %s in [%s]", d->key,
                         d->section);
            continue;
        }
        {
            const char *eol = strchr(sec, '\n');
            char row[1024];
            size_t n = eol ? (size_t)(eol - sec) : strlen(sec);
            if (n >= sizeof row)
                n = sizeof row - 1;
            memcpy(row, sec, n);
            row[n] = '\0';
            snprintf(want, sizeof want, d->def[0] ? "| `%s` |" : "| (empty)%s |",
                     d->def);
            if (strstr(row, want) == NULL)
                PH_FAIL_HERE("CONFIG.md row of %s lacks the default %s: %s",
                             d->key, want, row);
            if (range[0] && strstr(row, range) == NULL)
                PH_FAIL_HERE("CONFIG.md row of %s lacks the range%s: %s",
                             d->key, range, row);
            if (strstr(row, d->live ? " | live | " : " | restart | ") == NULL)
                PH_FAIL_HERE("CONFIG.md row of %s should say %s", d->key,
                             d->live ? "live" : "restart");
        }
    }
}

int main(void)
{
    PH_RUN(test_empty_file_is_defaults);
    PH_RUN(test_values_land);
    PH_RUN(test_every_bound);
    PH_RUN(test_type_errors);
    PH_RUN(test_misspelt_key);
    PH_RUN(test_structure_errors);
    PH_RUN(test_syntax_errors_all_reported);
    PH_RUN(test_continuation_and_long_lines);
    PH_RUN(test_crlf_and_bom);
    PH_RUN(test_bad_file_changes_nothing);
    PH_RUN(test_queue_smaller_than_frame_warns);
    PH_RUN(test_merge_live);
    PH_RUN(test_route_sections);
    PH_RUN(test_access_rules);
    PH_RUN(test_table_ini_and_docs_agree);
    return ph_test_summary();
}
