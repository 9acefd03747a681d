#!/usr/bin/env python3
"""Drives difftest/runner (see difftest/README.md).

  difftest.py --bin DIR diff  --seeds N [--first S]   ours against runner-other; stops at the
                                                       first differing seed, shrinks it, prints
                                                       the program and both traces
  difftest.py --bin DIR sweep --seeds N [--first S] --out DIR
                                                       the same, but goes on after a difference,
                                                       writing each shrunk case to DIR
  difftest.py --bin DIR check --seeds N [--first S]   ours alone with --check (invariants)
  difftest.py --bin DIR repeat --seed S --times 20 [--which ours|other]
                                                       one seed many times: traces must be equal

Traces are compared after the rules of difftest/known_differences.txt (intended differences,
each quoting the README sentence that explains it) and nothing else.
"""
import argparse
import concurrent.futures
import difflib
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KNOWN = os.path.join(HERE, "known_differences.txt")
RUN_LIMIT = 120  # seconds per runner process; a hang is a failure, not a wait


class Rule:
    def __init__(self, name):
        self.name = name
        self.readme = None
        self.drop = []
        self.subs = []


def load_rules(path=KNOWN):
    """Parses known_differences.txt; every entry must quote a sentence of README.md."""
    rules, cur = [], None
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^\[(.+)\]$", line.strip())
            if m:
                cur = Rule(m.group(1))
                rules.append(cur)
                continue
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if cur is None:
                sys.exit(f"{path}: '{line}' outside an entry")
            if key == "readme":
                cur.readme = val
            elif key == "drop":
                cur.drop.append(re.compile(val))
            elif key == "sub":
                pat, _, rep = val.partition(" => ")
                cur.subs.append((re.compile(pat), rep))
            elif key == "why":
                pass
            else:
                sys.exit(f"{path}: unknown key '{key}' in [{cur.name}]")
    readme = " ".join(open(os.path.join(ROOT, "README.md")).read().split())
    for r in rules:
        if not r.readme:
            sys.exit(f"{path}: [{r.name}] quotes no README sentence")
        if " ".join(r.readme.split()) not in readme:
            sys.exit(f"{path}: [{r.name}]: README.md does not contain: {r.readme}")
    return rules


def normalise(trace, rules):
    out = []
    for line in trace.splitlines():
        dropped = False
        for r in rules:
            if any(p.search(line) for p in r.drop):
                dropped = True
                break
            for pat, rep in r.subs:
                line = pat.sub(rep, line)
        if not dropped:
            out.append(line)
    return out


def run(binary, seed, steps=None, check=False):
    """Returns (trace, status): status is 'ok', 'exit N', 'signal N' or 'timeout'."""
    cmd = [binary, "--seed", str(seed)]
    if steps is not None:
        cmd += ["--steps", ",".join(map(str, steps)) if steps else "-1"]
    if check:
        cmd.append("--check")
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=RUN_LIMIT, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return out + "\nTIMEOUT\n", "timeout", ""
    status = "ok" if p.returncode == 0 else (
        f"signal {-p.returncode}" if p.returncode < 0 else f"exit {p.returncode}")
    trace = p.stdout
    if status != "ok":
        trace += f"\nRUNNER {status}\n"
    return trace, status, p.stderr


def program(binary, seed, steps=None):
    cmd = [binary, "--seed", str(seed), "--print"]
    if steps is not None:
        cmd += ["--steps", ",".join(map(str, steps))]
    return subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout


def step_count(binary, seed):
    return len(program(binary, seed).splitlines())


class Pair:
    def __init__(self, bindir, rules):
        self.ours = os.path.join(bindir, "runner-ours")
        self.other = os.path.join(bindir, "runner-other")
        self.rules = rules

    def traces(self, seed, steps=None):
        a, _, _ = run(self.ours, seed, steps)
        b, _, _ = run(self.other, seed, steps)
        return a, b

    def differs(self, seed, steps=None, times=1, match=None):
        """True when the normalised traces differ `times` times in a row (with `match`, a
        regular expression: only when a differing line matches it, so shrinking keeps the
        difference one is after rather than any other the program also shows)."""
        for _ in range(times):
            a, b = self.traces(seed, steps)
            na, nb = normalise(a, self.rules), normalise(b, self.rules)
            if na == nb:
                return False
            if match is not None:
                changed = [l for l in difflib.unified_diff(na, nb, lineterm="", n=0)
                           if l[:1] in "+-" and l[:3] not in ("+++", "---")]
                if not any(re.search(match, l) for l in changed):
                    return False
        return True


def ddmin(steps, fails):
    """Zeller's delta debugging: a 1-minimal subset of `steps` for which fails() holds."""
    n = 2
    while len(steps) >= 2:
        chunk = max(1, len(steps) // n)
        subsets = [steps[i:i + chunk] for i in range(0, len(steps), chunk)]
        reduced = False
        for s in subsets:
            if fails(s):
                steps, n, reduced = s, 2, True
                break
        if not reduced:
            for s in subsets:
                comp = [x for x in steps if x not in s]
                if comp and fails(comp):
                    steps, n, reduced = comp, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(steps):
                break
            n = min(len(steps), n * 2)
    return steps


def shrink(pair, seed, log=print, match=None):
    total = step_count(pair.ours, seed)
    tried = {}

    def fails(s):
        key = tuple(s)
        if key not in tried:
            # twice, so a one-off timing accident cannot steer the shrinking
            tried[key] = pair.differs(seed, list(s), times=2, match=match)
            log(f"  shrink: {len(s)} steps -> {'differs' if tried[key] else 'same'}")
        return tried[key]

    return ddmin(list(range(total)), fails)


def show_case(pair, seed, steps, stream=sys.stdout):
    a, b = pair.traces(seed, steps)
    na, nb = normalise(a, pair.rules), normalise(b, pair.rules)
    print(f"=== seed {seed}, shrunk to steps {','.join(map(str, steps))}", file=stream)
    print(f"--- program (runner --seed {seed} --steps {','.join(map(str, steps))} --print)",
          file=stream)
    print(program(pair.ours, seed, steps), end="", file=stream)
    print("--- diff of normalised traces (- ours, + other)", file=stream)
    for line in difflib.unified_diff(na, nb, "ours", "other", lineterm="", n=3):
        print(line, file=stream)
    print("--- trace, ours", file=stream)
    print(a, end="", file=stream)
    print("--- trace, other", file=stream)
    print(b, end="", file=stream)


def compare_seed(pair, seed):
    a, b = pair.traces(seed)
    na, nb = normalise(a, pair.rules), normalise(b, pair.rules)
    return seed, na == nb, signature(na, nb)


def signature(na, nb):
    """What a difference looks like with ids, ports and numbers blurred: a sweep shrinks one
    seed per signature and only lists the other seeds that show the same one."""
    sig = set()
    for line in difflib.unified_diff(na, nb, lineterm="", n=0):
        if line[:1] not in "+-" or line[:3] in ("+++", "---"):
            continue
        body = line[1:]
        if re.match(r"^\d+: ", body):
            continue
        body = re.sub(r"#\d+|\bp\d+|\bM\d+|\bJ\d+|\bP\d+|\d+", "N", body)
        sig.add(line[0] + body)
    return "\n".join(sorted(sig))


def seeds_in_pairs(first, count, jobs, fn):
    """Runs fn(seed) `jobs` at a time, yielding results in seed order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        for base in range(first, first + count, jobs):
            batch = list(range(base, min(base + jobs, first + count)))
            for r in ex.map(fn, batch):
                yield r


def cmd_diff(args, keep_going=False):
    rules = load_rules()
    pair = Pair(args.bin, rules)
    found = 0
    seen = {}
    start = time.time()
    for seed, same, sig in seeds_in_pairs(args.first, args.seeds, args.jobs,
                                          lambda s: compare_seed(pair, s)):
        if seed % 50 == 0:
            print(f"seed {seed}: ({time.time() - start:.0f} s, {found} differing so far)", flush=True)
        if same:
            continue
        print(f"seed {seed}: traces differ; confirming", flush=True)
        if not pair.differs(seed):
            print(f"seed {seed}: did not differ again (flaky): check runner determinism", flush=True)
            if not keep_going:
                return 1
            continue
        found += 1
        if keep_going and sig in seen:
            seen[sig].append(seed)
            print(f"seed {seed}: same signature as seed {seen[sig][0]}", flush=True)
            with open(os.path.join(args.out, "signatures.txt"), "w") as f:
                for k, v in seen.items():
                    f.write(f"seeds {' '.join(map(str, v))}\n{k}\n\n")
            continue
        seen[sig] = [seed]
        if keep_going and args.no_shrink:
            with open(os.path.join(args.out, "signatures.txt"), "w") as f:
                for k, v in seen.items():
                    f.write(f"seeds {' '.join(map(str, v))}\n{k}\n\n")
            continue
        steps = shrink(pair, seed, log=(lambda m: print(m, flush=True)) if args.verbose else (lambda m: None),
                       match=args.match)
        if keep_going:
            path = os.path.join(args.out, f"seed-{seed}.txt")
            with open(path, "w") as f:
                show_case(pair, seed, steps, f)
            print(f"seed {seed}: shrunk to {len(steps)} steps -> {path}", flush=True)
        else:
            show_case(pair, seed, steps)
            return 1
    print(f"{args.seeds} seeds from {args.first}: {found} differing "
          f"({time.time() - start:.0f} s)")
    return 1 if found and not keep_going else 0


def cmd_check(args):
    binary = os.path.join(args.bin, "runner-ours")
    start = time.time()
    bad = []

    def one(seed):
        trace, status, err = run(binary, seed, check=True)
        return seed, status, trace, err

    for seed, status, trace, err in seeds_in_pairs(args.first, args.seeds, args.jobs, one):
        if status != "ok":
            bad.append(seed)
            print(f"seed {seed}: {status}")
            for line in (trace + err).splitlines():
                if "INVARIANT" in line or "difftest:" in line or "RUNNER" in line or "TIMEOUT" in line:
                    print("   ", line)
    took = time.time() - start
    print(f"difftest-check: {args.seeds} seeds from {args.first}, {len(bad)} failed, {took:.0f} s")
    return 1 if bad else 0


def cmd_repeat(args):
    binary = os.path.join(args.bin, "runner-" + args.which)
    rules = load_rules()
    first = None
    bad = 0

    def one(i):
        # normalised as for a comparison: upstream's stale UDP names are garbage at times
        return "\n".join(normalise(run(binary, args.seed)[0], rules))

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for i, t in enumerate(ex.map(one, range(args.times))):
            if first is None:
                first = t
            elif t != first:
                bad += 1
                print(f"run {i} differs from run 0:")
                for line in difflib.unified_diff(first.splitlines(), t.splitlines(), "run 0",
                                                 f"run {i}", lineterm="", n=2):
                    print("   ", line)
    print(f"seed {args.seed}: {args.times} runs of {args.which}, {bad} differing from the first")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory holding runner-ours (and runner-other)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("diff", "sweep", "check"):
        p = sub.add_parser(name)
        p.add_argument("--seeds", type=int, default=200)
        p.add_argument("--first", type=int, default=1)
        if name != "check":
            p.add_argument("--match", help="shrink keeping a differing line that matches this")
        if name == "sweep":
            p.add_argument("--out", required=True)
            p.add_argument("--no-shrink", action="store_true",
                           help="only group differing seeds by signature (signatures.txt)")
    p = sub.add_parser("repeat")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--times", type=int, default=20)
    p.add_argument("--which", choices=("ours", "other"), default="ours")
    args = ap.parse_args()
    if args.cmd == "diff":
        return cmd_diff(args)
    if args.cmd == "sweep":
        os.makedirs(args.out, exist_ok=True)
        return cmd_diff(args, keep_going=True)
    if args.cmd == "check":
        return cmd_check(args)
    return cmd_repeat(args)


if __name__ == "__main__":
    sys.exit(main())
