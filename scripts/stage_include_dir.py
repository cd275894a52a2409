#!/usr/bin/env python3
"""Builds an include directory that holds exactly the given entries, as symbolic links.

Usage: stage_include_dir.py DIR ENTRY=TARGET...

  stage_include_dir.py build/core/planning/layer planning=/src/core/planning text=/src/core/text

makes DIR/planning and DIR/text links to those directories (an ENTRY may be a path, as in
leoflow/domain.h=/src/core/include/leoflow/domain.h) and removes anything else in DIR. A library
whose include path is DIR alone can include what the entries expose and nothing else: that is how
the meson build keeps core/planning and core/schedule from including the engine, the host or the
plugin interfaces (ARCHITECTURE §1). Links, not copies, so an edited header is seen at once and a
compiler message names a file that leads to the real one. meson runs this at configure time; it
only touches links that are wrong, and prints nothing.
"""
import os
import shutil
import sys


def main(argv) -> int:
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1])
    wanted = {}
    for arg in argv[2:]:
        entry, sep, target = arg.partition("=")
        if not sep or not entry or os.path.isabs(entry) or ".." in entry.split("/"):
            print(f"stage_include_dir.py: bad entry {arg!r} (want ENTRY=TARGET, ENTRY relative)", file=sys.stderr)
            return 2
        target = os.path.abspath(target)
        if not os.path.exists(target):
            print(f"stage_include_dir.py: {target} does not exist", file=sys.stderr)
            return 1
        wanted[os.path.normpath(entry)] = target

    # Remove whatever is not a wanted link (an entry dropped from meson.build, a stale file).
    keep_dirs = {root}
    for entry in wanted:
        parent = os.path.dirname(os.path.join(root, entry))
        while parent.startswith(root) and parent not in keep_dirs:
            keep_dirs.add(parent)
            parent = os.path.dirname(parent)
    if os.path.isdir(root):
        for dirpath, dirnames, filenames in os.walk(root, topdown=True, followlinks=False):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                if rel in wanted and os.path.islink(path) and os.readlink(path) == wanted[rel]:
                    continue
                if path in keep_dirs and not os.path.islink(path):
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) in keep_dirs]

    for entry, target in sorted(wanted.items()):
        link = os.path.join(root, entry)
        if os.path.islink(link):
            continue  # kept above: already right
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
