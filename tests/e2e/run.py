#!/usr/bin/env python3
"""Runs the end-to-end tests: every function named test_* in tests/e2e/test_*.py, in file order,
one at a time, each under a watchdog (WEFT_E2E_TIMEOUT seconds, default 30).

    python3 tests/e2e/run.py [-k SUBSTRING]... [-x] [--list]

-k (repeatable) and the WEFT_E2E_FILTER environment variable (comma-separated) keep only tests
whose "module.test_name" contains one of the substrings. WEFT_BIN picks the binary (default
build/weft). Prints "ok NAME" or "FAIL NAME" with the traceback for each test and ends with
one line "N passed, N failed"; exit status 1 if any failed.
"""

import argparse
import glob
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def _on_alarm(signum, frame):
    raise harness.TestTimeout("test exceeded its time limit")


def collect(filters):
    tests, broken = [], []
    for fn in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        modname = os.path.splitext(os.path.basename(fn))[0]
        try:
            mod = importlib.import_module(modname)
        except Exception:
            broken.append((modname, traceback.format_exc()))
            continue
        for name, obj in list(vars(mod).items()):
            if name.startswith("test_") and callable(obj):
                full = "%s.%s" % (modname, name)
                if filters and not any(f in full for f in filters):
                    continue
                tests.append((full, obj))
    return tests, broken


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], help="only tests whose name contains this")
    ap.add_argument("-x", action="store_true", help="stop at the first failure")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()
    filters = list(args.k)
    env_filter = os.environ.get("WEFT_E2E_FILTER", "")
    filters += [f for f in env_filter.split(",") if f]
    limit = int(os.environ.get("WEFT_E2E_TIMEOUT", "30"))

    tests, broken = collect(filters)
    if args.list:
        for full, _ in tests:
            print(full)
        return 0

    if not os.path.exists(harness.WEFT_BIN):
        print("note: %s does not exist; every test that runs the proxy will fail" % harness.WEFT_BIN, flush=True)

    passed = failed = 0
    for modname, tb in broken:
        failed += 1
        print("FAIL %s (import)" % modname)
        print(_indent(tb), flush=True)

    signal.signal(signal.SIGALRM, _on_alarm)
    t_all = time.monotonic()
    for full, fn in tests:
        harness.weft_instances.clear()
        t0 = time.monotonic()
        err = None
        signal.alarm(limit)
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - a test's failure of any kind is reported
            if isinstance(e, KeyboardInterrupt):
                signal.alarm(0)
                harness.cleanup()
                raise
            err = traceback.format_exc()
        finally:
            signal.alarm(0)
        try:
            harness.cleanup()
        except Exception:
            pass
        dt = time.monotonic() - t0
        if err is None:
            passed += 1
            print("ok %s  (%.2fs)" % (full, dt), flush=True)
        else:
            failed += 1
            print("FAIL %s  (%.2fs)" % (full, dt))
            print(_indent(err))
            for w in harness.weft_instances:
                tail = harness._tail(w.stderr(), 25)
                if tail and tail not in err:
                    print(_indent("--- weft stderr (pid %s) ---\n%s" % (w.proc.pid if w.proc else "?", tail)))
            sys.stdout.flush()
            if args.x:
                break
    harness.remove_session_dir()
    print("# %.1fs" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def _indent(text, pad="    "):
    return "\n".join(pad + ln for ln in text.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
