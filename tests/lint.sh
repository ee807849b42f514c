#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The static-analysis gate (tools/lint: cppcheck and gcc -fanalyzer) as a
# test, against the build tree under test. Run by automake with
# JABALI_SRCDIR and JABALI_BUILDDIR set; also runs by hand from anywhere
# (then tools/lint picks its default build directory). Output is TAP.

srcdir=${JABALI_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
exec sh "$srcdir/tools/lint" ${JABALI_BUILDDIR:+"$JABALI_BUILDDIR"}
