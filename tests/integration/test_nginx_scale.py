#!/usr/bin/env python3
"""The nginx module at scale: many domains created at once.

COUNT domains (JABALI_NGINX_SCALE_COUNT, default 1000) are created over
8 connections at the same time against the real nginx of test_nginx.py's
harness (Env). Then:

  - every answer is ok and changed, and the reloads the agent ran for
    nginx's unit are bounded by elapsed / window + 2: the coalescing
    reloader batches the requests instead of reloading per domain;
  - nginx serves them: after one explicit nginx.reload (through Env.apply,
    which waits until every worker of the generation before it has
    exited, so the one serving was configured after the last write),
    20 domains spread over the range answer with their own file;
  - a second identical pass answers changed:false everywhere, writes
    nothing (inodes and mtimes of sites-available, sites-enabled and the
    home unchanged) and asks for no reload.

The durations and the ratio of the second pass to the first are printed
as TAP comments; bench/nginx-bench measures them at larger counts.
Creates in flight share one `nginx -t` of the whole configuration (the
module's group commit), but each test still costs time in proportion to
the vhosts there, so the create pass grows faster than COUNT: keep COUNT at
what fits the test suite's time.

Needs root and the nginx package, like test_nginx.py (a single skipped
case otherwise). Nothing here sleeps to synchronise.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agenttest  # noqa: E402
import test_nginx  # noqa: E402  (its cases run only when it is the main program)
from agenttest import executable, expect_ok, test  # noqa: E402

# Importing test_nginx registered its cases with the shared runner: this
# program runs only its own.
del agenttest._tests[:]

COUNT = int(os.environ.get("JABALI_NGINX_SCALE_COUNT", "1000"))
CONNECTIONS = 8
SPOT_CHECKS = 20
CALL_TIMEOUT_S = 300            # one call may queue behind every other's nginx -t

ENV = None
STATE = {}                      # what the first case leaves for the second


def env():
    global ENV
    if ENV is None:
        ENV = test_nginx.Env()
    return ENV


def domain(i):
    return "d%05d.scale.test" % i


def params(e, i):
    return e.site(domain(i), document_root="sites/%s" % domain(i))


def concurrently(e, count):
    """nginx.domain.create of every domain over CONNECTIONS connections at
    once: (seconds, answers by index). A connection takes every
    CONNECTIONS-th domain, one request in flight."""
    answers = [None] * count
    errors = []
    start = threading.Barrier(CONNECTIONS + 1)

    def worker(k):
        c = None
        try:
            c = e.agent.client(timeout=CALL_TIMEOUT_S)
            start.wait()
            for i in range(k, count, CONNECTIONS):
                answers[i] = c.call("nginx.domain.create", params(e, i))
        except BaseException as ex:  # reported by the main thread
            errors.append(ex)
            start.abort()
        finally:
            if c:
                c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    if errors:
        raise errors[0]
    return elapsed, answers


def changed_counts(answers):
    bad = [(i, a) for i, a in enumerate(answers) if not (a and a.get("ok") is True)]
    assert not bad, "%d calls failed, the first: %r" % (len(bad), bad[0])
    return sum(1 for a in answers if a["result"]["changed"] is True)


@test
def many_domains_are_served_with_few_reloads():
    e = env()
    u0 = e.settle()
    t0 = time.monotonic()
    elapsed, answers = concurrently(e, COUNT)
    assert changed_counts(answers) == COUNT, "not every create changed something"
    # Every reload asked for has ended: the count is final.
    u1 = e.settle()
    settled = time.monotonic() - t0
    reloads = u1["reloads"] - u0["reloads"]
    bound = settled * 1000.0 / test_nginx.WINDOW_MS + 2
    print("# %d creates over %d connections: %.2f s (%.1f ms each), %d reloads in %.2f s (bound %.0f), "
          "%d requested" % (COUNT, CONNECTIONS, elapsed, elapsed * 1000.0 / COUNT, reloads, settled, bound,
                            u1["requested"] - u0["requested"]))
    assert u1["failed"] == u0["failed"], "a reload failed: %r" % u1
    assert 1 <= reloads <= bound, "%d reloads for %d creates in %.2f s (window %d ms)" % (
        reloads, COUNT, settled, test_nginx.WINDOW_MS)
    STATE["first_pass_s"] = elapsed

    # The generation that serves was configured after every write.
    expect_ok(e.apply("nginx.reload"))
    picks = sorted({i * COUNT // SPOT_CHECKS for i in range(SPOT_CHECKS)} | {COUNT - 1})
    for i in picks:
        e.put_file("sites/%s/index.html" % domain(i), "site %d\n" % i)
    for i in picks:
        e.expect_http(domain(i), "/", test_nginx.served(b"site %d\n" % i))
    e.expect_http("nosuch.scale.test", "/", lambda s, b, h: s == 404 and b == b"default\n")
    r = expect_ok(e.call("nginx.domain.list"))
    assert len(r["domains"]) == COUNT, len(r["domains"])


@test
def second_identical_pass_writes_nothing_and_reloads_nothing():
    e = env()
    assert "first_pass_s" in STATE, "the first pass did not complete"
    u0, n0 = e.settle(), e.reload_count()
    before = e.snapshot()
    elapsed, answers = concurrently(e, COUNT)
    changed = changed_counts(answers)
    plans = [i for i, a in enumerate(answers) if a["result"]["plan"] != []]
    print("# second pass: %.2f s (%.1f ms each), %.1f %% of the first" % (
        elapsed, elapsed * 1000.0 / COUNT, 100.0 * elapsed / STATE["first_pass_s"]))
    assert changed == 0, "%d identical creates answered changed:true" % changed
    assert not plans, "a plan for an identical create: %r" % answers[plans[0]]
    after = e.snapshot()
    touched = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
    assert not touched, "%d paths written by identical creates, e.g. %s" % (len(touched), sorted(touched)[:5])
    e.expect_no_reload(u0, n0)


def main():
    agenttest.suite("nginx module at scale", "root and %s (Debian package nginx)" % test_nginx.NGINX,
                    executable(test_nginx.NGINX), lambda: ENV)


if __name__ == "__main__":
    main()
