# The backup module: backup.so and its integration test.
# Included from the top-level Makefile.am (moduledir is defined there).
backupmoduledir = $(moduledir)
backupmodule_LTLIBRARIES = modules/backup/backup.la
modules_backup_backup_la_SOURCES = \
	modules/backup/backup-internal.h \
	modules/backup/backup.c \
	modules/backup/backup-dest.c \
	modules/backup/backup-restic.c \
	modules/backup/backup-secret.c \
	modules/backup/backup-snapshots.c \
	modules/backup/backup-job.c \
	modules/backup/backup-run.c \
	modules/backup/backup-runner.c \
	modules/backup/backup-view.c \
	modules/backup/backup-cancel.c \
	modules/backup/backup-restore.c \
	modules/backup/backup-restore-tree.c
modules_backup_backup_la_LIBADD = libjabali.la $(JSONC_LIBS)
modules_backup_backup_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

# What the module's package ships besides backup.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
backupagentddir = $(sysconfdir)/jabali/agent.d
dist_backupagentd_DATA = modules/backup/backup.conf
backuphatdir = $(apparmordir)/jabali-agent.d
dist_backuphat_DATA = apparmor/jabali-agent.d/backup

# tests/golden (a directory) is distributed by Makefile.am already.
EXTRA_DIST += \
	modules/backup/README.md \
	tests/integration/test_backup.py \
	tests/integration/test_backup_restore.py

# Runs against Debian's restic when installed (tools/deps: restic).
TESTS += tests/integration/test_backup.py
TESTS += tests/integration/test_backup_restore.py
