#!/usr/bin/env python3
"""Runs a benchmark command at top CPU priority and reruns it when something
else visibly took CPU time while it ran. On a shared 2-core machine a
concurrent `cargo build` halves a 2-thread GEMM and wrecks medians.

    python3 bench/quiet.py [--tries 2] [--max-foreign 1.3] [--wait 10] -- CMD ARGS...

Priority: the command gets a session of its own, hence (with
kernel.sched_autogroup_enabled) a scheduling group of its own, and that group
and the process get nice -20 when run as root. Plain nice would not do: it only
weighs tasks within one autogroup, and every shell session is its own group.

Foreign CPU = the machine's busy time (from /proc/stat) during the run minus
the CPU time of this command and all its waited-for descendants
(RUSAGE_CHILDREN), in cores on average. A single-threaded phase leaves a core
to others, as do cargo's start-up and criterion's analysis, so up to ~1 core
is normal; the default limit only catches a phase that lost CPU it wanted.
Before each try it waits (at most --wait seconds) for the load to stay under
5 % of a core for 3 s. Exit status: the command's, or 3 when every try was
over the limit (the last try's results stay on disk).
"""

import argparse
import os
import resource
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICK


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(give_up, window=3.0, limit=0.05):
    start = time.time()
    while time.time() - start < give_up:
        b0 = busy_seconds()
        time.sleep(window)
        load = (busy_seconds() - b0) / window
        if load < limit:
            return
        print(f"quiet.py: machine busy ({load:.2f} cores), waiting", file=sys.stderr, flush=True)
    print(f"quiet.py: not quiet after {give_up:.0f} s; running anyway", file=sys.stderr, flush=True)


def prioritize(niceness):
    """In the child before exec: a session of its own (so, with
    sched_autogroup, a scheduling group of its own, which plain nice cannot
    reach across) at `niceness`, and the same niceness for the process."""
    if not niceness:
        return
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write(str(niceness))
    except OSError:
        pass
    os.nice(niceness)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tries", type=int, default=2)
    p.add_argument("--max-foreign", type=float, default=1.3, help="allowed foreign load, in cores, averaged")
    p.add_argument("--wait", type=float, default=10.0, help="longest wait for an idle machine before a try, s")
    p.add_argument("--nice", type=int, default=-20 if os.geteuid() == 0 else 0, help="niceness of the command")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    rc = 3
    for attempt in range(1, a.tries + 1):
        wait_quiet(a.wait)
        b0, c0, t0 = busy_seconds(), children_cpu(), time.time()
        rc = subprocess.call(cmd, preexec_fn=lambda: prioritize(a.nice))
        wall = time.time() - t0
        foreign = max(0.0, (busy_seconds() - b0) - (children_cpu() - c0)) / max(wall, 1e-9)
        print(f"quiet.py: try {attempt}: rc={rc}, {wall:.0f} s, foreign load {foreign:.3f} cores: {' '.join(cmd)}",
              file=sys.stderr, flush=True)
        if rc != 0:
            return rc
        if foreign <= a.max_foreign:
            return 0
    return 3


if __name__ == "__main__":
    sys.exit(main())
