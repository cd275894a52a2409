// Runs a command line in a shell for tests that drive the real `leoflow` binary.
#pragma once

#include <string>

namespace leoflow::testing {

struct CommandOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `command` with `/bin/sh -c`, feeding `stdin_text`; captures stdout and stderr.
CommandOutput runCommand(const std::string& command, const std::string& stdin_text = "");

/// The path of the built `leoflow` binary ($LEOFLOW_BIN, set by meson for tests).
std::string leoflowBinary();

}  // namespace leoflow::testing
