"""Worker pools: locks, parallelism, recycling, crash loops, reload
coalescing, two modules at once. Timing claims are measured from the
workers' own monotonic timestamps, never slept for."""

import os
import threading
import time

from agenttest import Agent, Client, expect_error, expect_ok, run, test


def sleeps(a, requests, conns=None):
    """Sends each (action, params) on its own connection at once; returns the answers in order."""
    clients = [a.client() for _ in requests]
    for i, (c, (action, params)) in enumerate(zip(clients, requests)):
        c.send(action, params, request_id="s%d" % i)
    out = [c.recv() for c in clients]
    for c in clients:
        c.close()
    return out


def overlap(r1, r2):
    return r1["started_us"] < r2["ended_us"] and r2["started_us"] < r1["ended_us"]


@test
def same_key_serialises_different_keys_run_in_parallel():
    with Agent(modules={"test": {"workers": {"max": 2}}}) as a:
        # Warm both workers so spawning does not blur the measurement.
        sleeps(a, [("test.sleep", {"ms": 50})] * 2)
        same = [expect_ok(r) for r in sleeps(a, [("test.sleep_locked", {"ms": 200, "key": "k1"})] * 2)]
        assert not overlap(same[0], same[1]), same
        diff = [expect_ok(r) for r in sleeps(a, [("test.sleep_locked", {"ms": 200, "key": "k1"}),
                                                 ("test.sleep_locked", {"ms": 200, "key": "k2"})])]
        assert overlap(diff[0], diff[1]), diff
        assert diff[0]["pid"] != diff[1]["pid"], diff


@test
def recycled_after_max_use():
    with Agent(modules={"test": {"workers": {"max": 1, "max_use": 3}}}) as a:
        c = a.client()
        pids = [expect_ok(c.call("test.echo", {"n": i}))["pid"] for i in range(7)]
        c.close()
        assert pids[0] == pids[1] == pids[2], pids
        assert pids[3] == pids[4] == pids[5] and pids[3] != pids[0], pids
        assert pids[6] != pids[3], pids
        h = expect_ok(a.call("agent.health"))["modules"]["test"]
        assert h["recycled"] >= 2 and h["crashes"] == 0, h


@test
def crash_loop_marks_failing_then_recovers():
    with Agent(modules={"test": {"workers": {"max": 1}}}) as a:
        c = a.client()
        codes = []
        for _ in range(5):
            codes.append(c.call("test.crash", {"how": "exit"})["code"])
        assert codes == ["WORKER_CRASHED"] * 5, codes
        h = expect_ok(c.call("agent.health"))
        assert h["modules"]["test"]["state"] == "failing" and h["status"] == "degraded", h
        assert "exited with status 7" in h["modules"]["test"]["reason"], h
        e = expect_error(c.call("test.echo", {}), "MODULE_UNAVAILABLE")
        assert "failing" in e["error"], e
        # After the back-off the module is tried again and a success clears it.
        deadline = time.monotonic() + 30
        while True:
            r = c.call("test.echo", {"n": 1})
            if r["ok"]:
                break
            assert r["code"] == "MODULE_UNAVAILABLE" and time.monotonic() < deadline, r
            # Wait for the back-off by asking the agent how long is left: the
            # health call is the synchronisation, not a sleep.
            expect_ok(c.call("agent.health"))
        h = expect_ok(c.call("agent.health"))
        assert h["modules"]["test"]["state"] == "ready", h
        c.close()


@test
def hundred_concurrent_across_two_modules():
    mods = {"test": {"workers": {"max": 2, "queue": 128}},
            "test2": {"enabled": True, "workers": {"max": 2, "queue": 128}}}
    with Agent(modules=mods, limits={"max_connections_per_uid": 128}) as a:
        clients = [a.client() for _ in range(100)]
        for i, c in enumerate(clients):
            c.send(("test" if i % 2 else "test2") + ".echo", {"n": i}, request_id="x%d" % i)
        for i, c in enumerate(clients):
            r = c.recv()
            assert r["request_id"] == "x%d" % i, r
            assert expect_ok(r)["n"] == i, r
        for c in clients:
            c.close()
        h = expect_ok(a.call("agent.health"))["modules"]
        assert h["test"]["served"] == 50 and h["test2"]["served"] == 50, h


def reload_config(a, count_file, window_ms, command=None):
    cfg = dict(a.cfg)
    cfg["reload"] = {"command": command or ["/bin/sh", "-c", 'echo "$1" >> "$2"', "sh", "{unit}", count_file],
                     "window_ms": window_ms}
    return cfg


@test
def reloads_are_coalesced():
    with Agent() as a:
        count = os.path.join(a.root, "reloads")
        a.stop()
        # The window must dwarf one request's round trip; under valgrind
        # (which also traces the reload command's shell) that is slower.
        window = 6000 if os.environ.get("JABALI_VALGRIND") == "1" else 1500
        a.write_config(reload_config(a, count, window))
        a.start()
        c = a.client()
        for i in range(20):
            expect_ok(c.call("test.reload", {"unit": "nginx.service"}))
        # An awaited reload returns only after a reload that started after it asked.
        expect_ok(c.call("test.reload", {"unit": "nginx.service", "wait": True}))
        lines = open(count).read().split()
        assert lines == ["nginx.service"], lines
        h = expect_ok(c.call("agent.health"))["reloads"]["nginx.service"]
        assert h["requested"] == 21 and h["reloads"] == 1 and h["failed"] == 0, h
        # Immediate and awaited: no window to sit out.
        t0 = time.monotonic()
        expect_ok(c.call("test.reload", {"unit": "php8.2-fpm.service", "now": True, "wait": True}))
        assert time.monotonic() - t0 < window / 1000 * 0.66, "an immediate reload waited for the window"
        assert open(count).read().split() == ["nginx.service", "php8.2-fpm.service"]
        c.close()


@test
def slow_reloads_are_spaced_by_their_duration():
    """A reload that takes D is followed by the next coalesced one no
    sooner than D after it ended, whatever the window: a burst of changes
    cannot keep a slow service re-reading its configuration back to back."""
    with Agent() as a:
        times = os.path.join(a.root, "times")
        a.stop()
        # The service is slow to reload (0.8 s); the reload stamps its start
        # and end (ns, CLOCK_REALTIME) into a file.
        slow = ["/bin/sh", "-c", 'echo "start $(date +%s%N)" >> "$1"; sleep 0.8; echo "end $(date +%s%N)" >> "$1"',
                "sh", times, "{unit}"]
        a.write_config(reload_config(a, "", 20, slow))
        a.start()
        c = a.client()
        expect_ok(c.call("test.reload", {"unit": "nginx.service", "wait": True}))
        expect_ok(c.call("test.reload", {"unit": "nginx.service", "wait": True}))
        stamps = [line.split() for line in open(times).read().splitlines()]
        assert [k for k, _ in stamps] == ["start", "end", "start", "end"], stamps
        s1, e1, s2 = (int(v) / 1e9 for _, v in stamps[:3])
        took = e1 - s1
        assert took >= 0.8, stamps
        # sd-event may fire a timer a little early within its accuracy
        # slack: allow 50 ms of it.
        assert s2 - e1 >= took - 0.05, "the second reload started %.3f s after the first (took %.3f s)" % (
            s2 - e1, took)
        h = expect_ok(c.call("agent.health"))["reloads"]["nginx.service"]
        assert h["reloads"] == 2 and h["last_ms"] >= 800, h
        # An immediate reload is not held back: held back, it would take
        # the spacing and the reload, twice `took`.
        t0 = time.monotonic()
        expect_ok(c.call("test.reload", {"unit": "nginx.service", "now": True, "wait": True}))
        assert time.monotonic() - t0 < 2 * took - 0.1, "an immediate reload waited for the spacing"
        c.close()


@test
def reload_failure_is_reported_and_audited():
    with Agent() as a:
        a.stop()
        cfg = reload_config(a, "", 50, ["/bin/sh", "-c", "echo cannot reload $0 >&2; exit 3", "{unit}"])
        a.write_config(cfg)
        a.start()
        e = expect_error(a.call("test.reload", {"unit": "nginx.service", "now": True, "wait": True}),
                         "SERVICE_FAILED")
        assert "exit status 3" in e["error"] and "cannot reload nginx.service" in e["error"], e
        expect_error(a.call("test.reload", {"unit": "bad unit;rm"}), "INVALID_PARAMS")
        failed = [r for r in a.audit() if r["event"] == "reload_failed"]
        assert failed and failed[0]["result"] == "SERVICE_FAILED", failed


@test
def reload_without_a_way_fails_cleanly():
    with Agent() as a:
        e = expect_error(a.call("test.reload", {"unit": "nginx.service", "now": True, "wait": True}),
                         "SERVICE_FAILED")
        assert "reload.command is not set" in e["error"], e


if __name__ == "__main__":
    run()
