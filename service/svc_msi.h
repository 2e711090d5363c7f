/* The verb the MSI's deferred custom action runs (packaging/pipehub.wxs),
 * as LocalSystem, with the installed pipehubd.exe, after InstallServices
 * and before StartServices:
 *
 *   msi-configure --name NAME --config PATH --found "[INIFOUND]"
 *                 --pipe "[PIPE_NAME]" --start "[START]"
 *
 * On a first install (--found empty: the config file was not there before)
 * the config file's folder gets a protected DACL (SYSTEM and Administrators
 * full control, Users read: ProgramData lets any user add files), PIPE_NAME
 * is written into the config file and START recorded under
 * HKLM\SOFTWARE\pipehub\NAME (none recorded: auto). An upgrade, repair or
 * reinstall over a kept config file leaves all three alone. Then, every
 * time, the service gets what `pipehubd install` sets and Windows Installer
 * cannot:
 * the recorded start type, the quoted command line, description, failure
 * actions and preshutdown timeout.
 *
 * Empty values are unset properties. Exit code 0 done, 1 failed (the
 * install rolls back), 2 bad usage; each failure's reason goes to stderr
 * and the service's event source, since msiexec keeps no output. */
#ifndef PH_SVC_MSI_H
#define PH_SVC_MSI_H

typedef struct ph_msi_args {
    const char *name;   /* service name; PH_SVC_DEFAULT_NAME by default */
    const char *config; /* the installed config file */
    const char *found;  /* non-empty when it existed before this install */
    const char *pipe;   /* PIPE_NAME, or empty */
    const char *start;  /* START, or empty */
} ph_msi_args;

int ph_msi_configure(int argc, char **argv);

#endif
