#!/usr/bin/env python3
"""The bench driver: runs every workload against each server (ours, optionally another
implementation of the ABI, and the raw-epoll floor), interleaved over several rounds with the
order alternating, and prints the medians side by side.

  run.py --bin DIR [--other] [--rounds N] [--budget SECONDS] [--only a,b,...]

DIR holds server-ours, floor, loadgen and, with --other, server-other. Each run starts a fresh
server process and a load generator process (pinned to one CPU with taskset when it exists),
relays the load generator's "srv" requests to the server, and reaps both. Every wait has a
deadline; a run that fails its checks or hangs is killed, reported and makes the exit status 1.

BENCH_QUICK=1 scales every workload to about a second (smoke runs); BENCH_SECONDS overrides the
length of the timed workloads. BENCH_SERVER_WRAP is a command prefix for the server, with {impl}
and {wl} replaced, e.g. BENCH_SERVER_WRAP='strace -c -f -o /tmp/{impl}-{wl}.strace'.
"""

import argparse
import os
import resource
import select
import shutil
import statistics
import subprocess
import sys
import time

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
GIB = 1 << 30
MIB = 1 << 20


def timed_seconds():
    if os.environ.get("BENCH_SECONDS"):
        return float(os.environ["BENCH_SECONDS"])
    return 1.0 if QUICK else 3.0


def workloads():
    """(name, server workload, loadgen parameters[, server options]): full sizes, or the quick
    ones. The "-cv" rows run the library servers with mutex + condition variable mailboxes (the
    floor has none: its run is the same as the plain row's)."""
    secs = timed_seconds()
    q = QUICK
    limit = 10 if q else 60
    return [
        ("pingpong", "pingpong", dict(seconds=secs)),
        ("echo-256", "echo", dict(conns=256, depth=4, seconds=secs)),
        ("echo-4096", "echo", dict(conns=4096, depth=4, seconds=secs)),
        ("push-1", "push", dict(conns=1, bytes=256 * MIB if q else GIB)),
        ("push-16", "push", dict(conns=16, bytes=256 * MIB if q else GIB)),
        ("recv-1", "recv", dict(conns=1, bytes=256 * MIB if q else GIB)),
        ("recv-16", "recv", dict(conns=16, bytes=256 * MIB if q else GIB)),
        ("flood", "flood", dict(count=300_000 if q else 1_000_000)),
        ("storm", "storm", dict(conns=5_000 if q else 20_000, concurrency=64)),
        ("udp", "udp", dict(count=100_000 if q else 1_000_000, window=128, seconds=2 if q else 10)),
        ("udp-8", "udp", dict(count=10_000_000, window=8, seconds=secs)),
        ("pingpong-cv", "pingpong", dict(seconds=secs), ["condvar"]),
        ("echo-256-cv", "echo", dict(conns=256, depth=4, seconds=secs), ["condvar"]),
        ("udp-cv", "udp", dict(count=100_000 if q else 1_000_000, window=128, seconds=2 if q else 10),
         ["condvar"]),
        ("idle", "idle", dict(conns=2_000 if q else 10_000, concurrency=256)),
        ("empty", "empty", dict()),
    ], limit


class Failure(Exception):
    pass


class Lines:
    """Line reader over a pipe with deadlines."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("timed out waiting for a line")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")


def kv(text):
    out = {}
    for word in text.split():
        if "=" in word:
            k, v = word.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def kill(proc):
    if proc is not None and proc.poll() is None:
        proc.kill()
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def run_one(impl, server_bin, loadgen_bin, pin, wl, limit, logbase, hard_deadline):
    name, server_workload, params = wl[:3]
    options = wl[3] if len(wl) > 3 and impl != "floor" else []
    wrap = os.environ.get("BENCH_SERVER_WRAP", "").replace("{impl}", impl).replace("{wl}", name).split()
    deadline = min(time.monotonic() + limit * 2 + 5, hard_deadline)
    server = loadgen = None
    slog = open(logbase + ".server.log", "wb")
    llog = open(logbase + ".loadgen.log", "wb")
    try:
        server = subprocess.Popen(wrap + [server_bin, server_workload] + options, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=slog)
        sout = Lines(server.stdout)
        ready = sout.readline(min(time.monotonic() + 15, deadline))
        if ready is None or not ready.startswith("ready "):
            raise Failure("server did not start: %r" % ready)
        ports = kv(ready)
        args = [loadgen_bin, server_workload, str(int(ports["tcp"])), str(int(ports["udp"]))]
        args += ["%s=%s" % (k, v) for k, v in params.items()] + ["limit=%d" % limit]
        loadgen = subprocess.Popen(pin + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=llog)
        lout = Lines(loadgen.stdout)
        marks, answers, result = [], {}, None
        while result is None:
            line = lout.readline(deadline)
            if line is None:
                raise Failure("load generator exited without a result (status %s)" % loadgen.wait(timeout=10))
            if line.startswith("srv "):
                cmd = line[4:].strip()
                server.stdin.write((cmd + "\n").encode())
                server.stdin.flush()
                ans = sout.readline(deadline)
                if ans is None:
                    raise Failure("server exited during '%s' (status %s)" % (cmd, server.wait(timeout=10)))
                if cmd == "mark":
                    marks.append(kv(ans))
                else:
                    answers[cmd] = kv(ans)
                loadgen.stdin.write((ans + "\n").encode())
                loadgen.stdin.flush()
            elif line.startswith("result "):
                result = kv(line)
            elif line.startswith("fail "):
                raise Failure(line[5:])
        status = loadgen.wait(timeout=max(1, deadline - time.monotonic()))
        if status != 0:
            raise Failure("load generator exit status %d" % status)
        server.stdin.write(b"quit\n")
        server.stdin.flush()
        deadline = min(time.monotonic() + 20, hard_deadline + 5)
        bye = sout.readline(deadline)
        if bye is None or not bye.startswith("bye "):
            raise Failure("server did not shut down cleanly: %r (status %s)" % (bye, server.poll()))
        bye = kv(bye)
        status = server.wait(timeout=max(1, deadline - time.monotonic()))
        if status != 0 or bye.get("verify_fail", 0):
            raise Failure("server saw wrong bytes (verify_fail=%d, status %d)" % (bye.get("verify_fail", 0), status))
        res = dict(result)
        res["bye"] = bye
        res.update({"info_" + k: v for k, v in answers.get("info", {}).items()})
        res.update({"rss_" + k: v for k, v in answers.get("rss", {}).items()})
        if len(marks) >= 2:
            res["cpu_ns"] = marks[1]["cpu_ns"] - marks[0]["cpu_ns"]
            res["hwm_kb"] = marks[1]["hwm_kb"]
        return res
    except (Failure, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        raise Failure(str(e)) from None
    finally:
        kill(loadgen)
        kill(server)
        slog.close()
        llog.close()


# ---- presentation ----

def per_op(unit_ns):
    """CPU per operation in units of `unit_ns` nanoseconds."""
    def f(r):
        if "cpu_ns" not in r or not r["ops"]:
            return None
        return r["cpu_ns"] / r["ops"] / unit_ns
    return f


def rate(scale=1.0):
    return lambda r: r["ops"] / r["secs"] * scale if r["secs"] > 0 else None


def field(key, scale=1.0):
    return lambda r: r[key] * scale if r.get(key, -1) is not None and r.get(key, -1) >= 0 else None


def bye_count(r, key):
    v = r["bye"].get(key, -1)
    return v if v >= 0 else None


# (row label, workload, value, cpu per op, cpu unit, higher is better)
ROWS = [
    ("pingpong rt/s", "pingpong", rate(), per_op(1e3), "us/rt", True),
    ("  p50 us", "pingpong", field("p50_us"), None, "", False),
    ("  p99 us", "pingpong", field("p99_us"), None, "", False),
    ("  p999 us", "pingpong", field("p999_us"), None, "", False),
    ("echo-256 msg/s", "echo-256", rate(), per_op(1e3), "us/msg", True),
    ("echo-4096 msg/s", "echo-4096", rate(), per_op(1e3), "us/msg", True),
    ("push-1 MB/s", "push-1", rate(1e-6), per_op(1e-3), "ms/GB", True),
    ("push-16 MB/s", "push-16", rate(1e-6), per_op(1e-3), "ms/GB", True),
    ("recv-1 MB/s", "recv-1", rate(1e-6), per_op(1e-3), "ms/GB", True),
    ("recv-16 MB/s", "recv-16", rate(1e-6), per_op(1e-3), "ms/GB", True),
    ("flood msg/s", "flood", rate(), per_op(1), "ns/msg", True),
    ("  peak RSS MB", "flood", field("hwm_kb", 1 / 1024), None, "", False),
    ("  WARNINGs", "flood", lambda r: bye_count(r, "warnings"), None, "", None),
    ("  send loop ms", "flood", field("send_ms"), None, "", False),
    ("storm conn/s", "storm", rate(), per_op(1e3), "us/conn", True),
    ("udp dgram/s", "udp", rate(), per_op(1e3), "us/dgram", True),
    ("  lost", "udp", field("lost"), None, "", False),
    ("udp-8 dgram/s", "udp-8", rate(), per_op(1e3), "us/dgram", True),
    ("condvar mailboxes:", None, None, None, "", None),
    ("pingpong rt/s", "pingpong-cv", rate(), per_op(1e3), "us/rt", True),
    ("  p99 us", "pingpong-cv", field("p99_us"), None, "", False),
    ("echo-256 msg/s", "echo-256-cv", rate(), per_op(1e3), "us/msg", True),
    ("udp dgram/s", "udp-cv", rate(), per_op(1e3), "us/dgram", True),
    ("  lost", "udp-cv", field("lost"), None, "", False),
    ("idle RSS MB", "idle", field("info_rss_kb", 1 / 1024), None, "", False),
    ("  info ms", "idle", field("info_info_ns", 1e-6), None, "", False),
    ("empty RSS MB", "empty", field("rss_rss_kb", 1 / 1024), None, "", False),
    ("  create MB", "empty", field("rss_create_kb", 1 / 1024), None, "", False),
]


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100000:
        return "%.0f" % v
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def median_of(runs, fn):
    vals = [v for v in (fn(r) for r in runs) if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def print_table(impls, results, names):
    cols = ["ours"] + (["other"] if "other" in impls else []) + ["floor"]
    header = "%-18s" % "workload"
    for c in cols:
        header += " %12s %9s" % (c, "cpu/op")
    header += "  %-9s" % "cpu unit"
    if "other" in impls:
        header += " %16s" % "ours/other"
    header += " %16s" % "ours/floor"
    print(header)
    print("-" * len(header))
    for label, wl, value, cpu, unit, _better in ROWS:
        if wl is None:
            if any(w.endswith("-cv") for w in names):
                print(label)
            continue
        if wl not in names:
            continue
        line = "%-18s" % label
        med = {}
        for c in cols:
            runs = results.get((c, wl), [])
            v = median_of(runs, value)
            p = median_of(runs, cpu) if cpu else None
            med[c] = (v, p)
            line += " %12s %9s" % (fmt(v), fmt(p) if cpu else "")
        line += "  %-9s" % unit
        for other in (["other"] if "other" in impls else []) + ["floor"]:
            r = ratio(med["ours"][0], med[other][0])
            rc = ratio(med["ours"][1], med[other][1]) if cpu else None
            cell = "-" if r is None else "%.2f" % r
            if rc is not None:
                cell += " (cpu %.2f)" % rc
            line += " %16s" % cell
        print(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--other", action="store_true")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    ap.add_argument("--budget", type=float, default=0, help="seconds; runs past it are failures")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""))
    a = ap.parse_args()

    # Thousands of connections per process: raise the descriptor limit for both children.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    impls = {"ours": os.path.join(a.bin, "server-ours"), "floor": os.path.join(a.bin, "floor")}
    if a.other:
        impls["other"] = os.path.join(a.bin, "server-other")
    order = ["ours"] + (["other"] if a.other else []) + ["floor"]
    loadgen = os.path.join(a.bin, "loadgen")
    for path in list(impls.values()) + [loadgen]:
        if not os.access(path, os.X_OK):
            sys.exit("missing %s: build it with make bench" % path)

    pin = []
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") and len(cpus) >= 2:
        pin = ["taskset", "-c", str(cpus[-1])]
    wls, limit = workloads()
    if a.only:
        keep = set(a.only.split(","))
        wls = [w for w in wls if w[0] in keep]
    names = {w[0] for w in wls}
    logdir = os.path.join(a.bin, "logs")
    os.makedirs(logdir, exist_ok=True)

    print("bench: %s, %d round(s), impls %s, load generator %s, logs in %s" % (
        "quick" if QUICK else "full", a.rounds, ", ".join(order),
        "pinned to CPU %d" % cpus[-1] if pin else "unpinned", logdir), flush=True)
    start = time.monotonic()
    hard_deadline = start + a.budget if a.budget else float("inf")
    results, failures = {}, []
    for rnd in range(a.rounds):
        for wl in wls:
            seq = order if rnd % 2 == 0 else list(reversed(order))
            if len(wl) > 3:
                seq = [impl for impl in seq if impl != "floor"]
            for impl in seq:
                tag = "round %d %-9s %-5s" % (rnd + 1, wl[0], impl)
                if a.budget and time.monotonic() - start > a.budget:
                    failures.append((tag, "not run: over the %.0f s budget" % a.budget))
                    print("%s  SKIPPED (over budget)" % tag, flush=True)
                    continue
                logbase = os.path.join(logdir, "r%d-%s-%s" % (rnd + 1, wl[0], impl))
                t = time.monotonic()
                try:
                    r = run_one(impl, impls[impl], loadgen, pin, wl, limit, logbase, hard_deadline)
                except Failure as e:
                    failures.append((tag, str(e)))
                    print("%s  FAILED: %s (logs %s.*)" % (tag, e, logbase), flush=True)
                    continue
                results.setdefault((impl, wl[0]), []).append(r)
                cpu = r.get("cpu_ns")
                print("%s  %10.0f ops in %7.3f s  cpu %s  [%.1f s]" % (
                    tag, r["ops"], r["secs"], "%.3f s" % (cpu / 1e9) if cpu is not None else "-",
                    time.monotonic() - t), flush=True)

    print()
    print("medians over %d round(s); cpu/op is the server process's CPU time per operation" % a.rounds)
    print_table(impls, results, names)
    print()
    print("total %.1f s" % (time.monotonic() - start))
    if failures:
        print("%d run(s) FAILED:" % len(failures))
        for tag, why in failures:
            print("  %s: %s" % (tag, why))
        sys.exit(1)


if __name__ == "__main__":
    main()
