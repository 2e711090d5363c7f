/* The installed inih's ini.h (Debian's libinih-dev), for the tests that
 * hold config/ini.c against it (test_ini_diff.c, fuzz_ini.c).
 *
 * inih's header is also called ini.h, and the -Iconfig that finds ours
 * makes <ini.h> find ours as well; so inih's is named by its full path.
 * The build passes the path find_path() found; by hand, Debian's. */
#ifndef PH_TEST_INIH_H
#define PH_TEST_INIH_H

#ifndef PH_INIH_HEADER
#define PH_INIH_HEADER "/usr/include/ini.h"
#endif
#include PH_INIH_HEADER
#ifndef INI_H
#error "PH_INIH_HEADER is not inih's ini.h"
#endif

#endif
