// The SDK header hash is recorded per SDK version (ARCHITECTURE §8.17): the headers of a version
// never change after it is made, so a plugin of the host's major.minor is built against exactly the
// host's interfaces. These tests fail when a header changes without a version step, and say what to
// do; they also hold scripts/sdk_hash.py to what the hash promises (comments and layout do not
// count, everything else does).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <leoflow/abi.h>

#include "loader_test_helpers.h"
#include "support/run_command.h"

namespace leoflow::testing {
namespace {

namespace fs = std::filesystem;

const char* const kTable = "core/include/leoflow/sdk_versions.txt";

std::string env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') throw std::runtime_error(std::string(name) + " is not set (meson sets it)");
  return value;
}

fs::path sourceRoot() { return env("LEOFLOW_SOURCE_ROOT"); }
fs::path sdkDir() { return sourceRoot() / "core" / "include" / "leoflow"; }

// The headers meson hashes and installs (leoflow_sdk_headers), by file name.
std::vector<std::string> hashedHeaders() {
  std::istringstream in(env("LEOFLOW_TEST_SDK_HEADERS"));
  std::vector<std::string> names;
  for (std::string name; in >> name;) names.push_back(name);
  return names;
}

std::string currentVersion() { return std::to_string(LEOFLOW_ABI_MAJOR) + "." + std::to_string(LEOFLOW_ABI_MINOR); }

struct Recorded {
  unsigned major = 0, minor = 0;
  std::string version, hash;
  int line = 0;
};

bool isHash(const std::string& s) {
  return s.size() == 16 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); });
}

// The table's lines; a malformed one is a test failure naming it.
std::vector<Recorded> readTable() {
  std::ifstream in(sourceRoot() / kTable);
  if (!in) throw std::runtime_error("cannot read " + (sourceRoot() / kTable).string());
  std::vector<Recorded> table;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty() || line.front() == '#') continue;
    std::istringstream fields(line);
    Recorded r;
    std::string rest;
    char dot = 0;
    fields >> r.version >> r.hash;
    std::istringstream version(r.version);
    const bool version_ok = static_cast<bool>(version >> r.major >> dot >> r.minor) && dot == '.' && version.eof() &&
                            r.version == std::to_string(r.major) + "." + std::to_string(r.minor);
    if (!version_ok || !isHash(r.hash) || (fields >> rest)) {
      ADD_FAILURE() << kTable << ":" << number << ": \"" << line
                    << "\" is not \"major.minor hash\" (a hash is 16 lower-case hex digits)";
      continue;
    }
    r.line = number;
    table.push_back(r);
  }
  return table;
}

TEST(SdkVersions, TheHeadersHashToTheHashRecordedForTheCurrentVersion) {
  const std::string version = currentVersion();
  const std::vector<Recorded> table = readTable();
  const auto it = std::find_if(table.begin(), table.end(), [&](const Recorded& r) { return r.version == version; });
  if (it == table.end()) {
    FAIL() << kTable << " records no hash for SDK " << version
           << ", the version in core/include/leoflow/abi.h. If you have just stepped the version for a header "
              "change, add this line at the end of "
           << kTable << ":\n\n  " << version << " " << LEOFLOW_SDK_HASH << "\n";
  }
  EXPECT_EQ(it->hash, LEOFLOW_SDK_HASH)
      << "The SDK headers changed without a version step: they hash to " << LEOFLOW_SDK_HASH << ", but " << kTable
      << ":" << it->line << " records " << it->hash << " for SDK " << version
      << ", the version in core/include/leoflow/abi.h. A plugin built against the recorded headers would still "
         "load into this host and call it through other interfaces (ARCHITECTURE §8.17). Either undo the header "
         "change, or step the version in core/include/leoflow/abi.h: LEOFLOW_ABI_MINOR for an appended virtual "
         "function or a trailing struct field, LEOFLOW_ABI_MAJOR (and the minor back to 0) for anything else. "
         "Then rebuild and run this test again; it prints the line to add to "
      << kTable
      << ". Never change a line that is there. (Comments and layout do not count; `python3 scripts/sdk_hash.py "
         "hash core/include/leoflow/*.h` prints the headers' hash.)";
}

TEST(SdkVersions, TheTableListsEachVersionOnceOldestFirst) {
  const std::vector<Recorded> table = readTable();
  ASSERT_FALSE(table.empty()) << kTable << " records no version";
  for (std::size_t i = 1; i < table.size(); ++i) {
    const Recorded& a = table[i - 1];
    const Recorded& b = table[i];
    EXPECT_TRUE(a.major < b.major || (a.major == b.major && a.minor < b.minor))
        << kTable << ":" << b.line << ": SDK " << b.version << " follows " << a.version
        << "; each version is recorded once, oldest first";
    EXPECT_NE(a.hash, b.hash) << kTable << ":" << b.line << ": SDK " << b.version << " has the hash of " << a.version;
  }
  const Recorded& newest = table.back();
  EXPECT_TRUE(newest.major < LEOFLOW_ABI_MAJOR ||
              (newest.major == LEOFLOW_ABI_MAJOR && newest.minor <= LEOFLOW_ABI_MINOR))
      << kTable << " records SDK " << newest.version << ", newer than abi.h's " << currentVersion();
}

TEST(SdkVersions, EverySdkHeaderIsHashed) {
  const std::vector<std::string> hashed = hashedHeaders();
  ASSERT_FALSE(hashed.empty());
  for (const fs::directory_entry& entry : fs::directory_iterator(sdkDir())) {
    if (entry.path().extension() != ".h") continue;
    const std::string name = entry.path().filename().string();
    EXPECT_NE(std::find(hashed.begin(), hashed.end(), name), hashed.end())
        << "core/include/leoflow/" << name << " is not in leoflow_sdk_headers (core/include/meson.build): it is "
        << "neither installed nor part of the SDK hash. Add it there.";
  }
}

// --- scripts/sdk_hash.py ------------------------------------------------------------------------

std::string shellQuoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The hash scripts/sdk_hash.py gives `files`.
std::string hashOf(const std::vector<fs::path>& files) {
  std::string command = shellQuoted(env("LEOFLOW_TEST_PYTHON")) + " " +
                        shellQuoted((sourceRoot() / "scripts" / "sdk_hash.py").string()) + " hash";
  for (const fs::path& f : files) command += " " + shellQuoted(f.string());
  const CommandOutput r = runCommand(command);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string hash = r.out;
  while (!hash.empty() && std::isspace(static_cast<unsigned char>(hash.back()))) hash.pop_back();
  EXPECT_TRUE(isHash(hash)) << "sdk_hash.py printed \"" << r.out << "\"";
  return hash;
}

TEST(SdkHashScript, TheBuildsHashIsTheHashOfTheSourceHeaders) {
  std::vector<fs::path> headers;
  for (const std::string& name : hashedHeaders()) headers.push_back(sdkDir() / name);
  EXPECT_EQ(hashOf(headers), LEOFLOW_SDK_HASH)
      << "<leoflow/sdk_hash.h> in the build tree is stale: reconfigure (meson setup --reconfigure) and rebuild";
}

TEST(SdkHashScript, CommentsAndLayoutDoNotCountAndEverythingElseDoes) {
  const std::string base =
      "// One interface.\n"
      "#pragma once\n"
      "#include <string>\n"
      "#define LEOFLOW_F(x) (x)\n"
      "namespace leoflow {\n"
      "/// A role.\n"
      "class Role {\n"
      " public:\n"
      "  virtual ~Role() = default;\n"
      "  virtual int run(const std::string& what, int n = 1'000) = 0;  // the work\n"
      "  const char* url = \"http://example.com/a\";\n"
      "};\n"
      "}  // namespace leoflow\n";
  const auto hashOfText = [](const std::string& name, const std::string& text) {
    ScratchDir dir;
    return hashOf({dir.write(name, text)});
  };
  const std::string expected = hashOfText("role.h", base);

  // The same code: other comments, indentation, line breaks and spaces around punctuation.
  EXPECT_EQ(hashOfText("role.h",
                       "/* The interface\n   of a role. */\n#pragma once\n#include <string>\n"
                       "#define LEOFLOW_F(x) (x)  // a macro\n"
                       "namespace leoflow {\nclass Role { public:\n    virtual ~Role()=default;\n"
                       "    virtual int run(const std::string &what,\n                    int n = 1'000) = 0;\n"
                       "    const char *url = \"http://example.com/a\";\n};\n}\n"),
            expected);
  // Anything the compiler sees differently.
  for (const auto& [what, changed] : std::vector<std::pair<std::string, std::string>>{
           {"a parameter type", "int n = 1'000) = 0;|long n = 1'000) = 0;"},
           {"a default argument", "1'000|1'001"},
           {"a virtual made non-virtual", "  virtual int run|  int run"},
           {"a string literal", "http://example.com/a|http://example.com/b"},
           {"a function-like macro made object-like", "#define LEOFLOW_F(x)|#define LEOFLOW_F (x)"},
           {"an include", "#include <string>|#include <string_view>"},
       }) {
    const std::size_t bar = changed.find('|');
    const std::string from = changed.substr(0, bar), to = changed.substr(bar + 1);
    std::string text = base;
    const std::size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    EXPECT_NE(hashOfText("role.h", text), expected) << what << " did not change the hash";
  }
  // The file's name counts: the same text as another header is another SDK.
  EXPECT_NE(hashOfText("other.h", base), expected);
}

}  // namespace
}  // namespace leoflow::testing
