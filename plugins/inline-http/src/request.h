// What an http_api attempt sends, worked out from its DispatchRequest before anything is claimed:
// the timeout, the headers with ${NAME} secrets resolved, the body and the success codes.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <leoflow/dispatcher.h>
#include <leoflow/status.h>

#include "settings.h"

namespace leoflow::plugins::inline_http {

struct Header {
  std::string name;
  std::string value;
  bool secret = false;  ///< its value came from secret_env: logged as ***
};

struct PreparedRequest {
  std::string method;
  std::string url;
  std::vector<Header> headers;  ///< in the order sent (the task's, then Content-Type, tenant)
  std::string body;             ///< empty = none
  std::vector<int> success_codes;
  int timeout_s = 60;
};

/// The timeout of `task`: the smaller non-zero of its request's timeout_seconds and its
/// execution_timeout_seconds; 60 s (or max_timeout_s when smaller) when neither is set.
int effectiveTimeout(const TaskSpec& task, int max_timeout_s);

/// kInvalidArgument when the task cannot run inline: not an http_api task, no http_request, a
/// timeout above max_timeout_s, a header naming a ${NAME} not in secret_env (or unset), a method or
/// header that cannot be sent.
Result<PreparedRequest> prepareRequest(const DispatchRequest& request, const Settings& settings,
                                       const std::map<std::string, std::string>& secrets);

/// Authorization, Cookie, Proxy-Authorization and Set-Cookie (any case), and secrets, as "***".
std::string loggedValue(const Header& header);
bool sensitiveHeader(const std::string& name);

bool iequals(const std::string& a, const std::string& b);

}  // namespace leoflow::plugins::inline_http
