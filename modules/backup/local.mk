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
	modules/backup/backup-forget.c \
	modules/backup/backup-check.c \
	modules/backup/backup-schedule.c \
	modules/backup/backup-unit.c \
	modules/backup/backup-db.c \
	modules/backup/backup-db-restore.c \
	modules/backup/backup-restore.c \
	modules/backup/backup-restore-tree.c
# The database stages run a producer on a second thread (backup-db.c).
modules_backup_backup_la_LIBADD = libjabali.la $(JSONC_LIBS) -lpthread
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
	tests/integration/test_backup_jobs.py \
	tests/integration/test_backup_maint.py \
	tests/integration/test_backup_schedule.py \
	tests/integration/test_backup_restore.py

# Runs against Debian's restic when installed (tools/deps: restic).
TESTS += tests/integration/test_backup.py tests/integration/test_backup_jobs.py
TESTS += tests/integration/test_backup_maint.py tests/integration/test_backup_schedule.py

# The schedule units' renderer (TEST_CFLAGS and TEST_LIBS come from Makefile.am).
check_PROGRAMS += tests/unit/test-backup-unit
TESTS += tests/unit/test-backup-unit
tests_unit_test_backup_unit_SOURCES = tests/unit/test-backup-unit.c modules/backup/backup-internal.h \
	modules/backup/backup-unit.c
tests_unit_test_backup_unit_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/modules/backup
tests_unit_test_backup_unit_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_backup_unit_LDADD = $(TEST_LIBS)

# Remote destinations (sftp, rest) and the write probe of destination.test;
# the sftp test runs a foreground sshd, the rest test `rclone serve restic`
# (tools/deps: openssh-server, rclone).
modules_backup_backup_la_SOURCES += \
	modules/backup/backup-remote.c \
	modules/backup/backup-probe.c
EXTRA_DIST += tests/integration/test_backup_remote.py bench/backup-bench
TESTS += tests/integration/test_backup_remote.py
EXTRA_DIST += tests/integration/test_backup_db.py
# Needs mariadb-server and postgresql too (tools/deps test).
TESTS += tests/integration/test_backup_db.py
TESTS += tests/integration/test_backup_restore.py
# Unreadable files (an EIO filesystem through FUSE: tools/deps' python3-fusepy)
# and a full destination (a small tmpfs).
EXTRA_DIST += tests/integration/test_backup_faults.py tests/integration/eiofs.py
TESTS += tests/integration/test_backup_faults.py
