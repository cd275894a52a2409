// What every subcommand shares: where its config comes from and the exit code it leaves behind.
#pragma once

#include <iosfwd>
#include <string>

namespace leoflow::host {

struct CommandContext {
  std::string config_path;  ///< --config; empty = $LEOFLOW_CONFIG, then ./leoflow.toml
  std::string log_level;    ///< `scheduler --log-level`; empty = [scheduler] log_level
  int exit_code = 0;
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

}  // namespace leoflow::host
