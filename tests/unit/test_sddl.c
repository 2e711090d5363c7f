/* The doctor's judgement of a pipe's SDDL (client/sddl_judge.c): the lines
 * it says for the project's default descriptor as Windows and Wine report
 * it, loose ones, a squatting owner, deny and inherit-only entries, and
 * malformed text. */
#include "harness.h"

#include "options.h"
#include "sddl_judge.h"

#define LINES_MAX 16
#define SERVICE_SID "S-1-5-21-1-2-3-1001" /* the hub's account, on Windows */
#define WINE_USER "S-1-5-21-0-0-0-1000"   /* the user Wine runs as */
#define WINE_GROUP "S-1-5-21-0-0-0-513"   /* its primary group */

static const char *const st_names[] = {"OK", "INFO", "WARN"};

/* What one judgement said. */
typedef struct said {
    unsigned n;
    struct {
        ph_sddl_status st;
        char check[16];
        char text[4096];
    } line[LINES_MAX];
    unsigned overflow; /* lines past LINES_MAX */
} said;

static void collect(void *ctx, ph_sddl_status st, const char *check,
                    const char *text)
{
    said *s = ctx;

    if (s->n == LINES_MAX) {
        s->overflow++;
        return;
    }
    s->line[s->n].st = st;
    snprintf(s->line[s->n].check, sizeof s->line[s->n].check, "%s", check);
    snprintf(s->line[s->n].text, sizeof s->line[s->n].text, "%s", text);
    s->n++;
}

/* Names as LookupAccountSidW gives them, for the SIDs the tests use. */
static void describe(void *ctx, const char *sid, char *out, size_t cap)
{
    static const struct {
        const char *sid, *name;
    } names[] = {
        {"S-1-5-18", "NT AUTHORITY\\SYSTEM"},
        {"S-1-5-32-544", "BUILTIN\\Administrators"},
        {"S-1-5-32-545", "BUILTIN\\Users"},
        {"S-1-3-4", "OWNER RIGHTS"},
        {"S-1-5-11", "NT AUTHORITY\\Authenticated Users"},
        {"S-1-1-0", "Everyone"},
        {WINE_USER, "VM\\root"},
        {WINE_GROUP, "VM\\None"},
        {SERVICE_SID, "HOST\\svc-pipehub"},
    };
    size_t i;

    (void)ctx;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(sid, names[i].sid) == 0) {
            snprintf(out, cap, "%s (%s)", names[i].name, sid);
            return;
        }
    snprintf(out, cap, "%s", sid);
}

/* The machine-relative aliases of a made-up machine S-1-5-21-1-2-3. */
static int resolve(void *ctx, const char *alias, char *out, size_t cap)
{
    (void)ctx;
    if (strcmp(alias, "LA") == 0)
        snprintf(out, cap, "S-1-5-21-1-2-3-500");
    else if (strcmp(alias, "DU") == 0)
        snprintf(out, cap, "S-1-5-21-1-2-3-513");
    else
        return 0;
    return 1;
}

static ph_err judge(const char *sddl, const char *server_sid, said *s)
{
    ph_sddl_env env = {0};

    memset(s, 0, sizeof *s);
    env.server_sid = server_sid;
    env.describe = describe;
    env.resolve = resolve;
    env.say = collect;
    env.ctx = s;
    return ph_sddl_judge(sddl, &env);
}

/* Line i is "ST CHECK TEXT" exactly. */
#define CHECK_LINE(s, i, want_st, want_check, want_text)                      \
    do {                                                                      \
        CHECK((i) < (s).n);                                                   \
        CHECK_STR(st_names[(s).line[i].st], want_st);                         \
        CHECK_STR((s).line[i].check, want_check);                             \
        CHECK_STR((s).line[i].text, want_text);                               \
    } while (0)

static const char full[] =
    "full control (may connect, create instances, change the DACL) "
    "[0x1f01ff]";
static const char squat[] =
    "; it may create instances of this pipe and serve clients in the hub's "
    "place (pipe squatting)";

/* The default SDDL, from the settings table, with owner prepended. */
static void default_sddl(const char *owner, char *out, size_t cap)
{
    ph_options o;

    ph_options_defaults(&o);
    snprintf(out, cap, "O:%s%s", owner, o.sddl);
}

static void test_default_is_the_one_judged_here(void)
{
    ph_options o;

    /* The lines below are for this descriptor; a new default needs them
     * looked at again. */
    ph_options_defaults(&o);
    CHECK_STR(o.sddl,
              "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)(A;;0x12019b;;;AU)");
}

/* On Windows the pipe's owner is the service's account: nothing to say. */
static void test_default_owned_by_the_server(void)
{
    char sddl[PH_SDDL_MAX + 64], text[512];
    said s;

    default_sddl(SERVICE_SID, sddl, sizeof sddl);
    CHECK_EQ(judge(sddl, SERVICE_SID, &s), PH_OK);
    CHECK_EQ(s.n, 6);
    CHECK_LINE(s, 0, "OK", "owner", "HOST\\svc-pipehub (" SERVICE_SID ")");
    CHECK_LINE(s, 1, "OK", "dacl", "4 entries, protected:");
    snprintf(text, sizeof text, "NT AUTHORITY\\SYSTEM (S-1-5-18): %s", full);
    CHECK_LINE(s, 2, "OK", "ace 1", text);
    snprintf(text, sizeof text, "BUILTIN\\Administrators (S-1-5-32-544): %s",
             full);
    CHECK_LINE(s, 3, "OK", "ace 2", text);
    snprintf(text, sizeof text, "OWNER RIGHTS (S-1-3-4): %s", full);
    CHECK_LINE(s, 4, "OK", "ace 3", text);
    CHECK_LINE(s, 5, "OK", "ace 4",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11): may connect "
               "(read/write) [0x12019b]");
}

/* A service running as SYSTEM owns its pipe as SYSTEM: also fine. */
static void test_default_owned_by_system(void)
{
    char sddl[PH_SDDL_MAX + 64];
    said s;
    unsigned i;

    default_sddl("SY", sddl, sizeof sddl);
    CHECK_EQ(judge(sddl, "S-1-5-18", &s), PH_OK);
    CHECK_EQ(s.n, 6);
    CHECK_LINE(s, 0, "OK", "owner", "NT AUTHORITY\\SYSTEM (S-1-5-18)");
    for (i = 0; i < s.n; i++)
        CHECK_EQ(s.line[i].st, PH_SDDL_OK);
}

/* Wine gives a pipe created from an SDDL without O: the user's primary
 * group as owner (tests/wine/cli_admin.sh): the owner line and the OWNER
 * RIGHTS ACE are findings, and they say the same owner. */
static void test_default_under_wine(void)
{
    char sddl[PH_SDDL_MAX + 64], text[1024];
    said s;

    default_sddl(WINE_GROUP, sddl, sizeof sddl);
    CHECK_EQ(judge(sddl, WINE_USER, &s), PH_OK);
    CHECK_EQ(s.n, 6);
    CHECK_LINE(s, 0, "WARN", "owner",
               "VM\\None (" WINE_GROUP "): not the server's account, SYSTEM "
               "or Administrators; an owner may always change the DACL");
    CHECK_LINE(s, 1, "OK", "dacl", "4 entries, protected:");
    CHECK_EQ(s.line[2].st, PH_SDDL_OK);
    CHECK_EQ(s.line[3].st, PH_SDDL_OK);
    snprintf(text, sizeof text,
             "OWNER RIGHTS (S-1-3-4): %s%s; OWNER RIGHTS is the owner: "
             "VM\\None (" WINE_GROUP ")", full, squat);
    CHECK_LINE(s, 4, "WARN", "ace 3", text);
    CHECK_EQ(s.line[5].st, PH_SDDL_OK);
}

/* A non-administrator cannot read a service's account: the owner and the
 * OWNER RIGHTS ACE cannot be compared, so they are INFO, not findings. */
static void test_default_server_unknown(void)
{
    char sddl[PH_SDDL_MAX + 64], text[1024];
    said s;

    default_sddl(SERVICE_SID, sddl, sizeof sddl);
    CHECK_EQ(judge(sddl, NULL, &s), PH_OK);
    CHECK_EQ(s.n, 6);
    CHECK_LINE(s, 0, "INFO", "owner",
               "HOST\\svc-pipehub (" SERVICE_SID ") (the server's account "
               "is unknown, so not compared)");
    snprintf(text, sizeof text,
             "OWNER RIGHTS (S-1-3-4): %s; it may create instances: fine if "
             "it is the server's account, which is unknown here", full);
    CHECK_LINE(s, 4, "INFO", "ace 3", text);
    CHECK_EQ(judge(sddl, "", &s), PH_OK);
    CHECK_EQ(s.line[0].st, PH_SDDL_INFO);
}

/* [security] sddl = D:(A;;GA;;;WD), as Wine reports it. */
static void test_everyone_full_control(void)
{
    char text[1024];
    said s;

    CHECK_EQ(judge("O:" WINE_GROUP "D:(A;;GA;;;WD)", WINE_USER, &s), PH_OK);
    CHECK_EQ(s.n, 3);
    CHECK_EQ(s.line[0].st, PH_SDDL_WARN);
    CHECK_LINE(s, 1, "OK", "dacl", "1 entries:");
    snprintf(text, sizeof text,
             "Everyone (S-1-1-0): %s%s, and it lets in Everyone", full, squat);
    CHECK_LINE(s, 2, "WARN", "ace 1", text);
}

/* Everyone or Anonymous with read access only: no squatting, still let in. */
static void test_everyone_read(void)
{
    said s;

    CHECK_EQ(judge("O:SYD:P(A;;FR;;;WD)(A;;0x1;;;AN)", "S-1-5-18", &s),
             PH_OK);
    CHECK_EQ(s.n, 4);
    CHECK_LINE(s, 2, "WARN", "ace 1",
               "Everyone (S-1-1-0): may connect (read only) [0x120089]; that "
               "lets Everyone in (the hub's audience is local, authenticated "
               "users)");
    CHECK_LINE(s, 3, "WARN", "ace 2",
               "S-1-5-7: may connect (read only) [0x1]; that lets anonymous "
               "logons in (the hub's audience is local, authenticated users)");
}

/* Authenticated Users with GENERIC_WRITE: the file mapping gives
 * FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE. */
static void test_authenticated_users_write(void)
{
    char text[1024];
    said s;

    CHECK_EQ(judge("O:SYD:P(A;;GA;;;SY)(A;;GW;;;AU)", "S-1-5-18", &s), PH_OK);
    CHECK_EQ(s.n, 4);
    CHECK_LINE(s, 0, "OK", "owner", "NT AUTHORITY\\SYSTEM (S-1-5-18)");
    CHECK_LINE(s, 1, "OK", "dacl", "2 entries, protected:");
    snprintf(text, sizeof text,
             "NT AUTHORITY\\Authenticated Users (S-1-5-11): may connect "
             "(write only), may create instances [0x120116]%s", squat);
    CHECK_LINE(s, 3, "WARN", "ace 2", text);

    /* WRITE_DAC alone is as good as creating instances. */
    CHECK_EQ(judge("O:SYD:(A;;0x12019b;;;AU)(A;;WD;;;BU)", "S-1-5-18", &s),
             PH_OK);
    CHECK_EQ(s.n, 4);
    CHECK_LINE(s, 2, "OK", "ace 1",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11): may connect "
               "(read/write) [0x12019b]");
    snprintf(text, sizeof text,
             "BUILTIN\\Users (S-1-5-32-545): may not connect, may change the "
             "DACL [0x40000]%s", squat);
    CHECK_LINE(s, 3, "WARN", "ace 2", text);
}

/* The pipe is owned by an account that is not the server's: whoever that
 * is may rewrite the DACL and serve instances of the name. */
static void test_squatting_owner(void)
{
    char text[1024];
    said s;

    CHECK_EQ(judge("O:S-1-5-21-1-2-3-1005D:P(A;;GA;;;SY)(A;;GA;;;OW)"
                   "(A;;GA;;;S-1-5-21-1-2-3-1005)",
                   SERVICE_SID, &s),
             PH_OK);
    CHECK_EQ(s.n, 5);
    CHECK_LINE(s, 0, "WARN", "owner",
               "S-1-5-21-1-2-3-1005: not the server's account, SYSTEM or "
               "Administrators; an owner may always change the DACL");
    snprintf(text, sizeof text,
             "OWNER RIGHTS (S-1-3-4): %s%s; OWNER RIGHTS is the owner: "
             "S-1-5-21-1-2-3-1005", full, squat);
    CHECK_LINE(s, 3, "WARN", "ace 2", text);
    snprintf(text, sizeof text, "S-1-5-21-1-2-3-1005: %s%s", full, squat);
    CHECK_LINE(s, 4, "WARN", "ace 3", text);

    /* With no owner at all, OWNER RIGHTS is nobody known: a finding. */
    CHECK_EQ(judge("D:(A;;GA;;;OW)", SERVICE_SID, &s), PH_OK);
    CHECK_EQ(s.n, 3);
    CHECK_LINE(s, 0, "INFO", "owner", "none reported");
    snprintf(text, sizeof text,
             "OWNER RIGHTS (S-1-3-4): %s%s; OWNER RIGHTS is the owner: "
             "unknown", full, squat);
    CHECK_LINE(s, 2, "WARN", "ace 1", text);
    /* Even when the server's account is unknown too. */
    CHECK_EQ(judge("D:(A;;GA;;;OW)", NULL, &s), PH_OK);
    CHECK_LINE(s, 2, "WARN", "ace 1", text);
}

/* An earlier deny for Everyone takes its bits off a later allow; a later
 * deny does not. */
static void test_deny_before_allow(void)
{
    said s;

    CHECK_EQ(judge("O:SYD:(D;;0xc0004;;;WD)(A;;GA;;;BU)(D;;GA;;;AU)",
                   "S-1-5-18", &s),
             PH_OK);
    CHECK_EQ(s.n, 5);
    CHECK_LINE(s, 2, "OK", "ace 1",
               "Everyone (S-1-1-0) denied: may not connect, may create "
               "instances, may change the DACL, may take ownership "
               "[0xc0004]");
    CHECK_LINE(s, 3, "OK", "ace 2",
               "BUILTIN\\Users (S-1-5-32-545): may connect (read/write) "
               "[0x1301fb]");
    CHECK_LINE(s, 4, "OK", "ace 3",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11) denied: full "
               "control (may connect, create instances, change the DACL) "
               "[0x1f01ff]");

    /* A deny for another SID, or an inherit-only one, leaves it alone. */
    CHECK_EQ(judge("O:SYD:(D;;GA;;;AU)(D;IO;GA;;;BU)(A;;GA;;;BU)", "S-1-5-18",
                   &s),
             PH_OK);
    CHECK_EQ(s.n, 5);
    CHECK_EQ(s.line[4].st, PH_SDDL_WARN);
    CHECK(strstr(s.line[4].text, "[0x1f01ff]; it may create") != NULL);
}

/* Inherit-only ACEs do not apply; ACE types other than allow and deny
 * (object, callback) are listed but not judged. */
static void test_inherit_only_and_other_types(void)
{
    said s;

    CHECK_EQ(judge("O:SYD:AI(A;OICIIO;GA;;;CO)"
                   "(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)"
                   "(XA;;FX;;;WD;(Member_of {SID(BA)} && (@User.x == \")\")))"
                   "(A;ID;FA;;;SY)",
                   "S-1-5-18", &s),
             PH_OK);
    CHECK_EQ(s.n, 6);
    CHECK_LINE(s, 1, "OK", "dacl", "4 entries:");
    CHECK_LINE(s, 2, "OK", "ace 1",
               "S-1-3-0: inherit-only, does not apply to the pipe");
    CHECK_LINE(s, 3, "INFO", "ace 2", "ACE type 5, not read by doctor");
    CHECK_LINE(s, 4, "INFO", "ace 3", "ACE type 9, not read by doctor");
    CHECK_LINE(s, 5, "OK", "ace 4",
               "NT AUTHORITY\\SYSTEM (S-1-5-18): full control (may connect, "
               "create instances, change the DACL) [0x1f01ff]");
}

/* No DACL, a NULL DACL and an empty one; a group and SACL are skipped. */
static void test_no_null_and_empty_dacl(void)
{
    static const char everyone[] =
        ": everyone, also anonymous and remote users, has full control and "
        "may create instances";
    char text[256];
    said s;

    CHECK_EQ(judge("", NULL, &s), PH_OK);
    CHECK_EQ(s.n, 2);
    CHECK_LINE(s, 0, "INFO", "owner", "none reported");
    snprintf(text, sizeof text, "no DACL%s", everyone);
    CHECK_LINE(s, 1, "WARN", "dacl", text);

    CHECK_EQ(judge("O:SYD:NO_ACCESS_CONTROL", "S-1-5-18", &s), PH_OK);
    CHECK_EQ(s.n, 2);
    snprintf(text, sizeof text, "NULL DACL%s", everyone);
    CHECK_LINE(s, 1, "WARN", "dacl", text);

    CHECK_EQ(judge("O:SYD:P", "S-1-5-18", &s), PH_OK);
    CHECK_EQ(s.n, 2);
    CHECK_LINE(s, 1, "OK", "dacl", "empty: nobody is granted access");

    CHECK_EQ(judge("O:BAG:SYD:PAI(A;;FA;;;SY)S:(ML;;NW;;;ME)", "S-1-5-18",
                   &s),
             PH_OK);
    CHECK_EQ(s.n, 3);
    CHECK_LINE(s, 0, "OK", "owner",
               "BUILTIN\\Administrators (S-1-5-32-544)");
    CHECK_LINE(s, 1, "OK", "dacl", "1 entries, protected:");
}

/* Rights as SDDL writes them: letters, hex and decimal. */
static void test_rights_forms(void)
{
    said s;

    CHECK_EQ(judge("O:SYD:(A;;1179785;;;AU)(A;;CCDC;;;AU)(A;;RCSD;;;AU)",
                   "S-1-5-18", &s),
             PH_OK);
    CHECK_EQ(s.n, 5);
    CHECK_LINE(s, 2, "OK", "ace 1",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11): may connect "
               "(read only) [0x120089]");
    CHECK_LINE(s, 3, "OK", "ace 2",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11): may connect "
               "(read/write) [0x3]");
    CHECK_LINE(s, 4, "OK", "ace 3",
               "NT AUTHORITY\\Authenticated Users (S-1-5-11): may not "
               "connect [0x30000]");
}

/* Aliases that need the machine's SID go through resolve. */
static void test_machine_aliases(void)
{
    ph_sddl_env env = {0};
    said s;

    CHECK_EQ(judge("O:LAD:(A;;GA;;;DU)", "S-1-5-21-1-2-3-500", &s), PH_OK);
    CHECK_EQ(s.n, 3);
    CHECK_LINE(s, 0, "OK", "owner", "S-1-5-21-1-2-3-500");
    CHECK_EQ(s.line[2].st, PH_SDDL_WARN);
    CHECK(strncmp(s.line[2].text, "S-1-5-21-1-2-3-513: full control", 32) ==
          0);

    /* Unknown to resolve, or no resolve at all: malformed. */
    CHECK_EQ(judge("O:SYD:(A;;GA;;;DA)", "S-1-5-18", &s), PH_EINVAL);
    memset(&s, 0, sizeof s);
    env.say = collect;
    env.ctx = &s;
    CHECK_EQ(ph_sddl_judge("O:LAD:", &env), PH_EINVAL);
    CHECK_EQ(s.n, 1);
    CHECK_LINE(s, 0, "WARN", "dacl",
               "cannot judge the pipe's access rules: its SDDL is malformed "
               "at offset 2 (a SID alias of this machine or domain that could "
               "not be resolved): \"LAD:\"");

    /* Without describe, a SID is shown as it is. */
    memset(&s, 0, sizeof s);
    CHECK_EQ(ph_sddl_judge("O:SYD:(A;;GA;;;SY)", &env), PH_OK);
    CHECK_EQ(s.n, 3);
    CHECK_LINE(s, 0, "OK", "owner", "S-1-5-18");
}

/* Text that is not SDDL is refused with one line that says where, and
 * nothing else is said. */
static void test_malformed(void)
{
    static const struct {
        const char *sddl;
        unsigned offset;
        const char *why;
    } bad[] = {
        {"garbage", 0, "O:, G:, D: or S: expected"},
        {" D:", 0, "O:, G:, D: or S: expected"},
        {"D:(A;;GA;;;WD", 13, "an ACE does not end with ')'"},
        {"D:(A;;GA;;WD)", 12, "an ACE field is missing (';' expected)"},
        {"D:(Q;;GA;;;WD)", 3, "unknown ACE type"},
        {"D:(A;XY;GA;;;WD)", 5, "unknown ACE flags"},
        {"D:(A;C;GA;;;WD)", 5, "unknown ACE flags"},
        {"D:(A;;ZZ;;;WD)", 6, "unknown access rights"},
        {"D:(A;;GAG;;;WD)", 6, "unknown access rights"},
        {"D:(A;;0x1ffffffff;;;WD)", 6, "a bad hexadecimal access mask"},
        {"D:(A;;0x;;;WD)", 6, "a bad hexadecimal access mask"},
        {"D:(A;;99999999999;;;WD)", 6, "a bad access mask"},
        {"D:(A;;GA;;;)", 11, "a SID is missing"},
        {"D:(A;;GA;;;QQ)", 11, "unknown SID alias"},
        {"D:(A;;GA;;;wd)", 11, "not a SID"},
        {"O:S-1-", 2, "not a SID"},
        {"O:S-1-5-", 2, "not a SID"},
        {"O:S-1-5-x", 2, "not a SID"},
        {"O:S-2-5-18", 2, "not a SID"},
        {"O:S-1-5-4294967296", 2, "not a SID"},
        {"O:S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16", 2, "not a SID"},
        {"O:", 2, "a SID is missing"},
        {"O:SYO:SY", 4, "a section appears twice"},
        {"D:(A;;GA;;;WD)D:", 14, "a section appears twice"},
        {"D:NO_ACCESS_CONTROL(A;;GA;;;WD)", 31,
         "NO_ACCESS_CONTROL with ACEs"},
        {"D:(A;;GA;;;WD)x", 14, "'(' or the next section expected"},
        {"D:X(A;;GA;;;WD)", 2, "'(' or the next section expected"},
        {"D:(XA;;FX;;;WD;Member_of)", 15,
         "an ACE's condition does not start with '('"},
        {"D:(XA;;FX;;;WD;(Member_of {SID(BA)}", 35,
         "an ACE's condition does not end"},
        {"D:(XA;;FX;;;WD;(@User.x == \"a)))", 32,
         "an ACE's condition does not end"},
    };
    char want[512];
    size_t i;
    said s;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (judge(bad[i].sddl, SERVICE_SID, &s) != PH_EINVAL || s.n != 1) {
            PH_FAIL_HERE("'%s' was not refused with one line (%u lines)",
                         bad[i].sddl, s.n);
            return;
        }
        snprintf(want, sizeof want,
                 "cannot judge the pipe's access rules: its SDDL is malformed "
                 "at offset %u (%s): \"%.32s\"",
                 bad[i].offset, bad[i].why, bad[i].sddl + bad[i].offset);
        CHECK_LINE(s, 0, "WARN", "dacl", want);
    }
    CHECK_EQ(ph_sddl_judge(NULL, NULL), PH_EINVAL);
}

/* Every prefix of a long descriptor, in a buffer of exactly its size (so
 * the sanitizers see any read past the end), is judged or refused. */
static void test_every_prefix(void)
{
    static const char whole[] =
        "O:S-1-5-21-1-2-3-1001G:SYD:PAI(A;;GA;;;SY)(D;IO;0x12019b;;;AN)"
        "(OA;CI;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)"
        "(XA;;FX;;;WD;(Member_of {SID(BA)} && (@User.x == \")\")))"
        "(A;;0x12019b;;;AU)S:(ML;;NW;;;ME)";
    size_t n, ok = 0;
    char *p;
    said s;
    ph_err e;

    for (n = 0; n <= sizeof whole - 1; n++) {
        CHECK((p = malloc(n + 1)) != NULL);
        memcpy(p, whole, n);
        p[n] = '\0';
        e = judge(p, SERVICE_SID, &s);
        free(p);
        if (e == PH_OK) {
            ok++;
        } else if (e != PH_EINVAL || s.n != 1 ||
                   s.line[0].st != PH_SDDL_WARN) {
            PH_FAIL_HERE("prefix of %u bytes: error %d, %u lines",
                         (unsigned)n, (int)e, s.n);
            return;
        }
    }
    /* The whole and a few cut at section or ACE boundaries are fine. */
    CHECK(ok >= 5);
    CHECK_EQ(judge(whole, SERVICE_SID, &s), PH_OK);
    CHECK_EQ(s.n, 7);
    CHECK_LINE(s, 1, "OK", "dacl", "5 entries, protected:");
}

int main(void)
{
    PH_RUN(test_default_is_the_one_judged_here);
    PH_RUN(test_default_owned_by_the_server);
    PH_RUN(test_default_owned_by_system);
    PH_RUN(test_default_under_wine);
    PH_RUN(test_default_server_unknown);
    PH_RUN(test_everyone_full_control);
    PH_RUN(test_everyone_read);
    PH_RUN(test_authenticated_users_write);
    PH_RUN(test_squatting_owner);
    PH_RUN(test_deny_before_allow);
    PH_RUN(test_inherit_only_and_other_types);
    PH_RUN(test_no_null_and_empty_dacl);
    PH_RUN(test_rights_forms);
    PH_RUN(test_machine_aliases);
    PH_RUN(test_malformed);
    PH_RUN(test_every_prefix);
    return ph_test_summary();
}
