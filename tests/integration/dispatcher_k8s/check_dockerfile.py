#!/usr/bin/python3
"""check_dockerfile.py REPO_ROOT [MESON]: deploy/Dockerfile checked without Docker (no image can be built here).

- Stages: a `build` stage FROM debian:bookworm, a runtime stage FROM debian:bookworm(-slim); every
  `COPY --from=` names an earlier stage.
- Every path copied from the build context exists in the repository and is not left out of the
  context by deploy/Dockerfile.dockerignore.
- The build stage installs every library package of scripts/lib.sh (LEOFLOW_PACKAGES, the -dev ones
  but the test and benchmark libraries), and runs `meson setup` with --buildtype=release and
  `meson install --destdir`.
- With MESON: the build stage's sources (what it copies, nothing else) configured with the
  Dockerfile's own `meson setup` options (about 2 s, no compilation); what that build would install
  (the binary and the plugins) must be what the runtime stage copies out of it, and the ENTRYPOINT
  the binary copied.
- deploy/kubernetes/deployment.yaml names the image `leoflow:<version>` (meson.build's project()
  version), the version the Dockerfile's usage line and label give.
Exit 0 when all hold; each problem is printed."""
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

problems = []


def problem(text):
    problems.append(text)
    print("problem: " + text)


def instructions(path):
    """(keyword, argument text) of every instruction, continuation lines joined, comments dropped."""
    out, pending = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if pending and line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            text = (pending + line).strip()
            pending = ""
            keyword, _, rest = text.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def ignored(rel, patterns):
    rel = rel.strip("/")
    parts = rel.split("/")
    for p in patterns:
        p = p.strip("/")
        # A pattern leaves out what it matches and everything under it.
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), p):
                return True
    return False


def under(path, src):
    src = src.rstrip("/")
    return path == src or path.startswith(src + "/")


def place(root, ctx, src, dest, several):
    """COPY src dest of a stage whose WORKDIR is the source directory, into ctx: a directory's
    contents into dest, a file into dest (a directory when it ends with / or there are several)."""
    path = os.path.join(root, src)
    base = ctx if dest in (".", "./") else os.path.join(ctx, dest)
    if os.path.isdir(path):
        shutil.copytree(path, base, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return
    target = os.path.join(base, os.path.basename(src)) if dest.endswith("/") or dest in (".", "./") or several else base
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(path, target)


def main(root, meson=None):
    dockerfile = os.path.join(root, "deploy", "Dockerfile")
    with open(os.path.join(root, "meson.build")) as f:
        version = re.search(r"project\([^)]*?version\s*:\s*'([^']+)'", f.read(), re.S).group(1)
    patterns = []
    ignore_file = dockerfile + ".dockerignore"
    if os.path.exists(ignore_file):
        with open(ignore_file) as f:
            patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    stages = []  # {"name", "image", "copies": [(from, sources, dest)], "runs": [...], "workdir"}
    entrypoint, labels = None, {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append({"name": name, "image": words[0], "copies": [], "runs": [], "workdir": "/"})
        elif not stages:
            if keyword != "ARG":
                problem(keyword + " before the first FROM")
        elif keyword == "COPY" or keyword == "ADD":
            words = shlex.split(rest)
            flags = [w for w in words if w.startswith("--")]
            args = [w for w in words if not w.startswith("--")]
            src_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            stages[-1]["copies"].append((src_stage, args[:-1], args[-1]))
        elif keyword == "RUN":
            stages[-1]["runs"].append(rest)
        elif keyword == "WORKDIR":
            stages[-1]["workdir"] = rest
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "LABEL":
            for k, v in re.findall(r'(\S+?)="([^"]*)"', rest):
                labels[k] = v

    # Stages.
    if len(stages) < 2:
        problem("not multi-stage: %d stage(s)" % len(stages))
        return 1
    build, runtime = stages[0], stages[-1]
    print("stages: " + ", ".join("%s (%s)" % (s["name"], s["image"]) for s in stages))
    if build["name"] != "build" or build["image"] != "debian:bookworm":
        problem("the first stage is not `build` FROM debian:bookworm: %s FROM %s" % (build["name"], build["image"]))
    names = []
    for s in stages:
        if s["image"] not in ("debian:bookworm", "debian:bookworm-slim") and s["image"] not in names:
            problem("stage %s is FROM %s, not Debian 12 (bookworm)" % (s["name"], s["image"]))
        for src_stage, _, _ in s["copies"]:
            if src_stage is not None and src_stage not in names:
                problem("stage %s copies --from=%s, not an earlier stage" % (s["name"], src_stage))
        names.append(s["name"])

    # Paths copied from the context.
    copied = 0
    for s in stages:
        for src_stage, sources, _ in s["copies"]:
            if src_stage is not None:
                continue
            for src in sources:
                copied += 1
                if not os.path.exists(os.path.join(root, src)):
                    problem("COPY %s: no such path in the repository" % src)
                elif ignored(src, patterns):
                    problem("COPY %s: left out of the context by %s" % (src, os.path.basename(ignore_file)))
    print("%d paths copied from the build context" % copied)

    # Packages and meson commands of the build stage.
    with open(os.path.join(root, "scripts", "lib.sh")) as f:
        listed = re.search(r"LEOFLOW_PACKAGES=\((.*?)\)", f.read(), re.S).group(1).split()
    wanted = [p for p in listed if p.endswith("-dev") and p not in ("libgtest-dev", "libgmock-dev", "libbenchmark-dev")]
    build_runs = " ".join(build["runs"])
    installed_pkgs = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", build_runs))
    missing = [p for p in wanted if p not in installed_pkgs]
    if missing:
        problem("the build stage does not install " + " ".join(missing) + " (scripts/lib.sh)")
    setup = re.search(r"meson setup ([^&]*)", build_runs)
    install = re.search(r"meson install ([^&]*)", build_runs)
    if not setup or "--buildtype=release" not in setup.group(1):
        problem("no `meson setup ... --buildtype=release` in the build stage")
    if not install or "--destdir" not in install.group(1):
        problem("no `meson install ... --destdir` in the build stage")

    from_build = [src for s in stages[1:] for st, sources, _ in s["copies"] if st == build["name"] for src in sources]
    dests = {src: dest for s in stages[1:] for st, sources, dest in s["copies"] if st == build["name"] for src in sources}

    # What the build would install, configured from the copied sources only.
    if meson and setup and install:
        setup_args = shlex.split(setup.group(1))
        install_args = shlex.split(install.group(1))
        destdir = install_args[install_args.index("--destdir") + 1]
        options = [a for a in setup_args[2:]]  # after the build and source directories
        with tempfile.TemporaryDirectory(prefix="leoflow-dockerfile-") as tmp:
            ctx = os.path.join(tmp, "src")
            os.makedirs(ctx)
            for src_stage, sources, dest in build["copies"]:
                if src_stage is None:
                    for src in sources:
                        place(root, ctx, src, dest, len(sources) > 1)
            r = subprocess.run([meson, "setup", os.path.join(tmp, "build"), ctx] + options,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                problem("meson setup on the build stage's sources failed:\n" + r.stdout[-3000:])
            else:
                r = subprocess.run([meson, "introspect", os.path.join(tmp, "build"), "--installed"],
                                   stdout=subprocess.PIPE, text=True, check=True)
                installed = [p for p in json.loads(r.stdout).values() if "/include/" not in p and "/pkgconfig/" not in p]
                plugins = [p for p in installed if p.endswith(".so")]
                print("the build stage installs %d files: %s" % (len(installed), ", ".join(sorted(installed))))
                if not any(p.endswith("/bin/leoflow") for p in installed) or len(plugins) < 6:
                    problem("the build stage would not install the binary and the six plugins: %s" % installed)
                for p in installed:
                    if not any(under(destdir + p, src) for src in from_build):
                        problem("%s%s is built but the runtime stage does not copy it" % (destdir, p))
                for src in from_build:
                    if not any(under(destdir + p, src) for p in installed):
                        problem("COPY --from=%s %s: the build installs nothing there" % (build["name"], src))
    elif not meson:
        print("meson not given: the installed paths are not checked")

    if entrypoint is None or entrypoint[0] not in dests.values():
        problem("the ENTRYPOINT %s is not the binary copied from the build stage %s" % (entrypoint, list(dests.values())))

    # The image name and version.
    image = "leoflow:" + version
    with open(os.path.join(root, "deploy", "kubernetes", "deployment.yaml")) as f:
        images = re.findall(r"^\s*image:\s*(\S+)", f.read(), re.M)
    if images != [image]:
        problem("deployment.yaml names %s, not the image deploy/Dockerfile builds (%s)" % (images, image))
    with open(dockerfile) as f:
        text = f.read()
    if "-t " + image not in text:
        problem("the Dockerfile's usage line does not tag " + image)
    if labels.get("org.opencontainers.image.version") != version:
        problem("the image's version label %s is not %s" % (labels.get("org.opencontainers.image.version"), version))

    print("deploy/Dockerfile: %s" % ("%d problem(s)" % len(problems) if problems else "ok, image " + image))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
