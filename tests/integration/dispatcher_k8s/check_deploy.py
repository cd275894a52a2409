#!/usr/bin/python3
"""check_deploy.py DEPLOY_DIR CONFIG_TOML: every manifest in deploy/kubernetes/ loads into the official
Kubernetes models and back unchanged (check_manifests.py), and the ConfigMap's leoflow.toml is
config/k8s.toml. Exit 0 when all hold."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_manifests  # noqa: E402


def main(deploy_dir, config_toml):
    rc = check_manifests.main([deploy_dir])
    with open(config_toml) as f:
        wanted = f.read()
    found = None
    for name in sorted(os.listdir(deploy_dir)):
        if name.endswith((".yaml", ".yml")):
            for doc in check_manifests.documents(os.path.join(deploy_dir, name)):
                if doc.get("kind") == "ConfigMap" and "leoflow.toml" in doc.get("data", {}):
                    found = doc["data"]["leoflow.toml"]
    if found is None:
        print("no ConfigMap with leoflow.toml in " + deploy_dir)
        return 1
    if found != wanted:
        print("the ConfigMap's leoflow.toml differs from " + config_toml)
        return 1
    print("the ConfigMap's leoflow.toml is " + config_toml)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
