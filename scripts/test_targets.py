#!/usr/bin/env python3
"""Prints the ninja targets the tests of the given suites need (their executables and what they
depend on), so a build directory can build just those:

    scripts/test_targets.py BUILD_DIR SUITE... [--exclude=SUITE...]

A test is wanted when it is in one of the SUITEs and in none of the excluded ones, as
`meson test --suite SUITE... --no-suite EXCLUDED...` selects it (a test may carry several suites:
`integration` and `needs-redis`, say)."""
import json
import os
import subprocess
import sys

build = sys.argv[1]
suites = {a for a in sys.argv[2:] if not a.startswith("--exclude=")}
excluded = {a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--exclude=")}
tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", build]))
targets = {t["id"]: t for t in json.loads(subprocess.check_output(["meson", "introspect", "--targets", build]))}
wanted = set()
for test in tests:
    own = {s.split(":")[-1] for s in test["suite"]}
    if not suites & own or excluded & own:
        continue
    wanted.add(os.path.relpath(test["cmd"][0], build))
    for dep in test.get("depends", []):
        if dep in targets:
            for f in targets[dep]["filename"]:
                wanted.add(os.path.relpath(f, build))
print("\n".join(sorted(wanted)))
