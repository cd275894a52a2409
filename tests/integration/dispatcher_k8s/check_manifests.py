#!/usr/bin/python3
"""Checks Kubernetes manifests against the official models (Debian's python3-kubernetes).

check_manifests.py FILE_OR_DIR...: every .json/.yaml document (a Pod, or any kind the models know)
is deserialised into its model (V1Pod, V1Deployment, ...) through ApiClient and serialised back;
the result must equal the input, so a misspelt field, a wrong type or a value in the wrong place is
reported. Exit 0 when all match, 1 otherwise (with a diff), 2 when the models are not installed.
"""
import json
import os
import sys

try:
    import kubernetes.client as k8s
    import yaml
except ImportError as e:  # pragma: no cover
    print(f"python3-kubernetes is not installed: {e}", file=sys.stderr)
    sys.exit(2)

client = k8s.ApiClient()


def model_name(doc):
    api = doc.get("apiVersion", "v1")
    group, _, version = api.rpartition("/")
    return version.capitalize() + doc["kind"]  # V1Pod, V1Deployment, V1Role, V1ConfigMap, ...


def diff(a, b, path="$"):
    if type(a) is not type(b):
        return [f"{path}: {a!r} became {b!r}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{path}.{k}: dropped (not a field of the model)")
            elif k not in a:
                out.append(f"{path}.{k}: added {b[k]!r}")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} became {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r} became {b!r}"]


def check(doc, where):
    name = model_name(doc)
    if not hasattr(k8s, name):
        return [f"{where}: no model {name} for {doc.get('apiVersion')} {doc.get('kind')}"]
    obj = client._ApiClient__deserialize(doc, name)
    back = client.sanitize_for_serialization(obj)
    return [f"{where} ({name}): {d}" for d in diff(doc, back)]


def documents(path):
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d]


def main(args):
    files = []
    for a in args:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, n) for n in os.listdir(a) if n.endswith((".json", ".yaml", ".yml")))
        else:
            files.append(a)
    problems = []
    count = 0
    for f in files:
        for i, doc in enumerate(documents(f)):
            count += 1
            problems += check(doc, f"{f}#{i}")
    for p in problems:
        print(p)
    print(f"{count} manifests checked, {len(problems)} problems")
    return 1 if problems or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
