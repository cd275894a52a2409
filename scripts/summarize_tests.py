#!/usr/bin/env python3
"""Sums GoogleTest JSON reports into the final "N passed, N failed, N skipped" line.

Usage: summarize_tests.py REPORT_DIR [MESON_TESTLOG_JSON]

Every gtest binary writes REPORT_DIR/<binary>.json (GTEST_OUTPUT=json:REPORT_DIR/). A case counts as
failed when it has failures, as skipped when GoogleTest reports it SKIPPED (GTEST_SKIP) or did not
run it (a DISABLED_ case), and as passed otherwise: a skip is never a pass. A test binary that meson
saw fail but that left no failing case behind (a crash, a sanitizer abort, a timeout) counts as one
failed case, so a dead binary can never look green; one that meson saw skip (exit code 77) without a
report counts as one skipped case. Skipped cases are listed by name, with GoogleTest's reason.
"""
import glob
import json
import os
import sys


def skip_reasons(output: str) -> dict:
    """{"Suite.Case": message} of every GTEST_SKIP in a binary's console output (the JSON report of
    the GoogleTest in Debian does not carry the message)."""
    reasons, current, lines = {}, None, []
    for line in output.splitlines():
        if line.startswith("[ RUN      ] "):
            current, lines = line[13:].strip(), []
        elif line.startswith("[  SKIPPED ] ") and current and line[13:].startswith(current):
            text = " ".join(" ".join(lines).split())
            reasons[current] = text.split(": Skipped", 1)[-1].strip() if ": Skipped" in text else text
            current = None
        elif current is not None:
            lines.append(line)
    return reasons


def main() -> int:
    report_dir = sys.argv[1]
    testlog = sys.argv[2] if len(sys.argv) > 2 else None
    passed = failed = skipped = 0
    failed_names = []
    skipped_names = []
    reported_failures = {}
    reported = set()
    entries = []
    reasons = {}
    if testlog and os.path.exists(testlog):
        with open(testlog) as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue  # not a test's entry (a torn line)
    for entry in entries:
        reasons.update(skip_reasons(entry.get("stdout") or entry.get("stdo") or ""))
    for path in sorted(glob.glob(os.path.join(report_dir, "*.json"))):
        binary = os.path.splitext(os.path.basename(path))[0]
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError):
            continue  # a binary killed while writing; meson's log below counts it
        reported.add(binary)
        count = 0
        for suite in report.get("testsuites", []):
            for case in suite.get("testsuite", []):
                name = f"{suite['name']}.{case['name']}"
                if case.get("failures"):
                    failed += 1
                    count += 1
                    failed_names.append(name)
                elif case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                    skipped += 1
                    why = "disabled" if case.get("status") == "NOTRUN" else reasons.get(name, "")
                    skipped_names.append(f"{name}" + (f" ({why})" if why else ""))
                else:
                    passed += 1
        reported_failures[binary] = count
    for entry in entries:
        # The command is "command" in meson's JSON log ("cmd" in some versions).
        command = entry.get("command") or entry.get("cmd")
        binary = os.path.basename(command[0]) if command else entry.get("name", "")
        result = entry.get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            continue
        if result == "SKIP":
            if binary not in reported:
                skipped += 1
                skipped_names.append(f"{entry['name']} (meson: the whole binary skipped)")
            continue
        if reported_failures.get(binary, 0) == 0:
            failed += 1
            failed_names.append(f"{entry['name']} ({result}: the binary failed outside its test cases)")
    for name in skipped_names:
        print(f"SKIPPED {name}")
    for name in failed_names:
        print(f"FAILED {name}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
