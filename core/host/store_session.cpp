#include "host/store_session.h"

#include "host/exit_codes.h"
#include "host/logging.h"
#include "host/startup_errors.h"

namespace leoflow::host {

StoreSession::StoreSession(const CommandContext& ctx, Backends::Scope scope) {
  withStartupExitCodes([&] {
    config_ = loadHostConfig(findConfigPath(ctx.config_path));
    // One-shot commands talk to people on stderr: keep the plugins' logs to warnings and worse.
    setLogLevel("warn");
    loader_ = std::make_unique<PluginLoader>(config_.plugin_search_path);
    backends_ = std::make_unique<Backends>(config_, *loader_, scope);
  });
  Status ping = backends_->store().ping();
  if (!ping.isOk()) failWith(ping, "store " + config_.store.plugin);
}

StoreSession::~StoreSession() = default;

void failWith(const Status& status, const std::string& what) {
  const std::string message = what + ": " + status.message();
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: throw CommandError(ErrorKind::kUnreachable, message);
    case StatusCode::kNotFound: throw notFound(message);
    case StatusCode::kConflict:
    case StatusCode::kAlreadyExists: throw conflict(message);
    case StatusCode::kInvalidArgument: throw badInput(message);
    default: throw CommandError(ErrorKind::kFailed, message);
  }
}

}  // namespace leoflow::host
