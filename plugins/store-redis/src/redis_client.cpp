#include "redis_client.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "id_codec.h"

namespace leoflow::plugins::store_redis {
namespace {

// Idle connections kept for the next calls. Enough for every thread that calls at once in a busy
// scheduler (16 dispatch workers, up to 64 report threads of dispatcher-local, the engine): with
// fewer, a wide fan-out closed and reopened a connection every few tasks, a connect, a handshake and
// the server's accept each time. Redis keeps an idle client for ~20 KB.
constexpr std::size_t kMaxIdle = 128;
constexpr std::chrono::milliseconds kFirstBackoff{25};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

std::string_view firstWord(std::string_view text) { return text.substr(0, text.find(' ')); }

/// The server lost its script cache (a restart): the call did not run.
bool isNoScript(const redisReply* reply) {
  return reply->type == REDIS_REPLY_ERROR && firstWord(replyText(reply)) == "NOSCRIPT";
}

std::string_view afterFirstWord(std::string_view text) {
  const auto sp = text.find(' ');
  return sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
}

}  // namespace

Status statusFromError(std::string_view text) {
  const std::string_view word = firstWord(text);
  const std::string rest(afterFirstWord(text));
  if (word == "FENCED") return fenced(rest);
  if (word == "NOTFOUND") return notFound(rest);
  if (word == "CONFLICT") return conflict(rest);
  if (word == "EXISTS") return alreadyExists(rest);
  if (word == "INVALID") return invalidArgument(rest);
  if (isTransientError(text)) return unavailable("redis: " + std::string(text));
  return internalError("redis: " + std::string(text));
}

RedisClient::RedisClient(Settings settings, std::shared_ptr<spdlog::logger> logger)
    : settings_(std::move(settings)),
      channel_(changeChannel(settings_.key_prefix, settings_.endpoint.db)),
      logger_(std::move(logger)) {}

void RedisClient::start() {
  // ARCHITECTURE §8.6: a server that cannot be reached, does not answer in time or is not ready
  // yet (LOADING, BUSY, ...) is UnavailableError — the scheduler retries, a one-shot command exits
  // 3; a server that answers and refuses (a wrong password, a database out of range, a script it
  // rejects) is a configuration it will never accept: std::runtime_error, exit 2.
  const std::string where =
      "redis at " + settings_.endpoint.redacted + " (key \"url\" in [" + settings_.section + "])";
  std::string error;
  bool refused = false;
  auto conn = Connection::open(settings_, error, &refused);
  if (!conn) {
    if (refused) throw std::runtime_error(where + " refused the session: " + error);
    throw UnavailableError("cannot connect to " + where + ": " + error);
  }
  for (const lua::ScriptSource* script : lua::kAllScripts) {
    ReplyPtr reply = conn->call({"SCRIPT", "LOAD", std::string(script->body)});
    if (!reply) {
      // Connection's words for a socket operation that hit command_timeout_ms (a frozen server).
      const bool timed_out = conn->error().rfind("timed out", 0) == 0;
      throw UnavailableError(where +
                             (timed_out ? " did not answer within " + std::to_string(settings_.command_timeout.count()) +
                                              " ms (command_timeout_ms)"
                                        : std::string(" went away")) +
                             " while loading script " + std::string(script->name) + ": " + conn->error());
    }
    if (reply->type == REDIS_REPLY_ERROR && isTransientError(replyText(reply.get()))) {
      throw UnavailableError(where + " cannot serve yet (loading script " + std::string(script->name) +
                             "): " + std::string(replyText(reply.get())));
    }
    if (reply->type != REDIS_REPLY_STRING) {
      throw std::runtime_error(where + " refused script " + std::string(script->name) + ": " +
                               std::string(replyText(reply.get())));
    }
    shas_.emplace(script->name, std::string(replyText(reply.get())));
  }
  std::lock_guard lock(mu_);
  idle_.push_back(Pooled{std::move(conn), generation_});
}

Result<RedisClient::Pooled> RedisClient::acquire() {
  const auto now = std::chrono::steady_clock::now();
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      Pooled p = std::move(idle_.back());
      idle_.pop_back();
      // A restarted server closed every connection: notice before sending anything on it.
      if (p.generation == generation_ && !p.conn->looksDead()) return p;
    }
    if (now < retry_after_) {
      return unavailable("redis at " + settings_.endpoint.redacted + " is unreachable: " + last_error_);
    }
    generation = generation_;
  }
  std::string error;
  auto conn = Connection::open(settings_, error);
  std::lock_guard lock(mu_);
  if (!conn) {
    ++connect_failures_;
    const auto backoff = std::min(kMaxBackoff, kFirstBackoff * (1 << std::min(connect_failures_ - 1, 6)));
    retry_after_ = std::chrono::steady_clock::now() + backoff;
    last_error_ = error;
    if (!down_) {
      down_ = true;
      logger_->warn("redis unavailable url={} error=\"{}\"", settings_.endpoint.redacted, error);
    } else {
      logger_->debug("redis still unavailable url={} error=\"{}\" retry_in_ms={}", settings_.endpoint.redacted,
                     error, backoff.count());
    }
    return unavailable("cannot connect to redis at " + settings_.endpoint.redacted + ": " + error);
  }
  connect_failures_ = 0;
  retry_after_ = {};
  if (down_) {
    down_ = false;
    logger_->info("redis reachable again url={}", settings_.endpoint.redacted);
  }
  return Pooled{std::move(conn), generation};
}

void RedisClient::release(Pooled pooled) {
  std::lock_guard lock(mu_);
  if (pooled.generation == generation_ && idle_.size() < kMaxIdle) idle_.push_back(std::move(pooled));
}

void RedisClient::connectionFailed(const Pooled& pooled) {
  std::lock_guard lock(mu_);
  if (pooled.generation == generation_) {
    ++generation_;
    idle_.clear();
  }
  last_error_ = pooled.conn->error();
  if (!down_) {
    down_ = true;
    logger_->warn("redis unavailable url={} error=\"{}\"", settings_.endpoint.redacted, last_error_);
  }
}

Result<ReplyPtr> RedisClient::roundTrip(const std::vector<std::string>& args) {
  auto pooled = acquire();
  if (!pooled) return pooled.status();
  ReplyPtr reply = pooled->conn->call(args);
  if (!reply) {
    connectionFailed(*pooled);
    return unavailable("redis at " + settings_.endpoint.redacted + ": " + pooled->conn->error());
  }
  release(std::move(*pooled));
  return reply;
}

Result<ReplyPtr> RedisClient::command(const std::vector<std::string>& args) {
  auto reply = roundTrip(args);
  if (!reply) return reply;
  if ((*reply)->type == REDIS_REPLY_ERROR) return statusFromError(replyText(reply->get()));
  return reply;
}

std::vector<std::string> RedisClient::scriptCall(const lua::ScriptSource& script,
                                                 const std::vector<std::string>& args) const {
  std::vector<std::string> argv;
  argv.reserve(args.size() + 5);
  const auto sha = shas_.find(script.name);
  if (sha != shas_.end()) {
    argv = {"EVALSHA", sha->second, "0", settings_.key_prefix, channel_};
  } else {
    argv = {"EVAL", std::string(script.body), "0", settings_.key_prefix, channel_};
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<ReplyPtr> RedisClient::scriptAnswer(const lua::ScriptSource& script, ReplyPtr reply) const {
  if (reply->type == REDIS_REPLY_ERROR) {
    Status st = statusFromError(replyText(reply.get()));
    if (st.code() == StatusCode::kInternal) {
      logger_->error("script failed script={} error=\"{}\"", script.name, st.message());
    }
    return st;
  }
  return reply;
}

Result<ReplyPtr> RedisClient::eval(const lua::ScriptSource& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv = scriptCall(script, args);
  auto reply = roundTrip(argv);
  if (!reply) return reply;
  if (isNoScript(reply->get())) {
    // The server restarted and forgot its script cache: EVAL runs the script and caches it again.
    logger_->debug("script not cached, sending it again script={}", script.name);
    argv[0] = "EVAL";
    argv[1] = std::string(script.body);
    reply = roundTrip(argv);
    if (!reply) return reply;
  }
  return scriptAnswer(script, std::move(*reply));
}

std::vector<Result<ReplyPtr>> RedisClient::evalMany(const lua::ScriptSource& script,
                                                     const std::vector<std::vector<std::string>>& calls) {
  std::vector<Result<ReplyPtr>> out;
  out.reserve(calls.size());
  if (calls.empty()) return out;
  auto pooled = acquire();
  if (!pooled) {
    for (std::size_t i = 0; i < calls.size(); ++i) out.emplace_back(pooled.status());
    return out;
  }
  std::vector<std::vector<std::string>> batch;
  batch.reserve(calls.size());
  for (const auto& args : calls) batch.push_back(scriptCall(script, args));
  const bool sent = pooled->conn->sendAll(batch);
  for (std::size_t i = 0; sent && i < calls.size(); ++i) {
    ReplyPtr reply = pooled->conn->receive();
    if (!reply) break;
    out.emplace_back(std::move(reply));
  }
  if (out.size() < calls.size()) {
    connectionFailed(*pooled);
    const Status lost = unavailable("redis at " + settings_.endpoint.redacted + ": " + pooled->conn->error());
    while (out.size() < calls.size()) out.emplace_back(lost);
  } else {
    release(std::move(*pooled));
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (!out[i]) continue;
    if (isNoScript(out[i]->get())) {
      logger_->debug("script not cached, sending it again script={}", script.name);
      out[i] = eval(script, calls[i]);  // EVAL once caches it; the calls after go by EVALSHA
    } else {
      out[i] = scriptAnswer(script, std::move(*out[i]));
    }
  }
  return out;
}

Result<ReplyPtr> RedisClient::transaction(std::vector<std::vector<std::string>> commands) {
  const std::size_t count = commands.size();
  std::vector<std::vector<std::string>> batch;
  batch.reserve(count + 2);
  batch.push_back({"MULTI"});
  std::move(commands.begin(), commands.end(), std::back_inserter(batch));
  batch.push_back({"EXEC"});
  auto pooled = acquire();
  if (!pooled) return pooled.status();
  auto broken = [&] {
    connectionFailed(*pooled);
    return unavailable("redis at " + settings_.endpoint.redacted + ": " + pooled->conn->error());
  };
  if (!pooled->conn->sendAll(batch)) return broken();
  // Every reply is read, whatever it says, so the connection goes back to the pool in step: MULTI's
  // +OK, one +QUEUED (or a queueing error) a command, then EXEC's.
  ReplyPtr exec;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    ReplyPtr reply = pooled->conn->receive();
    if (!reply) return broken();
    if (i + 1 == batch.size()) exec = std::move(reply);
  }
  release(std::move(*pooled));
  if (exec->type == REDIS_REPLY_ERROR) return statusFromError(replyText(exec.get()));
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != count) {
    return unavailable("redis at " + settings_.endpoint.redacted + ": the transaction did not run");
  }
  return exec;
}

}  // namespace leoflow::plugins::store_redis
