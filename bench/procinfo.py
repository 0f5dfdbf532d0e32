#!/usr/bin/env python3
"""Resource use of a process tree, from /proc.

  procinfo.py rss PID   VmRSS in KiB, summed over PID and its descendants (nginx: master+worker)
  procinfo.py cpu PID   utime+stime in clock ticks, summed over PID and its descendants
  procinfo.py pids PID  PID and its descendants

utime/stime of a process cover all its threads (Weft's main thread and its worker).
"""
import os
import sys


def tree(pid):
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_ticks(pid):
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
        except (OSError, IndexError):
            pass
    return total


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("rss", "cpu", "pids"):
        sys.exit(__doc__)
    what, pid = sys.argv[1], sys.argv[2]
    if what == "rss":
        print(rss_kib(pid))
    elif what == "cpu":
        print(cpu_ticks(pid))
    else:
        print(" ".join(str(p) for p in tree(pid)))


if __name__ == "__main__":
    main()
