// Where the API server is and how to authenticate (README "Authentication"): a kubeconfig's
// context, or the pod's service account (in-cluster).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace leoflow::plugins::dispatcher_k8s {

struct ExecCredential {
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
};

struct Connection {
  std::string server;      ///< "https://host:port", no trailing slash
  std::string ca_file;     ///< PEM file; or
  std::string ca_data;     ///< PEM text (certificate-authority-data, decoded)
  std::string cert_file, cert_data, key_file, key_data;  ///< client certificate
  std::string token;       ///< a fixed bearer token; or
  std::string token_file;  ///< a token re-read every minute (in-cluster: it rotates)
  bool has_exec = false;
  ExecCredential exec;     ///< a client-go exec credential plugin (EKS, GKE)
  std::string namespace_;  ///< the context's or the service account's; may be empty
  std::string origin;      ///< "kubeconfig <file> context <name>" or "in-cluster", for messages
};

/// Parses YAML (or JSON) text into JSON: quoted scalars are strings, plain ones null, booleans,
/// numbers or strings (YAML 1.2 core schema). Throws std::invalid_argument.
nlohmann::json parseYaml(const std::string& text, const std::string& what);

/// The connection of `context` (empty = current-context) in the kubeconfig `path`. Throws
/// std::invalid_argument naming the file and what is missing.
Connection loadKubeconfig(const std::filesystem::path& path, const std::string& context);

/// In-cluster: KUBERNETES_SERVICE_HOST/PORT, <sa_dir>/token (re-read), <sa_dir>/ca.crt and
/// <sa_dir>/namespace. Throws std::invalid_argument when not in a cluster.
Connection inCluster(const std::filesystem::path& sa_dir);

std::string base64Decode(const std::string& in);

}  // namespace leoflow::plugins::dispatcher_k8s
