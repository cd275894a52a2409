#!/usr/bin/env python3
"""Prints the ninja targets the tests of the given suites need (their executables and what they
depend on), so a build directory can build just those: scripts/test_targets.py BUILD_DIR SUITE..."""
import json
import os
import subprocess
import sys

build, suites = sys.argv[1], set(sys.argv[2:])
tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", build]))
targets = {t["id"]: t for t in json.loads(subprocess.check_output(["meson", "introspect", "--targets", build]))}
wanted = set()
for test in tests:
    if not suites & {s.split(":")[-1] for s in test["suite"]}:
        continue
    wanted.add(os.path.relpath(test["cmd"][0], build))
    for dep in test.get("depends", []):
        if dep in targets:
            for f in targets[dep]["filename"]:
                wanted.add(os.path.relpath(f, build))
print("\n".join(sorted(wanted)))
