"""The module loader and the module ABI: refusals by name, optional modules,
exported symbols, standalone loading, socket activation."""

import os
import shutil
import subprocess
import tempfile
import threading

from agenttest import (AGENT, BUILDDIR, MODDIR, Agent, Client, default_config, expect_error, expect_ok, frame,
                       read_frame, render_config, run, test)

BAD = {
    "badabi": "built for module ABI 2, this agent speaks ABI 1",
    "wrongname": "module file wrongname.so names itself 'somebody_else'",
    "dupaction": "action dupaction.noop is registered twice by module dupaction",
    "initfail": "initfail: refusing on purpose",
}


def start_once(cfg):
    root = tempfile.mkdtemp(prefix="jabali-it-")
    try:
        path = os.path.join(root, "c.conf")
        with open(path, "w") as f:
            f.write(render_config(cfg))
        return subprocess.run([AGENT, "--foreground", "-c", path], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@test
def bad_modules_stop_start_up_by_name():
    root = tempfile.mkdtemp(prefix="jabali-it-")
    try:
        for name, message in BAD.items():
            cfg = default_config(root, modules={name: {"enabled": True}})
            r = start_once(cfg)
            assert r.returncode != 0, (name, r)
            assert message in r.stderr, (name, message, r.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@test
def bad_optional_modules_are_unavailable():
    mods = {name: {"enabled": True, "optional": True} for name in BAD}
    with Agent(modules=mods) as a:
        h = expect_ok(a.call("agent.health"))
        assert h["status"] == "degraded", h
        for name, message in BAD.items():
            m = h["modules"][name]
            assert m["state"] == "unavailable" and message in m["reason"], (name, m)
            e = expect_error(a.call(name + ".noop"), "MODULE_UNAVAILABLE")
            assert message in e["error"], e
        # The good module beside them serves on.
        expect_ok(a.call("test.echo", {"n": 1}))
        v = expect_ok(a.call("agent.version"))
        assert v["modules"]["badabi"]["state"] == "unavailable", v


@test
def modules_export_one_symbol():
    for name in ["test", "test2"] + list(BAD):
        so = os.path.join(MODDIR, name + ".so")
        out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True, check=True).stdout
        syms = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
        assert syms == ["jabali_module"], (name, syms)


@test
def libjabali_exports_only_the_sdk():
    lib = os.path.join(BUILDDIR, ".libs", "libjabali.so")
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    syms = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert syms and all(s.startswith("jb_") for s in syms), [s for s in syms if not s.startswith("jb_")]
    for must in ("jb_schema_validate", "jb_fs_write_atomic", "jb_call_result", "jb_err_set"):
        assert must in syms, must


STANDALONE = """
import ctypes, os, sys
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
for so in sys.argv[2:]:
    lib = ctypes.CDLL(so, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    magic = ctypes.c_uint32.in_dll(lib, "jabali_module").value
    assert magic == 0x314d424a, (so, hex(magic))
print("loaded", len(sys.argv) - 2)
"""


@test
def modules_load_standalone_with_rtld_now():
    """Each module resolves every symbol at RTLD_NOW with only libjabali
    beside it. Run in a child python; a sanitizer build preloads its runtime."""
    lib = os.path.join(BUILDDIR, ".libs", "libjabali.so")
    env = dict(os.environ)
    ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    for line in ldd.splitlines():
        if "libasan" in line and "=>" in line:
            env["LD_PRELOAD"] = line.split("=>")[1].split()[0]
            env["ASAN_OPTIONS"] = "detect_leaks=0"
    sos = [os.path.join(MODDIR, n + ".so") for n in ["test", "test2"] + list(BAD)]
    r = subprocess.run(["python3", "-c", STANDALONE, lib] + sos, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and ("loaded %d" % len(sos)) in r.stdout, r


@test
def socket_activation():
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is missing (tools/deps test installs systemd)"
    root = tempfile.mkdtemp(prefix="jabali-it-")
    try:
        os.makedirs(os.path.join(root, "files"))
        sock = os.path.join(root, "activated.sock")
        cfg = default_config(root)
        conf = os.path.join(root, "c.conf")
        with open(conf, "w") as f:
            f.write(render_config(cfg))
        proc = subprocess.Popen([activate, "-l", sock, AGENT, "--foreground", "-c", conf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        lines = []
        listening = threading.Event()

        def drain():
            for line in proc.stderr:
                lines.append(line.decode(errors="replace"))
                if "Listening on" in lines[-1]:
                    listening.set()
            listening.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            # The activator says when it listens; the agent is started on
            # the first connection and accepts it from the passed socket.
            assert listening.wait(30) and proc.poll() is None, "the activator did not listen: %r" % lines
            c = Client(sock)
            r = c.call("agent.ping")
            expect_ok(r)
            expect_ok(c.call("test.echo", {"n": 2}))
            c.close()
            assert not os.path.exists(cfg["socket"]["path"]), "the agent bound its own socket too"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            reader.join(30)
        assert proc.returncode == 0, "".join(lines)
        assert os.path.exists(sock), "the agent removed a socket it did not create"
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run()
