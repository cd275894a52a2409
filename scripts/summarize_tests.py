#!/usr/bin/env python3
"""Sums GoogleTest JSON reports into the final "N passed, N failed" line.

Usage: summarize_tests.py REPORT_DIR [MESON_TESTLOG_JSON]

Every gtest binary writes REPORT_DIR/<binary>.json (GTEST_OUTPUT=json:REPORT_DIR/). A test binary
that meson saw fail but that left no failing case behind (a crash, a sanitizer abort, a timeout)
counts as one failed case, so a dead binary can never look green.
"""
import glob
import json
import os
import sys


def main() -> int:
    report_dir = sys.argv[1]
    testlog = sys.argv[2] if len(sys.argv) > 2 else None
    passed = failed = 0
    failed_names = []
    reported_failures = {}
    for path in sorted(glob.glob(os.path.join(report_dir, "*.json"))):
        binary = os.path.splitext(os.path.basename(path))[0]
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            continue  # a binary killed while writing; meson's log below counts it
        count = 0
        for suite in report.get("testsuites", []):
            for case in suite.get("testsuite", []):
                if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                    continue
                if case.get("failures"):
                    failed += 1
                    count += 1
                    failed_names.append(f"{suite['name']}.{case['name']}")
                else:
                    passed += 1
        reported_failures[binary] = count
    if testlog and os.path.exists(testlog):
        with open(testlog) as f:
            for line in f:
                entry = json.loads(line)
                if entry.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
                    continue
                binary = os.path.basename(entry.get("cmd", [""])[0]) if entry.get("cmd") else entry["name"]
                if reported_failures.get(binary, 0) == 0:
                    failed += 1
                    failed_names.append(f"{entry['name']} ({entry.get('result')}: the binary failed outside its test cases)")
    for name in failed_names:
        print(f"FAILED {name}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
