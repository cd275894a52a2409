#include "kubeconfig.h"

#include <yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace leoflow::plugins::dispatcher_k8s {
namespace {

nlohmann::json toJson(yaml_document_t* doc, yaml_node_t* node, int depth) {
  if (node == nullptr || depth > 64) return nullptr;
  switch (node->type) {
    case YAML_SCALAR_NODE: {
      std::string v(reinterpret_cast<const char*>(node->data.scalar.value), node->data.scalar.length);
      if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return v;
      // Plain scalars resolve as YAML 1.2's core schema does: null, booleans, integers, floats.
      if (v == "null" || v == "~" || v.empty()) return nullptr;
      if (v == "true" || v == "True" || v == "TRUE") return true;
      if (v == "false" || v == "False" || v == "FALSE") return false;
      const auto number = nlohmann::json::parse(v, nullptr, false);
      if (number.is_number() && v.find_first_not_of("+-0123456789.eE") == std::string::npos) return number;
      return v;
    }
    case YAML_SEQUENCE_NODE: {
      nlohmann::json out = nlohmann::json::array();
      for (yaml_node_item_t* i = node->data.sequence.items.start; i < node->data.sequence.items.top; ++i) {
        out.push_back(toJson(doc, yaml_document_get_node(doc, *i), depth + 1));
      }
      return out;
    }
    case YAML_MAPPING_NODE: {
      nlohmann::json out = nlohmann::json::object();
      for (yaml_node_pair_t* p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
        const nlohmann::json key = toJson(doc, yaml_document_get_node(doc, p->key), depth + 1);
        if (!key.is_string()) continue;
        out[key.get<std::string>()] = toJson(doc, yaml_document_get_node(doc, p->value), depth + 1);
      }
      return out;
    }
    default: return nullptr;
  }
}

std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const nlohmann::json* named(const nlohmann::json& list, const std::string& name, const char* field) {
  if (!list.is_array()) return nullptr;
  for (const auto& item : list) {
    if (item.is_object() && item.value("name", "") == name && item.contains(field)) return &item[field];
  }
  return nullptr;
}

const nlohmann::json& member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string str(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null() || obj[key].is_structured()) return {};
  return obj[key].is_string() ? obj[key].get<std::string>() : obj[key].dump();
}

std::string relativeTo(const std::filesystem::path& base, const std::string& file) {
  if (file.empty()) return file;
  std::filesystem::path p(file);
  return p.is_absolute() ? file : (base.parent_path() / p).lexically_normal().string();
}

}  // namespace

std::string base64Decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = -8;
  for (const char c : in) {
    if (c == '=') break;
    const auto at = kAlphabet.find(c);
    if (at == std::string::npos) continue;  // whitespace, newlines
    value = (value << 6) | static_cast<unsigned>(at);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((value >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

nlohmann::json parseYaml(const std::string& text, const std::string& what) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) throw std::invalid_argument("cannot parse " + what);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (!yaml_parser_load(&parser, &doc)) {
    const std::string problem = parser.problem != nullptr ? parser.problem : "syntax error";
    const auto line = parser.problem_mark.line + 1;
    yaml_parser_delete(&parser);
    throw std::invalid_argument(what + ": line " + std::to_string(line) + ": " + problem);
  }
  nlohmann::json out = toJson(&doc, yaml_document_get_root_node(&doc), 0);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return out;
}

Connection loadKubeconfig(const std::filesystem::path& path, const std::string& context_name) {
  const std::string what = "kubeconfig " + path.string();
  const nlohmann::json cfg = parseYaml(readAll(path), what);
  if (!cfg.is_object()) throw std::invalid_argument(what + ": not a kubeconfig");
  const std::string ctx_name = context_name.empty() ? str(cfg, "current-context") : context_name;
  if (ctx_name.empty()) throw std::invalid_argument(what + ": no current-context (set the \"context\" key)");
  const nlohmann::json* ctx = named(member(cfg, "contexts"), ctx_name, "context");
  if (ctx == nullptr) throw std::invalid_argument(what + ": no context \"" + ctx_name + "\"");
  const std::string cluster_name = str(*ctx, "cluster");
  const std::string user_name = str(*ctx, "user");
  const nlohmann::json* cluster = named(member(cfg, "clusters"), cluster_name, "cluster");
  if (cluster == nullptr) throw std::invalid_argument(what + ": no cluster \"" + cluster_name + "\"");
  Connection c;
  c.origin = what + " context " + ctx_name;
  c.server = str(*cluster, "server");
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (c.server.rfind("https://", 0) != 0) {
    throw std::invalid_argument(what + ": cluster \"" + cluster_name + "\" needs an https:// server (TLS is always verified)");
  }
  c.ca_file = relativeTo(path, str(*cluster, "certificate-authority"));
  if (const std::string d = str(*cluster, "certificate-authority-data"); !d.empty()) c.ca_data = base64Decode(d);
  c.namespace_ = str(*ctx, "namespace");
  if (const nlohmann::json* user = named(member(cfg, "users"), user_name, "user")) {
    c.token = str(*user, "token");
    c.token_file = relativeTo(path, str(*user, "tokenFile"));
    c.cert_file = relativeTo(path, str(*user, "client-certificate"));
    c.key_file = relativeTo(path, str(*user, "client-key"));
    if (const std::string d = str(*user, "client-certificate-data"); !d.empty()) c.cert_data = base64Decode(d);
    if (const std::string d = str(*user, "client-key-data"); !d.empty()) c.key_data = base64Decode(d);
    const bool cert = !c.cert_file.empty() || !c.cert_data.empty();
    const bool key = !c.key_file.empty() || !c.key_data.empty();
    if (cert != key) {
      throw std::invalid_argument(what + ": user \"" + user_name + "\": " +
                                  (cert ? "client-certificate without client-key" : "client-key without client-certificate") +
                                  " (a client certificate needs both, or their -data forms)");
    }
    if (user->contains("exec") && (*user)["exec"].is_object()) {
      const auto& e = (*user)["exec"];
      c.has_exec = true;
      c.exec.command = relativeTo(path, str(e, "command"));
      if (str(e, "command").find('/') == std::string::npos) c.exec.command = str(e, "command");
      if (e.contains("args") && e["args"].is_array()) {
        for (const auto& a : e["args"]) {
          if (a.is_string()) c.exec.args.push_back(a.get<std::string>());
        }
      }
      if (e.contains("env") && e["env"].is_array()) {
        for (const auto& v : e["env"]) c.exec.env[str(v, "name")] = str(v, "value");
      }
      if (c.exec.command.empty()) throw std::invalid_argument(what + ": user \"" + user_name + "\": exec without a command");
    }
  } else if (!user_name.empty()) {
    throw std::invalid_argument(what + ": no user \"" + user_name + "\"");
  }
  return c;
}

Connection inCluster(const std::filesystem::path& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    throw std::invalid_argument(
        "dispatcher-k8s: no \"kubeconfig\" key and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  Connection c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = "https://" + h + ":" + port;
  c.token_file = (sa_dir / "token").string();
  c.ca_file = (sa_dir / "ca.crt").string();
  c.origin = "in-cluster (" + sa_dir.string() + ")";
  std::error_code ec;
  if (!std::filesystem::exists(c.token_file, ec)) {
    throw std::invalid_argument("dispatcher-k8s: in-cluster, but no service-account token at " + c.token_file);
  }
  if (std::filesystem::exists(sa_dir / "namespace", ec)) {
    std::string ns = readAll(sa_dir / "namespace");
    while (!ns.empty() && (ns.back() == '\n' || ns.back() == ' ')) ns.pop_back();
    c.namespace_ = ns;
  }
  return c;
}

}  // namespace leoflow::plugins::dispatcher_k8s
