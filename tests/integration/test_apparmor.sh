#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The AppArmor profile and its hats compile, name the hats we expect, follow
# the hat rules (README in apparmor/), and a broken hat file is reported with
# its file and line. Compile only (-Q: nothing is loaded; the test machine
# need not have AppArmor), against a fixed feature set (-M) so the result
# does not depend on the running kernel.
#
# Run by automake with JABALI_SRCDIR (and JABALI_BUILDDIR) set; also runs by
# hand from anywhere. Output is TAP.

set -u

srcdir=${JABALI_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
aadir=$srcdir/apparmor
profile=$aadir/usr.sbin.jabali-agent

n=0
failed=0

ok() {
        n=$((n + 1))
        echo "ok $n - $1"
}

not_ok() {
        n=$((n + 1))
        failed=$((failed + 1))
        echo "not ok $n - $1"
        shift
        for line in "$@"; do
                printf '%s\n' "$line" | sed 's/^/# /'
        done
}

finish() {
        echo "1..$n"
        [ "$failed" -eq 0 ]
        exit $?
}

skip_all() {
        echo "1..0 # SKIP $1"
        exit 0
}

parser=$(command -v apparmor_parser || true)
[ -n "$parser" ] || for p in /sbin/apparmor_parser /usr/sbin/apparmor_parser; do
        [ -x "$p" ] && parser=$p && break
done
[ -n "$parser" ] || skip_all "apparmor_parser is not installed (package apparmor)"

# The feature set to compile against. Debian's apparmor package ships a
# pinned one (its parser.conf names the same file as policy-features); the
# running kernel's is the fallback, and JABALI_AA_FEATURES overrides both.
features=
for f in ${JABALI_AA_FEATURES:-} /usr/share/apparmor-features/features /sys/kernel/security/apparmor/features; do
        if [ -e "$f" ]; then
                features=$f
                break
        fi
done
[ -n "$features" ] || skip_all "no AppArmor feature set (/usr/share/apparmor-features/features)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jabali-aa-test.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# A private include directory, searched before /etc/apparmor.d: the tree's
# abstraction and hats, and empty stand-ins for every "include if exists"
# hook the host may fill (local overrides, *.d directories), so that
# nothing installed on this machine changes the result.
# Arguments: the include dir to build, then the hat files to put in it.
make_incdir() {
        inc=$1
        shift
        mkdir -p "$inc/jabali-agent.d" "$inc/local/jabali-agent.d" "$inc/abstractions/jabali-agent-worker.d" || return 1
        cp "$aadir/abstractions/jabali-agent-worker" "$inc/abstractions/" || return 1
        : > "$inc/local/usr.sbin.jabali-agent"
        for h in "$@"; do
                cp "$h" "$inc/jabali-agent.d/" || return 1
                : > "$inc/local/jabali-agent.d/$(basename "$h")"
        done
}

# compile INCDIR [extra parser options]: stdout+stderr in $out, status in $rc.
compile() {
        inc=$1
        shift
        out=$("$parser" -Q -K -T -I "$inc" -M "$features" "$@" "$profile" 2>&1)
        rc=$?
}

hats=
for h in "$aadir"/jabali-agent.d/*; do
        [ -f "$h" ] && hats="$hats $h"
done

# ---- 1. the profile with every hat of the tree compiles
inc=$tmp/all
# shellcheck disable=SC2086 # hat paths have no blanks (checked below)
make_incdir "$inc" $hats || exit 99
compile "$inc"
if [ "$rc" -eq 0 ]; then
        ok "profile and hats compile (features: $features)"
else
        not_ok "profile and hats compile (features: $features)" "apparmor_parser exited $rc:" "$out"
fi

# ---- 2. it defines the profile and exactly one hat per hat file
expected=jabali-agent
for h in $hats; do
        expected="$expected
jabali-agent//$(basename "$h")"
done
expected=$(printf '%s\n' "$expected" | sort)
compile "$inc" -N
names=$(printf '%s\n' "$out" | sort)
if [ "$rc" -eq 0 ] && [ "$names" = "$expected" ]; then
        ok "names: $(printf '%s' "$names" | tr '\n' ' ')"
else
        not_ok "profile names are jabali-agent and one hat per file" "expected:" "$expected" "got (status $rc):" "$out"
fi

# ---- 3. the test module's hat (its descriptor's .hat) is among them
if printf '%s\n' "$names" | grep -qx 'jabali-agent//test'; then
        ok "the test module's hat ^test is defined"
else
        not_ok "the test module's hat ^test is defined" "$names"
fi

# ---- 4. a host with no module package yet: "include if exists" holds
inc=$tmp/none
make_incdir "$inc" || exit 99
compile "$inc" -N
if [ "$rc" -eq 0 ] && [ "$out" = "jabali-agent" ]; then
        ok "profile compiles with an empty jabali-agent.d"
else
        not_ok "profile compiles with an empty jabali-agent.d" "status $rc:" "$out"
fi

# ---- 5. a broken hat file fails the whole profile, named by file and line
inc=$tmp/broken
# shellcheck disable=SC2086
make_incdir "$inc" $hats || exit 99
printf '%s\n' \
        '^zz-broken {' \
        '  include <abstractions/jabali-agent-worker>' \
        '  /srv/broken/** rwz,' \
        '}' > "$inc/jabali-agent.d/zz-broken"
compile "$inc"
if [ "$rc" -ne 0 ] &&
   printf '%s\n' "$out" | grep -F "$inc/jabali-agent.d/zz-broken" | grep -q 'line 3:'; then
        ok "a broken hat file is refused with file and line"
else
        not_ok "a broken hat file is refused with file and line" "status $rc:" "$out"
fi

# ---- 6. hat file rules, checked on the text (comments stripped):
#  one ^<name> block named like its file, the worker abstraction included,
#  helpers run with ix only (no P/C/U transitions, which no_new_privs
#  blocks), no change_profile, no nested hats.
# lint_hat FILE: prints what is wrong, nothing when the file is fine.
lint_hat() {
        base=$(basename "$1")
        body=$(sed -e 's/#.*$//' "$1")
        case $base in
        *[!a-z0-9_]* | [!a-z]*) echo "file name '$base' is not a module name ([a-z][a-z0-9_]*)" ;;
        esac
        blocks=$(printf '%s\n' "$body" | grep -cE '^[[:space:]]*(\^|hat[[:space:]])')
        [ "$blocks" -eq 1 ] || echo "has $blocks hat blocks, want exactly 1"
        printf '%s\n' "$body" | grep -qE "^[[:space:]]*(\^$base|hat[[:space:]]+$base)[[:space:]]*(flags=\([^)]*\)[[:space:]]*)?\{" ||
                echo "does not define ^$base"
        printf '%s\n' "$body" | grep -qE '^[[:space:]]*#?include[[:space:]]+<abstractions/jabali-agent-worker>' ||
                echo "does not include <abstractions/jabali-agent-worker>"
        # An exec mode with p, c or u (Px, Cx, Ux, PUx, pix, cux, ...), or
        # any named transition. A mount rule's "->" names a mount point,
        # not a profile: those lines are left out (keeping line numbers).
        printf '%s\n' "$body" | sed 's/^[[:space:]]*mount[[:space:]].*$//' |
                grep -nE '[[:space:]][rwaklm]*[PpCcUu][rwaklmiPpCcUu]*x[rwaklm]*[[:space:]]*(,|->)|->' |
                sed 's/^/exec transition other than ix at line /'
        printf '%s\n' "$body" | grep -nE '(^|[[:space:]])change_profile([[:space:]]|,)' |
                sed 's/^/change_profile rule at line /'
}

lint_all_ok=1
lint_report=
for h in $hats; do
        problems=$(lint_hat "$h")
        if [ -n "$problems" ]; then
                lint_all_ok=0
                lint_report="$lint_report
$(basename "$h"): $problems"
        fi
done
if [ -n "$hats" ] && [ "$lint_all_ok" -eq 1 ]; then
        ok "hat files follow the hat rules (ix only, worker abstraction, one ^<file name> block)"
else
        [ -n "$hats" ] || lint_report="no hat files in $aadir/jabali-agent.d"
        not_ok "hat files follow the hat rules" "$lint_report"
fi

# ---- 7. the rule check itself catches what it is there to catch
bad=$tmp/lint
mkdir -p "$bad"
printf '%s\n' '^px {' '  include <abstractions/jabali-agent-worker>' '  /usr/sbin/nginx Px,' '}' > "$bad/px"
printf '%s\n' '^cx {' '  include <abstractions/jabali-agent-worker>' '  /usr/bin/x mrCx -> y,' '}' > "$bad/cx"
printf '%s\n' '^pux {' '  include <abstractions/jabali-agent-worker>' '  /usr/bin/x PUx,' '}' > "$bad/pux"
printf '%s\n' '^cp {' '  include <abstractions/jabali-agent-worker>' '  change_profile -> jabali-agent//x,' '}' > "$bad/cp"
printf '%s\n' '^noabs {' '  /srv/x/** rw,' '}' > "$bad/noabs"
printf '%s\n' '^other {' '  include <abstractions/jabali-agent-worker>' '}' > "$bad/named"
printf '%s\n' '^good {' '  include <abstractions/jabali-agent-worker>' '  /usr/sbin/nginx mrix,' \
        '  # /usr/bin/x Px, in a comment is fine' '  /srv/good/** rw,' '}' > "$bad/good"
missed=
for f in px cx pux cp noabs named; do
        [ -n "$(lint_hat "$bad/$f")" ] || missed="$missed $f"
done
good_out=$(lint_hat "$bad/good")
if [ -z "$missed" ] && [ -z "$good_out" ]; then
        ok "the hat rule check refuses Px/Cx/PUx, change_profile, a missing abstraction, a misnamed hat"
else
        not_ok "the hat rule check works" "not caught:$missed" "false alarm on a good hat: $good_out"
fi

finish
