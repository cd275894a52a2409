// Starting a supervisor (process.h: spawnSupervised) against real processes: what the child gets
// of the scheduler — its own session, default signals, an empty mask, no descriptor but its three
// — and the reason when it cannot be started, with no child left behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "dispatcher_test_harness.h"
#include "process.h"
#include "task_command.h"

namespace leoflow::testing::dispatcher_local {
namespace {

namespace dl = leoflow::plugins::dispatcher_local;
namespace fs = std::filesystem;

class SpawnTest : public ::testing::Test {
 protected:
  dl::SpawnRequest bashTask(const std::string& entrypoint) {
    dl::SpawnRequest r;
    r.argv = {"bash", "-c", entrypoint};
    for (const auto& [name, value] : dl::snapshotEnvironment()) r.env.push_back(name + "=" + value);
    r.cwd = dir_.path();
    r.exit_path = dir_.path() / "exit";
    return r;
  }

  // Runs `entrypoint` to its end under a supervisor; its output, as the log holds it.
  std::string runToEnd(dl::SpawnRequest r) {
    const fs::path log = dir_.path() / "task.log";
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(log_fd, 0);
    r.log_fd = log_fd;
    auto pid = dl::spawnSupervised(r);
    ::close(log_fd);
    EXPECT_TRUE(pid.isOk()) << pid.status().toString();
    if (!pid.isOk()) return {};
    int status = 0;
    EXPECT_EQ(::waitpid(*pid, &status, 0), *pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    return readFile(log);
  }

  TempDir dir_;
};

// The bits of /proc/<pid>/status masks for signal `sig`.
unsigned long long bitOf(int sig) { return 1ULL << (sig - 1); }

unsigned long long maskIn(const std::string& log, const std::string& key) {
  const std::size_t at = log.find(key + " ");
  if (at == std::string::npos) return ~0ULL;
  return std::stoull(log.substr(at + key.size() + 1, 16), nullptr, 16);
}

TEST_F(SpawnTest, TheChildHasItsOwnSessionDefaultSignalsAnEmptyMaskAndOnlyItsThreeDescriptors) {
  // What a scheduler may have when it starts a task: an ignored signal, a blocked one, a handled
  // one, and a descriptor without close-on-exec (a library's, say).
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigset_t old_mask;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, &old_mask), 0);
  const int leaky = ::dup2(STDERR_FILENO, 77);
  ASSERT_EQ(leaky, 77);

  const std::string log = runToEnd(bashTask(
      "while read -r k v; do case $k in SigIgn:|SigBlk:) echo \"$k $v\";; esac; done < /proc/$$/status; "
      "read -r -a stat < /proc/$$/stat; echo \"session ${stat[5]} pid $$\"; "
      "for fd in 0 1 2 77; do test -e /proc/$$/fd/$fd && echo \"open $fd\"; done; "
      "echo \"stdin $(readlink /proc/$$/fd/0)\"; echo \"cwd $(pwd -P)\""));

  ::close(leaky);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);

  EXPECT_EQ(maskIn(log, "SigIgn:") & bitOf(SIGPIPE), 0u) << "an ignored SIGPIPE leaked into the task\n" << log;
  EXPECT_EQ(maskIn(log, "SigBlk:") & bitOf(SIGUSR2), 0u) << "a blocked SIGUSR2 leaked into the task\n" << log;
  const std::size_t at = log.find("session ");
  ASSERT_NE(at, std::string::npos) << log;
  std::istringstream session(log.substr(at));
  std::string word;
  long sid = 0;
  long pid = -1;
  session >> word >> sid >> word >> pid;
  EXPECT_EQ(sid, pid) << "the supervisor leads a session of its own\n" << log;
  EXPECT_NE(log.find("open 0\nopen 1\nopen 2\n"), std::string::npos) << log;
  EXPECT_EQ(log.find("open 77"), std::string::npos) << "a descriptor of the scheduler's leaked in\n" << log;
  EXPECT_NE(log.find("stdin /dev/null"), std::string::npos) << log;
  EXPECT_NE(log.find("cwd " + fs::canonical(dir_.path()).string()), std::string::npos) << log;
}

TEST_F(SpawnTest, AStepThatFailsBeforeTheProgramRunsIsTheReasonAndLeavesNoChild) {
  const std::set<pid_t> before = ourChildren();
  dl::SpawnRequest missing_dir = bashTask("true");
  missing_dir.cwd = dir_.path() / "no-such-dir";
  auto refused = dl::spawnSupervised(missing_dir);
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.status().message().find("No such file or directory (starting "), std::string::npos)
      << refused.status().toString();

  // A `bash` on the task's PATH that is no program: execve itself refuses it.
  const fs::path bin = dir_.path() / "bin";
  fs::create_directories(bin);
  std::ofstream(bin / "bash") << "\x7f" "ELF not really\n";
  fs::permissions(bin / "bash", fs::perms::owner_all);
  dl::SpawnRequest not_a_program = bashTask("true");
  for (std::string& e : not_a_program.env) {
    if (e.rfind("PATH=", 0) == 0) e = "PATH=" + bin.string();
  }
  auto refused_exec = dl::spawnSupervised(not_a_program);
  ASSERT_FALSE(refused_exec.isOk());
  EXPECT_NE(refused_exec.status().message().find("Exec format error (starting " + (bin / "bash").string() + ")"),
            std::string::npos)
      << refused_exec.status().toString();

  // Both children were reaped before the answer: no new one is left, not even a zombie.
  std::set<pid_t> left;
  for (pid_t pid : ourChildren()) {
    if (before.count(pid) == 0) left.insert(pid);
  }
  EXPECT_TRUE(left.empty()) << left.size() << " child(ren) left behind";
}

}  // namespace
}  // namespace leoflow::testing::dispatcher_local
