#include "host/http_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <exception>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "host/run_view.h"
#include "host/status_command.h"
#include "host/store_session.h"
#include "host/web/web_assets.h"
#include "schedule/iso_time.h"
#include "text/quoted.h"

namespace leoflow::host {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::size_t kDefaultRunLimit = 100;
constexpr std::size_t kMaxRunLimit = 1000;

/// An answer that is not a success, thrown from inside a route and turned into `{"error": ...}`.
struct HttpError {
  int status;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

HttpResponse jsonResponse(int status, const ojson& doc) {
  HttpResponse r;
  r.status = status;
  r.body = doc.dump(2) + "\n";
  return r;
}

HttpResponse errorResponse(int status, const std::string& message) {
  ojson doc = ojson::object();
  doc["error"] = message;
  return jsonResponse(status, doc);
}

HttpResponse textResponse(int status, std::string text) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(text);
  return r;
}

bool isWrite(const std::string& method) {
  return method == "POST" || method == "PATCH" || method == "PUT" || method == "DELETE";
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::multimap<std::string, std::string> parseQuery(std::string_view query) {
  std::multimap<std::string, std::string> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto key = percentDecode(pair.substr(0, eq), true);
    auto value = percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) throw HttpError{400, "malformed percent-encoding in the query: " + text::quoted(pair)};
    out.emplace(std::move(*key), std::move(*value));
  }
  return out;
}

std::optional<std::string> queryValue(const std::multimap<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

/// A query parameter as an unsigned number in [min, max]; absent or empty: nullopt.
std::optional<std::uint64_t> queryNumber(const std::multimap<std::string, std::string>& query, const std::string& key,
                                         std::uint64_t min, std::uint64_t max) {
  auto text = queryValue(query, key);
  if (!text || text->empty()) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    throw HttpError{400, fmt::format("query parameter {} must be a whole number from {} to {}, got {}", key, min, max,
                                     text::quoted(*text))};
  }
  return value;
}

/// The request body as a JSON object; an empty body is an empty object. Fields other than
/// `allowed` are refused, so a misspelt field is not silently ignored.
nlohmann::json bodyObject(const HttpRequest& request, std::initializer_list<const char*> allowed) {
  nlohmann::json body = nlohmann::json::object();
  const bool blank = std::all_of(request.body.begin(), request.body.end(),
                                 [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
  if (!blank) {
    try {
      body = parseJsonText(request.body, "request body");
    } catch (const JsonFieldError& e) {
      throw HttpError{400, e.what()};
    }
  }
  if (!body.is_object()) throw HttpError{400, "request body: expected a JSON object, got " + body.dump()};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; })) {
      std::string accepted;
      for (const char* a : allowed) accepted += (accepted.empty() ? "" : ", ") + std::string(a);
      throw HttpError{400, "request body: unknown field " + text::quoted(it.key()) + " (accepted: " +
                               (accepted.empty() ? "none" : accepted) + ")"};
    }
  }
  return body;
}

/// Runs a JSON field reader, answering 400 with its message.
template <class F>
auto field(F&& read) {
  try {
    return std::forward<F>(read)();
  } catch (const JsonFieldError& e) {
    throw HttpError{400, std::string("request body: ") + e.what()};
  }
}

/// The run with its tasks, as `runs show --json` prints it, plus its `conf` (the object given at
/// trigger, or null), which the page shows.
ojson runJson(Store& store, const RunKey& key) {
  const RunRecord run = loadRun(store, key);
  ojson j = runToJson(run, true);
  ojson conf = nullptr;
  if (!run.conf_json.empty()) {
    conf = ojson::parse(run.conf_json, nullptr, false);
    if (conf.is_discarded()) conf = run.conf_json;  // not JSON after all: shown as the text it is
  }
  j["conf"] = std::move(conf);
  return j;
}

/// The page's headers: it loads nothing from elsewhere, runs no inline script and cannot be framed.
void pageHeaders(HttpResponse& r, std::string_view etag) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                         "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // Revalidated on every load (a new binary may serve a new page), answered 304 when unchanged.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", std::string(etag));
}

HttpError methodNotAllowed(const std::string& method, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return HttpError{405, "method " + method + " is not allowed here (allowed: " + list + ")", {{"Allow", list}}};
}

void requireMethod(const std::string& method, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (method == a || (method == "HEAD" && std::string(a) == "GET")) return;
  }
  throw methodNotAllowed(method, allowed);
}

std::string formatAge(double seconds) { return fmt::format("{:.1f}", seconds); }

}  // namespace

// --- helpers ---------------------------------------------------------------------------------------

std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at whatever the contents; only the lengths show.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// --- the routes ------------------------------------------------------------------------------------

HttpApi::HttpApi(HttpApiDeps deps) : deps_(std::move(deps)) {}

HttpResponse HttpApi::handle(const HttpRequest& request) const {
  try {
    const std::string& target = request.target;
    const std::size_t question = target.find('?');
    const std::string_view raw_path = std::string_view(target).substr(0, question);
    const std::multimap<std::string, std::string> query =
        question == std::string::npos ? std::multimap<std::string, std::string>{}
                                      : parseQuery(std::string_view(target).substr(question + 1));

    // Split before decoding, so an encoded '/' stays inside its segment.
    if (raw_path.empty() || raw_path.front() != '/') throw HttpError{400, "the request target must start with /"};
    std::vector<std::string> segments;
    std::string_view rest = raw_path.substr(1);
    while (true) {
      const std::size_t slash = rest.find('/');
      auto decoded = percentDecode(rest.substr(0, slash), false);
      if (!decoded) throw HttpError{400, "malformed percent-encoding in the path: " + text::quoted(raw_path)};
      segments.push_back(std::move(*decoded));
      if (slash == std::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
    if (segments.size() > 1 && segments.back().empty()) segments.pop_back();  // one trailing '/'

    if (segments.size() == 1 && segments[0] == "healthz") {
      requireMethod(request.method, {"GET"});
      return healthz();
    }
    if (segments.size() == 1 && segments[0] == "status") {
      requireMethod(request.method, {"GET"});
      return status();
    }
    if (segments.size() >= 2 && segments[0] == "api" && segments[1] == "v1") {
      // The token first: nothing about the API, not even which paths exist, without it.
      if (!deps_.token.empty()) {
        constexpr std::string_view kScheme = "bearer ";
        const std::string& auth = request.authorization;
        std::string scheme = auth.substr(0, std::min(auth.size(), kScheme.size()));
        std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
        const bool ok = scheme == kScheme && constantTimeEquals(std::string_view(auth).substr(kScheme.size()), deps_.token);
        if (!ok) {
          throw HttpError{401,
                          auth.empty() ? "this API needs a token: send \"Authorization: Bearer <token>\""
                                       : "wrong token",
                          {{"WWW-Authenticate", "Bearer realm=\"leoflow\""}}};
        }
      } else if (isWrite(request.method)) {
        throw HttpError{403,
                        "writes through the API need a token: set [http] token in the scheduler's config "
                        "(token = \"${LEOFLOW_API_TOKEN}\")"};
      }
      return api(request, std::vector<std::string>(segments.begin() + 2, segments.end()), query);
    }
    if ((segments.size() == 1 && segments[0].empty()) || (segments.size() == 2 && segments[0] == "web")) {
      requireMethod(request.method, {"GET"});
      return page(request, std::string(raw_path));
    }
    throw HttpError{404, "not found: " + std::string(raw_path)};
  } catch (const HttpError& e) {
    HttpResponse r = errorResponse(e.status, e.message);
    r.headers = e.headers;
    return r;
  } catch (const CommandError& e) {
    return errorResponse(e.httpStatus(), e.what());
  } catch (const std::exception& e) {
    return errorResponse(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return errorResponse(500, "internal error");
  }
}

HttpResponse HttpApi::healthz() const {
  // BEHAVIOUR §2.5: a follower is healthy; a leader in its start-up grace and while it ticks.
  const engine::Health h = deps_.health ? deps_.health() : engine::Health{};
  if (h.healthy) return textResponse(200, "ok\n");
  std::string reason = "unhealthy: this replica leads but ";
  if (h.last_tick) {
    const double age = deps_.clock != nullptr
                           ? std::chrono::duration<double>(deps_.clock->now() - *h.last_tick).count()
                           : 0.0;
    reason += "its last tick was " + formatAge(age) + " s ago (" + schedule::formatIsoSeconds(*h.last_tick) + ")";
  } else {
    reason += "has not ticked since it began to lead";
  }
  return textResponse(503, reason + "\n");
}

HttpResponse HttpApi::status() const {
  ojson doc = statusJson(*deps_.store, *deps_.clock,
                         deps_.listen.empty() ? std::nullopt : std::optional<std::string>(deps_.listen));
  doc["role"] = deps_.leading && deps_.leading() ? "leader" : "follower";
  // Whether /api/v1 wants a token: the page asks for one, or shows itself read-only (no token:
  // writes are refused). Says nothing about the token itself.
  doc["token_required"] = !deps_.token.empty();
  return jsonResponse(200, doc);
}

HttpResponse HttpApi::page(const HttpRequest& request, const std::string& path) const {
  for (const web::WebAsset& asset : web::assets()) {
    if (asset.path != path) continue;
    HttpResponse r;
    if (!request.if_none_match.empty() && request.if_none_match == asset.etag) {
      r.status = 304;
      r.content_type.clear();
    } else {
      r.content_type = std::string(asset.content_type);
      r.body = std::string(asset.body);
    }
    pageHeaders(r, asset.etag);
    return r;
  }
  throw HttpError{404, "not found: " + path};
}

HttpResponse HttpApi::api(const HttpRequest& request, const std::vector<std::string>& s,
                          const std::multimap<std::string, std::string>& query) const {
  Store& store = *deps_.store;
  const std::string& method = request.method;
  const auto now = [&] { return deps_.clock->now(); };
  const auto notFound = [&] { return HttpError{404, "not found: " + request.target.substr(0, request.target.find('?'))}; };
  for (const std::string& segment : s) {
    if (segment.empty()) throw notFound();
  }
  if (s.empty() || s[0] != "dags") throw notFound();

  // /dags
  if (s.size() == 1) {
    requireMethod(method, {"GET"});
    return jsonResponse(200, listDagsJson(store, now(), queryValue(query, "tenant")));
  }
  const std::string& dag = s[1];

  // /dags/{dag}
  if (s.size() == 2) {
    if (method == "PATCH") {
      const nlohmann::json body = bodyObject(request, {"paused"});
      const auto paused = field([&] { return optionalBool(member(body, "paused"), "paused"); });
      if (!paused) throw HttpError{400, "request body: \"paused\" (true or false) is required"};
      setPaused(store, dag, *paused);
      return jsonResponse(200, showDagJson(store, dag, now()));
    }
    requireMethod(method, {"GET", "PATCH"});
    return jsonResponse(200, showDagJson(store, dag, now()));
  }
  if (s[2] != "runs") throw notFound();

  // /dags/{dag}/runs
  if (s.size() == 3) {
    if (method == "POST") {
      const nlohmann::json body = bodyObject(request, {"run_id", "conf", "logical_date"});
      TriggerRequest trigger;
      trigger.dag_id = dag;
      trigger.run_id = field([&] { return optionalString(member(body, "run_id"), "run_id"); }).value_or("");
      const nlohmann::json& conf = member(body, "conf");
      if (!conf.is_null()) {
        if (!conf.is_object()) throw HttpError{400, "request body: conf: expected a JSON object, got " + conf.dump()};
        trigger.conf_json = conf.dump();
      }
      trigger.logical_date = field([&] { return optionalTime(member(body, "logical_date"), "logical_date"); });
      const RunKey key = triggerRun(store, now(), trigger);
      HttpResponse r = jsonResponse(201, runJson(store, key));
      r.headers.emplace_back("Location", "/api/v1/dags/" + percentEncode(key.dag_id) + "/runs/" +
                                             percentEncode(key.run_id));
      return r;
    }
    requireMethod(method, {"GET", "POST"});
    RunQuery q;
    q.dag_id = dag;
    q.state = queryValue(query, "state");
    if (q.state && q.state->empty()) q.state.reset();
    q.tenant = queryValue(query, "tenant");
    if (q.tenant && q.tenant->empty()) q.tenant.reset();
    q.limit = queryNumber(query, "limit", 1, kMaxRunLimit).value_or(kDefaultRunLimit);
    const std::optional<std::string> with_tasks = queryValue(query, "tasks");
    if (with_tasks && *with_tasks != "true" && *with_tasks != "false") {
      throw HttpError{400, "query parameter tasks must be true or false, got " + text::quoted(*with_tasks)};
    }
    const std::vector<RunRecord> listed = queryRuns(store, q);
    ojson runs = ojson::array();
    if (with_tasks == "true") {
      // The page's grid: every listed run with its task instances, loaded in one batch.
      std::vector<RunKey> keys;
      for (const RunRecord& run : listed) keys.push_back(run.key);
      std::vector<Result<RunRecord>> loaded = store.loadRuns(keys);
      for (std::size_t i = 0; i < listed.size(); ++i) {
        if (i < loaded.size() && loaded[i]) {
          runs.push_back(runToJson(*loaded[i], true));
        } else if (i < loaded.size() && loaded[i].status().code() != StatusCode::kNotFound) {
          failWith(loaded[i].status(), "loading run " + listed[i].key.run_id);
        }  // else deleted since it was listed: left out
      }
    } else {
      for (const RunRecord& run : listed) runs.push_back(runToJson(run, false));
    }
    return jsonResponse(200, runs);
  }
  const RunKey key{dag, s[3]};

  // /dags/{dag}/runs/{run}
  if (s.size() == 4) {
    requireMethod(method, {"GET"});
    return jsonResponse(200, runJson(store, resolveRun(store, key.run_id, key.dag_id)));
  }

  // /dags/{dag}/runs/{run}/cancel, /clear
  if (s.size() == 5 && s[4] == "cancel") {
    requireMethod(method, {"POST"});
    bodyObject(request, {});
    const RunKey run = resolveRun(store, key.run_id, key.dag_id);
    cancelRun(store, now(), run, kApiActor);
    return jsonResponse(200, runJson(store, run));
  }
  if (s.size() == 5 && s[4] == "clear") {
    requireMethod(method, {"POST"});
    const nlohmann::json body = bodyObject(request, {"task_ids", "downstream", "failed_only"});
    ClearOptions options;
    options.actor = kApiActor;
    const nlohmann::json& ids = member(body, "task_ids");
    if (!ids.is_null()) {
      if (!ids.is_array() || !std::all_of(ids.begin(), ids.end(), [](const nlohmann::json& v) { return v.is_string(); })) {
        throw HttpError{400, "request body: task_ids: expected an array of strings, got " + ids.dump()};
      }
      for (const nlohmann::json& id : ids) options.task_ids.push_back(id.get<std::string>());
    }
    options.downstream = field([&] { return optionalBool(member(body, "downstream"), "downstream"); }).value_or(false);
    options.failed_only =
        field([&] { return optionalBool(member(body, "failed_only"), "failed_only"); }).value_or(false);
    const RunKey run = resolveRun(store, key.run_id, key.dag_id);
    clearRun(store, now(), run, options);
    return jsonResponse(200, runJson(store, run));
  }

  // /dags/{dag}/runs/{run}/tasks/{task}/mark, /logs
  if (s.size() == 7 && s[4] == "tasks" && s[6] == "mark") {
    requireMethod(method, {"POST"});
    const nlohmann::json body = bodyObject(request, {"state"});
    const auto state = field([&] { return optionalString(member(body, "state"), "state"); });
    if (!state) throw HttpError{400, "request body: \"state\" (success, failed or skipped) is required"};
    const RunKey run = resolveRun(store, key.run_id, key.dag_id);
    markTask(store, now(), run, s[5], *state, kApiActor);
    return jsonResponse(200, runJson(store, run));
  }
  if (s.size() == 7 && s[4] == "tasks" && s[6] == "logs") {
    requireMethod(method, {"GET"});
    TaskLogRequest log;
    log.task_id = s[5];
    if (auto try_number = queryNumber(query, "try", 1, std::numeric_limits<std::int32_t>::max())) {
      log.try_number = static_cast<std::int32_t>(*try_number);
    }
    log.offset = queryNumber(query, "offset", 0, std::numeric_limits<std::uint64_t>::max()).value_or(0);
    log.run = resolveRun(store, key.run_id, key.dag_id);
    if (!deps_.read_log) throw HttpError{503, "this replica cannot read logs"};
    const TaskLog got = readTaskLog(store, deps_.read_log, log);
    HttpResponse r = textResponse(200, got.chunk.text);
    r.headers.emplace_back("X-Log-Complete", got.chunk.complete ? "true" : "false");
    r.headers.emplace_back("X-Log-Next-Offset", std::to_string(got.chunk.next_offset));
    r.headers.emplace_back("X-Log-Try", std::to_string(got.attempt.try_number));
    return r;
  }
  throw notFound();
}

}  // namespace leoflow::host
