/* The doctor's judgement of a named pipe's access rules, made on the
 * descriptor's SDDL text (client/cli_doctor.c reads the live descriptor and
 * converts it). Portable C with no <windows.h>, so its unit test
 * (tests/unit/test_sddl.c) runs natively under the sanitizers as well as
 * under Wine.
 *
 * What it says. The owner, then the DACL: absent or NULL (everyone has full
 * control), empty, or its entries, one line each. Rights are mapped with the
 * file generic mapping (what NPFS uses). Per ACE it says who (the caller's
 * describe, or the SID) and what: "may connect" needs FILE_READ_DATA /
 * FILE_WRITE_DATA; "may create instances" is FILE_CREATE_PIPE_INSTANCE (the
 * same bit as FILE_APPEND_DATA, so GENERIC_WRITE and GENERIC_ALL grant it);
 * WRITE_DAC and WRITE_OWNER are counted with it, as they let the holder
 * grant it to itself. Who may create instances may serve clients in the
 * hub's place (pipe squatting), so that is a WARN for anyone but:
 *   - the serving process's own account (it is the server),
 *   - SYSTEM and Administrators (they can take any object anyway: owning
 *     every object and debugging every process is already theirs), and
 *   - OWNER RIGHTS (S-1-3-4) when the owner is one of those.
 * When the server's account is unknown (OpenProcess refused: a
 * non-administrator looking at a service), an ACE that only that account
 * would explain is INFO, not WARN. The owner is judged by the same rule:
 * an owner may always rewrite the DACL.
 * Everyone, Anonymous, Network, Guests and ALL APPLICATION PACKAGES with any
 * access are a WARN too: the hub's audience is local, authenticated, not
 * sandboxed users. A deny ACE earlier in the list for the same SID, or for
 * Everyone, takes its bits off a later allow before these rules apply.
 * Inherit-only ACEs do not apply to the pipe and are listed as such; ACE
 * types other than allow and deny are listed, not judged. */
#ifndef PH_SDDL_JUDGE_H
#define PH_SDDL_JUDGE_H

#include <stddef.h>

#include "err.h"

/* The status of one line; the doctor adds FAIL, which this never says. */
typedef enum ph_sddl_status {
    PH_SDDL_OK,   /* the entry is as it should be */
    PH_SDDL_INFO, /* something to know, not a finding */
    PH_SDDL_WARN  /* a finding: looser or odder than it should be */
} ph_sddl_status;

/* Room describe is given for a SID's words. */
#define PH_SDDL_WHO_MAX 1400u

/* What the judgement needs besides the SDDL. Only say is required. */
typedef struct ph_sddl_env {
    /* The serving process's account as "S-1-...", NULL or "" when it is
     * unknown. */
    const char *server_sid;
    /* Words for a SID given in "S-1-..." form, such as
     * "NT AUTHORITY\SYSTEM (S-1-5-18)", into out (cap bytes, NUL-terminated).
     * NULL: the SID alone. */
    void (*describe)(void *ctx, const char *sid, char *out, size_t cap);
    /* The "S-1-..." form of a two-letter SID alias that depends on the
     * machine or domain (LA, DU, DA, ...), which portable code cannot know.
     * 1 with out written, 0 when unknown. NULL: such an alias is malformed
     * SDDL. */
    int (*resolve)(void *ctx, const char *alias, char *out, size_t cap);
    /* One line of the verdict: status, check ("owner", "dacl", "ace N")
     * and the text. */
    void (*say)(void *ctx, ph_sddl_status st, const char *check,
                const char *text);
    void *ctx; /* passed to the three functions above */
} ph_sddl_env;

/* Judge the owner ("O:") and DACL ("D:") of sddl, as
 * ConvertSecurityDescriptorToStringSecurityDescriptor writes them (a group
 * or SACL section is read and ignored), saying one line per finding through
 * env->say. PH_OK; or PH_EINVAL when sddl is not well-formed, after a single
 * WARN "dacl" line that says where: then nothing else was said. */
ph_err ph_sddl_judge(const char *sddl, const ph_sddl_env *env);

#endif
