#include "request.h"

#include <algorithm>
#include <cctype>

namespace leoflow::plugins::inline_http {
namespace {

constexpr int kDefaultTimeoutS = 60;

bool tokenChar(unsigned char c) {
  return std::isalnum(c) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool validToken(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return tokenChar(static_cast<unsigned char>(c)); });
}

bool validValue(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string taskName(const DispatchRequest& r) { return "inline http_api task \"" + r.task.task_id + "\""; }

}  // namespace

bool iequals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool sensitiveHeader(const std::string& name) {
  return iequals(name, "Authorization") || iequals(name, "Cookie") || iequals(name, "Proxy-Authorization") ||
         iequals(name, "Set-Cookie");
}

std::string loggedValue(const Header& header) {
  return header.secret || sensitiveHeader(header.name) ? std::string("***") : header.value;
}

int effectiveTimeout(const TaskSpec& task, int max_timeout_s) {
  const int request = task.http_request ? task.http_request->timeout_seconds : 0;
  const int execution = task.execution_timeout_seconds;
  if (request > 0 && execution > 0) return std::min(request, execution);
  if (request > 0) return request;
  if (execution > 0) return execution;
  return std::min(kDefaultTimeoutS, max_timeout_s);
}

Result<PreparedRequest> prepareRequest(const DispatchRequest& request, const Settings& settings,
                                       const std::map<std::string, std::string>& secrets) {
  const TaskSpec& task = request.task;
  if (task.type != "http_api") {
    return invalidArgument("inline-http runs http_api tasks only, not a \"" + task.type + "\" task (task \"" +
                           task.task_id + "\")");
  }
  if (!task.http_request) return invalidArgument("http_api task \"" + task.task_id + "\" has no http_request");
  const HttpRequestSpec& spec = *task.http_request;
  PreparedRequest out;
  out.timeout_s = effectiveTimeout(task, settings.max_timeout_s);
  if (out.timeout_s > settings.max_timeout_s) {
    return invalidArgument(taskName(request) + ": its timeout (" + std::to_string(out.timeout_s) +
                           " s) exceeds the inline runner's max_timeout_s (" + std::to_string(settings.max_timeout_s) +
                           " s); declare \"execution_mode\": \"pod\" to run it as a pod instead");
  }
  out.method = spec.method.empty() ? "GET" : spec.method;
  std::transform(out.method.begin(), out.method.end(), out.method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (!validToken(out.method)) return invalidArgument(taskName(request) + ": \"" + out.method + "\" is not an HTTP method");
  out.url = spec.url;
  if (out.url.rfind("http://", 0) != 0 && out.url.rfind("https://", 0) != 0) {
    return invalidArgument(taskName(request) + ": the url must be http:// or https://, got \"" + out.url + "\"");
  }
  if (!validValue(out.url) || out.url.find(' ') != std::string::npos) {
    return invalidArgument(taskName(request) + ": the url contains spaces or control characters");
  }
  bool has_content_type = false;
  for (const auto& [name, raw] : spec.headers) {
    if (!validToken(name)) return invalidArgument(taskName(request) + ": \"" + name + "\" is not a header name");
    if (iequals(name, "X-Leoflow-Tenant")) continue;  // ours
    Header h{name, {}, false};
    // ${NAME}: the scheduler's environment, only for names listed in secret_env.
    for (std::size_t i = 0; i < raw.size();) {
      const std::size_t at = raw.find("${", i);
      if (at == std::string::npos) {
        h.value.append(raw, i, std::string::npos);
        break;
      }
      h.value.append(raw, i, at - i);
      const std::size_t end = raw.find('}', at + 2);
      if (end == std::string::npos) {
        return invalidArgument(taskName(request) + ": header \"" + name + "\" has an unterminated ${");
      }
      const std::string var = raw.substr(at + 2, end - at - 2);
      if (std::find(settings.secret_env.begin(), settings.secret_env.end(), var) == settings.secret_env.end()) {
        return invalidArgument(taskName(request) + ": header \"" + name + "\" refers to ${" + var +
                               "}, which is not listed in [" + settings.section + "] secret_env");
      }
      const auto found = secrets.find(var);
      if (found == secrets.end()) {
        return invalidArgument(taskName(request) + ": header \"" + name + "\" refers to ${" + var +
                               "}, which is not set in the scheduler's environment");
      }
      h.value += found->second;
      h.secret = true;
      i = end + 1;
    }
    if (!validValue(h.value)) {
      return invalidArgument(taskName(request) + ": header \"" + name + "\" has a line break in its value");
    }
    if (iequals(name, "Content-Type")) has_content_type = true;
    out.headers.push_back(std::move(h));
  }
  out.body = spec.body_json;
  if (!out.body.empty() && !has_content_type) out.headers.push_back({"Content-Type", "application/json", false});
  const std::string tenant = request.tenant.empty() ? std::string("default") : request.tenant;
  if (!validValue(tenant)) return invalidArgument(taskName(request) + ": the tenant has a line break");
  out.headers.push_back({"X-Leoflow-Tenant", tenant, false});
  out.success_codes = spec.success_status_codes;
  if (out.success_codes.empty()) out.success_codes = {200, 201, 202, 204};
  return out;
}

}  // namespace leoflow::plugins::inline_http
