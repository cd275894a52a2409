// The real `leoflow` binary with a store-postgres config (ARCHITECTURE §8.6 exit codes): a rejected
// login is a configuration error (exit 2) whose message never shows the password; a server that
// cannot be reached is exit 3; a good config lists the DAGs (exit 0). Schema lf_store_cli.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pg_test_env.h"
#include "support/run_command.h"

namespace leoflow::testing::pg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kCliPassword = "Cl1-Wr0ng-Secret-9051";

class PgCli : public ::testing::Test {
 protected:
  void SetUp() override {
    LEOFLOW_REQUIRE_TEST_PG();
    dir_ = fs::temp_directory_path() / ("leoflow-pg-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  /// A config with the store (and, without [leader], the leader) on `dsn`.
  fs::path writeConfig(const std::string& dsn, std::int64_t connect_timeout_ms = 2000) {
    const fs::path path = dir_ / "leoflow.toml";
    std::ofstream f(path);
    f << "[store]\nplugin = \"store-postgres\"\n[store.config]\n"
      << "dsn = \"" << dsn << "\"\n"
      << "schema = \"lf_store_cli\"\n"
      << "connect_timeout_ms = " << connect_timeout_ms << "\n"
      << "[dispatcher]\nplugin = \"dispatcher-local\"\n[dispatcher.config]\n"
      << "work_dir = \"" << (dir_ / "work").string() << "\"\n"
      << "log_dir = \"" << (dir_ / "logs").string() << "\"\n"
      << "state_dir = \"" << (dir_ / "state").string() << "\"\n";
    return path;
  }

  /// `leoflow --config CONFIG ARGS`, finding the plugins meson just built.
  CommandOutput leoflow(const fs::path& config, const std::string& args) {
    std::string path = pluginDir();
    if (const char* d = std::getenv("LEOFLOW_DISPATCHER_LOCAL_DIR"); d != nullptr && *d != '\0') {
      path += ":" + std::string(d);
    }
    return runCommand("cd '" + dir_.string() + "' && env -u LEOFLOW_CONFIG LEOFLOW_PLUGIN_PATH='" + path + "' " +
                      leoflowBinary() + " --config '" + config.string() + "' " + args);
  }

  fs::path dir_;
};

TEST_F(PgCli, StoreMigrateNamesWhatItAppliedThenSaysUpToDate) {
  dropSchema("lf_store_cli");
  const fs::path config = writeConfig(*serverDsn());
  const CommandOutput first = leoflow(config, "store migrate");
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("applied 001_schema")) << first.out;
  const CommandOutput second = leoflow(config, "store migrate");
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, "up to date\n");
  const CommandOutput clean = leoflow(config, "store clean --older-than 1");
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_THAT(clean.out, HasSubstr("deleted 0 finished runs")) << clean.out;
}

TEST_F(PgCli, AGoodConfigListsTheDags) {
  const CommandOutput r = leoflow(writeConfig(*serverDsn()), "dags list --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[")) << r.out;
}

TEST_F(PgCli, AWrongPasswordExits2AndNeverShowsThePassword) {
  const char* user = std::getenv("LEOFLOW_TEST_PG_SECURE_USER");
  const std::string dsn = dsnFor(user != nullptr && *user != '\0' ? user : "leoflow_secure", kCliPassword);
  const CommandOutput r = leoflow(writeConfig(dsn), "dags list");
  EXPECT_EQ(r.exit_code, 2) << "stderr: " << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr(kCliPassword))) << "the password leaked on stderr";
  EXPECT_THAT(r.out, Not(HasSubstr(kCliPassword))) << "the password leaked on stdout";
  EXPECT_THAT(r.err, HasSubstr("password authentication failed")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("store-postgres")) << "name the plugin: " << r.err;
  std::printf("[ stderr   ] %s", r.err.c_str());
}

TEST_F(PgCli, AClosedPortExits3) {
  const std::string dsn = "postgresql://postgres:" + std::string(kCliPassword) + "@127.0.0.1:" +
                          std::to_string(closedPort()) + "/postgres";
  const CommandOutput r = leoflow(writeConfig(dsn, 1000), "dags list");
  EXPECT_EQ(r.exit_code, 3) << "stderr: " << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr(kCliPassword))) << "the password leaked on stderr";
  std::printf("[ stderr   ] %s", r.err.c_str());
}

}  // namespace
}  // namespace leoflow::testing::pg
