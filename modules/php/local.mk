# The php module: php.so, its template and its integration test.
# Included from the top-level Makefile.am (moduledir is defined there).
phpmoduledir = $(moduledir)
phpmodule_LTLIBRARIES = modules/php/php.la
modules_php_php_la_SOURCES = \
	modules/php/php-internal.h \
	modules/php/php.c \
	modules/php/php-pool.c
modules_php_php_la_CPPFLAGS = $(AM_CPPFLAGS) -DPHP_TEMPLATE_DIR=\"$(phptemplatedir)\"
modules_php_php_la_LIBADD = libjabali.la $(JSONC_LIBS)
modules_php_php_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -no-undefined \
	-export-symbols-regex '^jabali_module$$'

phptemplatedir = $(datadir)/jabali/php
dist_phptemplate_DATA = modules/php/templates/pool.conf.tpl

# What the module's package ships besides php.so: its agent.d snippet
# and its AppArmor hat (apparmordir comes from Makefile.am).
phpagentddir = $(sysconfdir)/jabali/agent.d
dist_phpagentd_DATA = modules/php/php.conf
phphatdir = $(apparmordir)/jabali-agent.d
dist_phphat_DATA = apparmor/jabali-agent.d/php

EXTRA_DIST += \
	modules/php/README.md \
	tests/integration/test_php.py

# Runs against a real php-fpm when one is installed (tools/deps: php8.2-fpm).
TESTS += tests/integration/test_php.py
