// The pieces under the dispatcher: file names from ids, the state-file codec and its lock, the
// python entrypoint forms, and what /proc tells about a process.
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "dispatcher_test_harness.h"
#include "names.h"
#include "process.h"
#include "state_file.h"
#include "task_command.h"
#include "warm_shells.h"

namespace leoflow::testing::dispatcher_local {
namespace {

namespace dl = leoflow::plugins::dispatcher_local;
namespace fs = std::filesystem;

TEST(DispatcherLocalNames, ComponentsAreSafeAndDistinct) {
  EXPECT_EQ(dl::encodeComponent("etl"), "etl");
  EXPECT_EQ(dl::encodeComponent("manual__2026-01-01T00:00:00.123456Z"), "manual__2026-01-01T00:00:00.123456Z");
  EXPECT_EQ(dl::encodeComponent("a/b"), "a%2Fb");
  EXPECT_EQ(dl::encodeComponent("."), "%2E");
  EXPECT_EQ(dl::encodeComponent(".."), "%2E.");
  EXPECT_EQ(dl::encodeComponent(""), "%");
  EXPECT_EQ(dl::encodeComponent("100%"), "100%25");
  EXPECT_EQ(dl::encodeComponent("a b~c"), "a%20b%7Ec");
  const std::string long_a(500, 'a');
  const std::string long_b = std::string(499, 'a') + "b";
  const std::string ea = dl::encodeComponent(long_a);
  const std::string eb = dl::encodeComponent(long_b);
  EXPECT_LE(ea.size(), dl::kMaxComponent);
  EXPECT_NE(ea, eb) << "ids that differ only past the cut still get distinct names";
  EXPECT_NE(ea.find("%%"), std::string::npos);
  // The documented cut, as every plugin that keeps attempt logs writes it (dispatcher-k8s pins the same).
  EXPECT_EQ(dl::encodeComponent(std::string(200, 'a')), std::string(160, 'a') + "%%96245ce14f7a5b0d");
}

TEST(DispatcherLocalNames, StateBaseNamesSeparateTheParts) {
  std::set<std::string> names = {
      dl::stateBaseName(attemptOf("a~b", "c", "d"), 1),
      dl::stateBaseName(attemptOf("a", "b~c", "d"), 1),
      dl::stateBaseName(attemptOf("a", "b", "c~d"), 1),
      dl::stateBaseName(attemptOf("a", "b", "c", 2), 1),
      dl::stateBaseName(attemptOf("a", "b", "c", 1), 1),
      dl::stateBaseName(attemptOf("a", "b", "c", 1), 2),
      dl::stateBaseName(attemptOf("a", "b~1", "c", 1), 0),
  };
  EXPECT_EQ(names.size(), 7u);
  const std::string huge = dl::stateBaseName(attemptOf(std::string(300, 'd'), std::string(300, 'r'), "t"), 7);
  EXPECT_LE(huge.size() + 5, 255u) << "fits a file name with its extension";
  EXPECT_EQ(dl::attemptLogPath("/logs", attemptOf("d", "r/1", "t", 3), 42), fs::path("/logs/d/r%2F1/42/t/3.log"));
  EXPECT_EQ(dl::stateBaseName(attemptOf("d", "r/1", "t", 3), 42), "d~r%2F1~42~t~3");
}

TEST(DispatcherLocalNames, IsoUtcHasWholeSeconds) {
  EXPECT_EQ(dl::isoUtc(Timestamp{std::chrono::microseconds(1767323045123456)}), "2026-01-02T03:04:05Z");
}

TEST(DispatcherLocalStateFile, RecordRoundTrips) {
  dl::StateRecord r;
  r.attempt = attemptOf("dag", "run \"quoted\"", "task", 3);
  r.task_type = "python";
  r.pid = 4242;
  r.pid_start_ticks = 987654321;
  r.boot_id = "boot";
  r.started_at_us = 1767323045123456;
  r.execution_timeout_seconds = 60;
  r.log_path = "/logs/x.log";
  r.owner = "host:1:abc";
  r.kill_reason = dl::KillReason::kTimeout;
  r.run_uid = 77;
  r.tenant = "team-a";
  r.outcome = TaskOutcome{false, 143, "timed out after 60 s"};
  const auto back = dl::decodeStateRecord(dl::encodeStateRecord(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->attempt, r.attempt);
  EXPECT_EQ(back->task_type, "python");
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->pid_start_ticks, 987654321u);
  EXPECT_EQ(back->boot_id, "boot");
  EXPECT_EQ(back->started_at_us, r.started_at_us);
  EXPECT_EQ(back->execution_timeout_seconds, 60);
  EXPECT_EQ(back->log_path, r.log_path);
  EXPECT_EQ(back->owner, r.owner);
  EXPECT_EQ(back->kill_reason, dl::KillReason::kTimeout);
  EXPECT_EQ(back->run_uid, 77);
  EXPECT_EQ(back->tenant, "team-a");
  r.kill_reason = dl::KillReason::kStopped;
  EXPECT_EQ(dl::decodeStateRecord(dl::encodeStateRecord(r))->kill_reason, dl::KillReason::kStopped);
  ASSERT_TRUE(back->outcome.has_value());
  EXPECT_EQ(back->outcome->exit_code, 143);
  EXPECT_EQ(back->outcome->message, "timed out after 60 s");

  EXPECT_FALSE(dl::decodeStateRecord("").has_value());
  EXPECT_FALSE(dl::decodeStateRecord("{\"format\":1}").has_value());
  EXPECT_FALSE(
      dl::decodeStateRecord(R"({"format":2,"dag_id":"d","run_id":"r","task_id":"t","try_number":1})").has_value())
      << "a newer format is not guessed at";
}

TEST(DispatcherLocalStateFile, ClaimIsExclusiveAndLockedUntilClosed) {
  TempDir dir;
  auto first = dl::claimStateFile(dir.path(), "base", "{}\n");
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  ASSERT_TRUE(first->has_value());
  auto second = dl::claimStateFile(dir.path(), "base", "{}\n");
  ASSERT_TRUE(second.isOk());
  EXPECT_FALSE(second->has_value()) << "claimed before";
  EXPECT_FALSE(dl::lockExisting(dir.path() / "base.json").has_value()) << "held by its claimant";
  (*first)->reset();
  EXPECT_TRUE(dl::lockExisting(dir.path() / "base.json").has_value()) << "free once its claimant is gone";
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
  EXPECT_EQ(readFile(dir.path() / "base.json"), "{}\n");
}

TEST(DispatcherLocalStateFile, ExitCodeFile) {
  TempDir dir;
  const fs::path p = dir.path() / "x.exit";
  EXPECT_FALSE(dl::readExitCode(p).has_value());
  std::ofstream(p) << "17\n";
  EXPECT_EQ(dl::readExitCode(p), 17);
  std::ofstream(p) << "";
  EXPECT_FALSE(dl::readExitCode(p).has_value()) << "empty: the supervisor had not finished writing";
  std::ofstream(p) << "x1\n";
  EXPECT_FALSE(dl::readExitCode(p).has_value());
}

TEST(DispatcherLocalStateFile, SpareFilesAreReusedNotRemoved) {
  TempDir dir;
  const fs::path spare_dir = dir.path() / ".spare";
  auto countIn = [](const fs::path& d) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(d)) {
      (void)e;
      ++n;
    }
    return n;
  };
  auto inode = [](const fs::path& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  {
    dl::SpareFiles spares(spare_dir, 2);
    auto first = dl::claimStateFile(dir.path(), "a", "{\"a\":1}\n", &spares);
    ASSERT_TRUE(first.isOk() && first->has_value()) << "no spare yet: a new file";
    const ino_t a_inode = inode(dir.path() / "a.json");
    std::ofstream(dir.path() / "a.exit") << "0\n";
    const ino_t exit_inode = inode(dir.path() / "a.exit");

    // Cleaned up: the names are gone from the state dir, the files kept.
    spares.recycle(dir.path() / "a.exit");
    spares.recycle(dir.path() / "a.json");
    (*first)->reset();
    EXPECT_FALSE(fs::exists(dir.path() / "a.exit"));
    EXPECT_FALSE(fs::exists(dir.path() / "a.json"));
    EXPECT_EQ(countIn(spare_dir), 2u);
    spares.recycle(dir.path() / "missing.exit");
    EXPECT_EQ(countIn(spare_dir), 2u) << "nothing to recycle";

    // The next claim takes a spare: the same inode, the new text, locked, exclusive.
    auto second = dl::claimStateFile(dir.path(), "b", "{\"b\":2}\n", &spares);
    ASSERT_TRUE(second.isOk() && second->has_value());
    const ino_t b_inode = inode(dir.path() / "b.json");
    EXPECT_TRUE(b_inode == a_inode || b_inode == exit_inode) << "a spare, not a new inode";
    EXPECT_EQ(readFile(dir.path() / "b.json"), "{\"b\":2}\n");
    EXPECT_FALSE(dl::lockExisting(dir.path() / "b.json").has_value()) << "held by its claimant";
    auto again = dl::claimStateFile(dir.path(), "b", "{}\n", &spares);
    ASSERT_TRUE(again.isOk());
    EXPECT_FALSE(again->has_value()) << "claimed before";
    EXPECT_EQ(countIn(spare_dir), 1u) << "the spare of the refused claim is kept";

    // An exit file placed from the pool is empty: never a previous attempt's code.
    ASSERT_TRUE(spares.place(dir.path() / "b.exit"));
    EXPECT_TRUE(fs::exists(dir.path() / "b.exit"));
    EXPECT_FALSE(dl::readExitCode(dir.path() / "b.exit").has_value());
    EXPECT_FALSE(spares.place(dir.path() / "c.exit")) << "the pool is empty";
    EXPECT_FALSE(fs::exists(dir.path() / "c.exit"));

    // Over capacity, a recycled file is removed.
    std::ofstream(dir.path() / "x") << "x";
    std::ofstream(dir.path() / "y") << "y";
    std::ofstream(dir.path() / "z") << "z";
    spares.recycle(dir.path() / "x");
    spares.recycle(dir.path() / "y", true);
    spares.recycle(dir.path() / "z");
    EXPECT_EQ(countIn(spare_dir), 2u);
    EXPECT_FALSE(fs::exists(dir.path() / "z"));
  }
  EXPECT_EQ(countIn(spare_dir), 0u) << "the pool is emptied when it goes";

  // Spares of a process that is gone are swept; those of a live one stay.
  std::ofstream(spare_dir / "999999999.1") << "";
  const fs::path ours = spare_dir / (std::to_string(::getpid()) + ".1");
  std::ofstream(ours) << "";
  dl::SpareFiles::sweep(spare_dir);
  EXPECT_FALSE(fs::exists(spare_dir / "999999999.1"));
  EXPECT_TRUE(fs::exists(ours));
}

TEST(DispatcherLocalTaskCommand, PythonEntrypointForms) {
  EXPECT_TRUE(dl::isModuleFunction("tasks:run"));
  EXPECT_TRUE(dl::isModuleFunction("pkg.sub_mod:do_it2"));
  EXPECT_FALSE(dl::isModuleFunction("scripts/run.py"));
  EXPECT_FALSE(dl::isModuleFunction("run.py"));
  EXPECT_FALSE(dl::isModuleFunction("pkg.:f"));
  EXPECT_FALSE(dl::isModuleFunction("pkg:1f"));
  EXPECT_FALSE(dl::isModuleFunction("a:b:c"));
  EXPECT_FALSE(dl::isModuleFunction("C:/x.py"));

  dl::Settings s;
  s.work_dir = "/work";
  s.python = "/usr/bin/python3.11";
  TaskSpec t;
  t.task_id = "t";
  t.type = "python";
  t.entrypoint = "scripts/x.py";
  auto argv = dl::taskArgv(t, s);
  ASSERT_TRUE(argv.isOk());
  EXPECT_EQ(*argv, (std::vector<std::string>{"/usr/bin/python3.11", "/work/scripts/x.py"}));
  t.entrypoint = "/abs/y.py";
  EXPECT_EQ(dl::taskArgv(t, s)->back(), "/abs/y.py");
  t.type = "bash";
  t.entrypoint = "echo hi";
  EXPECT_EQ(*dl::taskArgv(t, s), (std::vector<std::string>{"bash", "-c", "echo hi"}));
}

// etl/manual__1/load, try `try_number`, of `type`.
DispatchRequest loadRequest(std::int32_t try_number, const std::string& type) {
  DispatchRequest r;
  r.attempt.run.dag_id = "etl";
  r.attempt.run.run_id = "manual__1";
  r.attempt.task_id = "load";
  r.attempt.try_number = try_number;
  r.task.type = type;
  return r;
}

TEST(DispatcherLocalTaskCommand, TheTaskEnvironmentIsTheSchedulersThenTheTasksThenLeoflows) {
  dl::Settings s;
  s.work_dir = "/work";
  DispatchRequest r = loadRequest(2, "python");
  r.task.env = {{"HOME", "/task-home"}, {"ADDED", "a=b"}, {"LEOFLOW_TASK_ID", "not-allowed"}};
  r.tenant = "";
  const std::map<std::string, std::string> parent = {
      {"HOME", "/root"}, {"PATH", "/usr/bin:/bin"}, {"LEOFLOW_CONF", "{\"stale\":1}"}, {"ZED", "z"}};
  const std::vector<std::string> env = dl::taskEnvironment(parent, r, s);
  EXPECT_EQ(env, (std::vector<std::string>{"ADDED=a=b", "HOME=/task-home", "LEOFLOW_DAG_ID=etl",
                                           "LEOFLOW_LOGICAL_DATE=1970-01-01T00:00:00Z", "LEOFLOW_RUN_ID=manual__1",
                                           "LEOFLOW_TASK_ID=load", "LEOFLOW_TENANT=default", "LEOFLOW_TRY_NUMBER=2",
                                           "LEOFLOW_WORK_DIR=/work", "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1",
                                           "ZED=z"}))
      << "sorted by name; the run's conf, absent, removes the scheduler's own";

  r.conf_json = R"({"k":1})";
  r.task.type = "bash";
  r.task.env = {{"PYTHONUNBUFFERED", "0"}};
  const std::vector<std::string> with_conf = dl::taskEnvironment(parent, r, s);
  EXPECT_NE(std::find(with_conf.begin(), with_conf.end(), R"(LEOFLOW_CONF={"k":1})"), with_conf.end());
  EXPECT_NE(std::find(with_conf.begin(), with_conf.end(), "PYTHONUNBUFFERED=0"), with_conf.end());
  r.task.type = "python";
  const std::vector<std::string> own_buffering = dl::taskEnvironment(parent, r, s);
  EXPECT_NE(std::find(own_buffering.begin(), own_buffering.end(), "PYTHONUNBUFFERED=0"), own_buffering.end())
      << "a python task's own PYTHONUNBUFFERED wins";

  r.conf_json.clear();
  r.task.env = {{"LEOFLOW_CONF", "{\"own\":1}"}};
  const std::vector<std::string> no_conf = dl::taskEnvironment({{"PATH", "/bin"}}, r, s);
  EXPECT_TRUE(std::none_of(no_conf.begin(), no_conf.end(),
                           [](const std::string& e) { return e.rfind("LEOFLOW_CONF=", 0) == 0; }))
      << "a run without a conf has no LEOFLOW_CONF, whatever the task's env says";
}

TEST(DispatcherLocalWarmShells, TheEnvironmentDeltaExportsWhatDiffersAndUnsetsWhatIsGone) {
  const std::map<std::string, std::string> parent = {{"GONE", "1"}, {"HOME", "/root"}, {"KEPT", "k"}, {"PATH", "/bin"}};
  auto delta = dl::environmentDelta(parent, {"HOME=/elsewhere", "KEPT=k", "NEW=n", "PATH=/bin"});
  ASSERT_TRUE(delta.has_value());
  EXPECT_EQ(delta->first, (std::vector<std::string>{"HOME=/elsewhere", "NEW=n"}));
  EXPECT_EQ(delta->second, (std::vector<std::string>{"GONE"}));

  EXPECT_FALSE(dl::environmentDelta(parent, {"GONE=1", "HOME=/root", "KEPT=k", "PATH=/usr/bin"}).has_value())
      << "another PATH decides another bash: a cold start";
  EXPECT_FALSE(dl::environmentDelta(parent, {"GONE=1", "HOME=/root", "KEPT=k"}).has_value()) << "PATH removed";
  EXPECT_FALSE(dl::environmentDelta(parent, {"BASH_ENV=/x", "GONE=1", "HOME=/root", "KEPT=k", "PATH=/bin"}))
      << "bash reads BASH_ENV when it starts";
  EXPECT_FALSE(dl::environmentDelta(parent, {"GONE=1", "HOME=/root", "KEPT=k", "PATH=/bin", "NOT-A-NAME=x"}));
  EXPECT_FALSE(dl::environmentDelta(parent, {"GONE=1", "HOME=/root", "KEPT=k", "PATH=/bin", "__leoflow_exit=x"}));
  EXPECT_FALSE(dl::environmentDelta(parent, {"HOME=/root", "KEPT=k", "PATH=/bin", "NOEQUALS"}));
  auto same = dl::environmentDelta(parent, {"GONE=1", "HOME=/root", "KEPT=k", "PATH=/bin"});
  ASSERT_TRUE(same.has_value());
  EXPECT_TRUE(same->first.empty() && same->second.empty());
}

// What a warm shell does with the delta (unset, then export) must leave it with exactly the
// environment a cold start would get, whatever the order of the entries.
TEST(DispatcherLocalWarmShells, TheDeltaTurnsTheSchedulersEnvironmentIntoTheTasks) {
  dl::Settings s;
  s.work_dir = "/work";
  DispatchRequest r = loadRequest(1, "bash");
  r.task.env = {{"A_FIRST", "1"}, {"HOME", "/task-home"}, {"MIDDLE", "m"}, {"ZZ_LAST", "z"}};
  const std::map<std::string, std::string> parent = {{"B", "b"},       {"HOME", "/root"}, {"LEOFLOW_CONF", "{}"},
                                                     {"MIDDLE", "m"},  {"PATH", "/bin"},  {"Y", "y"}};
  std::vector<std::string> target = dl::taskEnvironment(parent, r, s);
  std::reverse(target.begin(), target.end());
  const auto delta = dl::environmentDelta(parent, target);
  ASSERT_TRUE(delta.has_value());
  std::map<std::string, std::string> shell = parent;
  for (const std::string& name : delta->second) shell.erase(name);
  for (const std::string& entry : delta->first) {
    const std::size_t eq = entry.find('=');
    shell[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  std::vector<std::string> got;
  for (const auto& [name, value] : shell) got.push_back(name + "=" + value);
  std::sort(target.begin(), target.end());
  EXPECT_EQ(got, target);
  EXPECT_EQ(delta->second, (std::vector<std::string>{"LEOFLOW_CONF"})) << "the scheduler's conf is not the run's";
  EXPECT_EQ(std::count_if(delta->first.begin(), delta->first.end(),
                          [](const std::string& e) { return e.rfind("MIDDLE=", 0) == 0 || e.rfind("B=", 0) == 0; }),
            0)
      << "what is already right is left alone";
  EXPECT_FALSE(dl::environmentDelta(parent, {"B=b", "B=c", "HOME=/root", "LEOFLOW_CONF={}", "MIDDLE=m", "PATH=/bin",
                                             "Y=y"}))
      << "a name given twice: a cold start decides, as execve would";
}

TEST(DispatcherLocalProcess, ProcStatTellsARecycledPidApart) {
  const auto self = dl::readProcessStat(::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->start_ticks, 0u);
  const std::string boot = dl::readBootId();
  ASSERT_FALSE(boot.empty());
  EXPECT_TRUE(dl::isSameLiveProcess(::getpid(), self->start_ticks, boot, boot));
  EXPECT_FALSE(dl::isSameLiveProcess(::getpid(), self->start_ticks + 1, boot, boot));
  EXPECT_FALSE(dl::isSameLiveProcess(::getpid(), self->start_ticks, "other-boot", boot));
}

}  // namespace
}  // namespace leoflow::testing::dispatcher_local
