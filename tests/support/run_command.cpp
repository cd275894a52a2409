#include "support/run_command.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <sys/wait.h>
#include <unistd.h>

namespace leoflow::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tempPath(const char* tag) {
  char buf[] = "/tmp/leoflow-test-XXXXXX";
  const int fd = mkstemp(buf);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  close(fd);
  return std::string(buf) + tag;
}

}  // namespace

CommandOutput runCommand(const std::string& command, const std::string& stdin_text) {
  const std::string base = tempPath("");
  const std::string in_path = base + ".in", out_path = base + ".out", err_path = base + ".err";
  {
    std::ofstream in(in_path);
    in << stdin_text;
  }
  const std::string full = "(" + command + ") <" + in_path + " >" + out_path + " 2>" + err_path;
  const int status = std::system(full.c_str());
  CommandOutput result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  for (const auto& p : {base, in_path, out_path, err_path}) std::remove(p.c_str());
  return result;
}

std::string leoflowBinary() {
  const char* bin = std::getenv("LEOFLOW_BIN");
  if (bin == nullptr || *bin == '\0') throw std::runtime_error("LEOFLOW_BIN is not set");
  return bin;
}

}  // namespace leoflow::testing
