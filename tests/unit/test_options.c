/* The settings table: defaults, bounds, messages and pipe names. */
#include "harness.h"

#include "options.h"

/* The message of the last refusal. */
static char why[200];

/* ph_options_set, its message (if any) in why. */
static ph_err set(ph_options *o, const char *key, const char *value)
{
    why[0] = '\0';
    return ph_options_set(o, key, value, why, sizeof why);
}

static void test_defaults(void)
{
    ph_options o;

    ph_options_defaults(&o);
    CHECK_STR(o.pipe_name, "\\\\.\\pipe\\pipehub");
    CHECK_EQ(o.worker_threads, 0);
    CHECK_EQ(o.pending_instances, 4);
    CHECK_EQ(o.max_frame_bytes, 1048576);
    CHECK_EQ(o.max_connections, 4096);
    CHECK_EQ(o.log_level, 2);
    CHECK_EQ(o.log_event_log, 1);
    CHECK_EQ(o.allow_remote, 0);
    CHECK_STR(o.log_file, "");
}

static void test_every_default_is_valid(void)
{
    const ph_option_def *d;
    ph_options o;

    for (d = ph_option_defs; d->key != NULL; d++) {
        if (set(&o, d->key, d->def) != PH_OK)
            PH_FAIL_HERE("default of %s rejected: %s", d->key, why);
        CHECK(d->help != NULL && d->section != NULL);
    }
}

static void test_bounds(void)
{
    ph_options o;

    ph_options_defaults(&o);
    CHECK_EQ(set(&o, "pending_instances", "0"), PH_EINVAL);
    CHECK(strstr(why, "1..64") != NULL);
    CHECK(strstr(why, "pending_instances") != NULL);
    CHECK_EQ(o.pending_instances, 4);
    CHECK_EQ(set(&o, "pending_instances", "64"), PH_OK);
    CHECK_EQ(o.pending_instances, 64);
    CHECK_EQ(set(&o, "pending_instances", "65"), PH_EINVAL);
    CHECK_EQ(set(&o, "max_frame_bytes", "1023"), PH_EINVAL);
    CHECK_EQ(set(&o, "max_frame_bytes", "1024"), PH_OK);
    CHECK_EQ(set(&o, "max_frame_bytes", "99999999999999999999"), PH_EINVAL);
    CHECK_EQ(o.max_frame_bytes, 1024);
}

static void test_bad_numbers(void)
{
    static const char *const bad[] = {"", "-1", "+4", " 4", "4 ", "4x", "0x10"};
    ph_options o;
    size_t i;

    ph_options_defaults(&o);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (set(&o, "worker_threads", bad[i]) != PH_EINVAL)
            PH_FAIL_HERE("'%s' accepted as a number", bad[i]);
    }
    CHECK(strstr(why, "not a whole number") != NULL);
    CHECK_EQ(o.worker_threads, 0);
}

static void test_other_types(void)
{
    ph_options o, p;
    char text[64];
    const ph_option_def *d;

    ph_options_defaults(&o);
    CHECK_EQ(set(&o, "allow_remote", "ON"), PH_OK);
    CHECK_EQ(o.allow_remote, 1);
    CHECK_EQ(set(&o, "allow_remote", "no"), PH_OK);
    CHECK_EQ(o.allow_remote, 0);
    CHECK_EQ(set(&o, "allow_remote", "2"), PH_EINVAL);
    CHECK_EQ(set(&o, "level", "Warn"), PH_OK);
    CHECK_EQ(o.log_level, 1);
    CHECK_EQ(set(&o, "level", "trace"), PH_EINVAL);
    CHECK_EQ(set(&o, "file", "C:\\x.log"), PH_OK);
    CHECK_STR(o.log_file, "C:\\x.log");
    /* Formatting gives back text that sets the same value. */
    p = o;
    for (d = ph_option_defs; d->key != NULL; d++) {
        ph_option_format(d, &o, text, sizeof text);
        CHECK_EQ(ph_option_set(&p, d, text, why, sizeof why), PH_OK);
        CHECK(ph_option_equal(d, &o, &p));
    }
    CHECK(ph_option_find_in("log", "level") != NULL);
    CHECK(ph_option_find_in("server", "level") == NULL);
}

static void test_unknown_key(void)
{
    ph_options o;

    ph_options_defaults(&o);
    CHECK_EQ(set(&o, "worker_thread", "2"), PH_EINVAL);
    CHECK(strstr(why, "worker_thread") != NULL);
    CHECK(ph_option_find("worker_thread") == NULL);
    CHECK(ph_option_find("worker_threads") != NULL);
}

static void test_pipe_names(void)
{
    char out[PH_PIPE_PATH_MAX + 1], name[300];

    CHECK_EQ(ph_pipe_path("pipehub", out, sizeof out), PH_OK);
    CHECK_STR(out, "\\\\.\\pipe\\pipehub");
    CHECK_EQ(ph_pipe_path("\\\\.\\pipe\\abc", out, sizeof out), PH_OK);
    CHECK_STR(out, "\\\\.\\pipe\\abc");
    CHECK_EQ(ph_pipe_path("\\\\.\\PIPE\\abc", out, sizeof out), PH_OK);
    CHECK_STR(out, "\\\\.\\pipe\\abc");
    CHECK_EQ(ph_pipe_path("", out, sizeof out), PH_EINVAL);
    CHECK_EQ(ph_pipe_path("\\\\.\\pipe\\", out, sizeof out), PH_EINVAL);
    CHECK_EQ(ph_pipe_path("\\\\server\\pipe\\x", out, sizeof out), PH_EINVAL);
    memset(name, 'n', 247);
    name[247] = '\0'; /* 9 + 247 = 256: the longest allowed */
    CHECK_EQ(ph_pipe_path(name, out, sizeof out), PH_OK);
    name[247] = 'n';
    name[248] = '\0';
    CHECK_EQ(ph_pipe_path(name, out, sizeof out), PH_EINVAL);
    CHECK_EQ(ph_pipe_path("abc", out, 12), PH_EINVAL); /* no room */
    CHECK_EQ(ph_pipe_path("abc", out, 13), PH_OK);
}

int main(void)
{
    PH_RUN(test_defaults);
    PH_RUN(test_every_default_is_valid);
    PH_RUN(test_bounds);
    PH_RUN(test_bad_numbers);
    PH_RUN(test_other_types);
    PH_RUN(test_unknown_key);
    PH_RUN(test_pipe_names);
    return ph_test_summary();
}
