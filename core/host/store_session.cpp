#include "host/store_session.h"

#include "host/exit_codes.h"
#include "host/logging.h"
#include "host/startup_errors.h"

namespace leoflow::host {

StoreSession::StoreSession(const CommandContext& ctx) {
  withStartupExitCodes([&] {
    config_ = loadHostConfig(findConfigPath(ctx.config_path));
    // One-shot commands talk to people on stderr: keep the plugins' logs to warnings and worse.
    setLogLevel("warn");
    loader_ = std::make_unique<PluginLoader>(config_.plugin_search_path);
    backends_ = std::make_unique<Backends>(config_, *loader_, Backends::Scope::kStoreOnly);
  });
  Status ping = backends_->store().ping();
  if (!ping.isOk()) failWith(ping, "store " + config_.store.plugin);
}

StoreSession::~StoreSession() = default;

void failWith(const Status& status, const std::string& what) {
  int code = kExitFailed;
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: code = kExitUnreachable; break;
    case StatusCode::kNotFound:
    case StatusCode::kInvalidArgument:
    case StatusCode::kAlreadyExists: code = kExitBadInput; break;
    default: break;
  }
  throw CommandError(code, what + ": " + status.message());
}

}  // namespace leoflow::host
