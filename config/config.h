/* Loading pipehub.ini: parse into a fresh ph_options over the defaults,
 * validate it whole, and only then hand it out, so a bad file never
 * half-applies. Every problem is reported with the file and line:
 *
 *   pipehub.ini:12: unknown key 'max_conections' in [server] (did you mean
 *   'max_connections'?)
 *
 * The parser behind it has inih's API: Debian's libinih where the build finds
 * it, otherwise the project's own reader (config/ini.c). Portable. */
#ifndef PH_CONFIG_H
#define PH_CONFIG_H

#include "err.h"
#include "options.h"

/* Receives one whole problem message (no newline). */
typedef void (*ph_config_report)(void *ctx, const char *message);

/* Load the file at path. PH_OK: *out holds the defaults overlaid with the
 * file. PH_ENOTFOUND: the file cannot be opened (reported). PH_EINVAL: at
 * least one problem (each reported); *out untouched. */
ph_err ph_config_load_file(const char *path, ph_options *out,
                           ph_config_report report, void *ctx);

/* The same for INI text in memory; name is what messages call the file. */
ph_err ph_config_load_string(const char *name, const char *text,
                             ph_options *out, ph_config_report report,
                             void *ctx);

/* For a live reload: *out becomes running with every live setting taken
 * from loaded. Each setting that cannot change live but differs is reported
 * ("pipe_name changed; restart the service to apply it") and keeps its
 * running value. Returns how many such settings there were. */
unsigned ph_config_merge_live(const ph_options *running,
                              const ph_options *loaded, ph_options *out,
                              ph_config_report report, void *ctx);

/* Turns an account or group name from an access list ("NT SERVICE\foo",
 * "BUILTIN\Users") into a SID string in sid (cap bytes). Returns 0, or -1
 * with a reason in why. SID strings ("S-1-5-18") and SDDL abbreviations
 * ("SY", "BA", "AU", "IU", ...) are understood without one. */
typedef int (*ph_sid_resolver)(void *ctx, const char *name, char *sid,
                               size_t cap, char *why, size_t why_cap);

/* Install the resolver every later load uses (the Windows build installs
 * one that asks the local machine; without one a name is an error). Call
 * before loading, from one thread. */
void ph_config_set_resolver(ph_sid_resolver fn, void *ctx);

/* Resolve one access list into comma-separated SIDs in out. PH_EINVAL with
 * why naming the bad entry. Exposed for the fuzzer and tests. */
ph_err ph_config_parse_access_list(const char *text, char *out, size_t cap,
                                   char *why, size_t why_cap);

/* The known key closest to name (edit distance <= 2), or NULL. */
const char *ph_config_suggest(const char *section, const char *name);

#endif
