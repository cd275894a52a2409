#include "host/progress_line.h"

#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace leoflow::host {
namespace {

std::string lineOf(std::size_t done, std::size_t of) { return std::to_string(done) + " of " + std::to_string(of) + "\n"; }

TEST(ProgressLine, ACommandDoneWithinASecondPrintsNothing) {
  std::ostringstream err;
  const SliceProgress progress = progressEverySecond(err, lineOf);
  progress(100, 300);
  progress(200, 300);
  progress(300, 300);
  EXPECT_EQ(err.str(), "");
}

TEST(ProgressLine, ALongCommandPrintsAfterASecondAndThenItsLastStep) {
  std::ostringstream err;
  const SliceProgress progress = progressEverySecond(err, lineOf);
  progress(100, 400);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  progress(200, 400);
  progress(300, 400);  // within a second of the last line
  progress(400, 400);  // the end, once something was told
  EXPECT_EQ(err.str(), "200 of 400\n400 of 400\n");
}

}  // namespace
}  // namespace leoflow::host
