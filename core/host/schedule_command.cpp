#include "host/schedule_command.h"

#include <chrono>
#include <iostream>
#include <iterator>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "schedule/cron.h"
#include "schedule/due_slots.h"
#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

using schedule::Schedule;
using schedule::ScheduleKind;

// A query may ask for at most this many slots at once: `due`'s max_slots (the engine uses 100) and
// `next --count`.
constexpr std::int64_t kMaxSlotsPerQuery = 100'000;

Timestamp currentTime() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// Parses the schedule; a failure names the zone argument (`tz_label`) when the expression alone is
// fine, otherwise the expression.
Result<Schedule> parseSchedule(const std::string& expression, const std::string& tz, const char* tz_label) {
  Result<Schedule> parsed = Schedule::parse(expression, tz);
  if (parsed) return parsed;
  if (!tz.empty() && Schedule::parse(expression).isOk()) {
    return invalidArgument(std::string(tz_label) + ": " + parsed.status().message());
  }
  return invalidArgument("schedule " + quote(expression) + ": " + parsed.status().message());
}

// ARCHITECTURE §8.4: `next` refuses schedules that have no cron slots, saying why.
std::string noSlotsReason(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kOnce: return "@once runs once, when the scheduler first sees the DAG";
    case ScheduleKind::kContinuous: return "@continuous starts a run whenever none is active";
    default: return "without a schedule, runs are only triggered by hand";
  }
}

std::string joinWords(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    if (!text.empty()) text += ' ';
    text += w;
  }
  return text;
}

}  // namespace

int runScheduleNext(const ScheduleNextArgs& args, std::ostream& out, std::ostream& err, Timestamp now) {
  constexpr const char* kProgram = "leoflow schedule next: ";
  if (args.count < 1 || args.count > kMaxSlotsPerQuery) {
    err << kProgram << "--count: expected an integer of at least 1 and at most " << kMaxSlotsPerQuery << ", got "
        << args.count << '\n';
    return kExitBadInput;
  }
  Timestamp after = now;
  if (args.after) {
    const std::optional<Timestamp> parsed = schedule::parseIsoTime(*args.after);
    if (!parsed) {
      err << kProgram << "--after: expected an ISO-8601 time with a zone (2026-01-01T00:00:00Z), got "
          << quote(*args.after) << '\n';
      return kExitBadInput;
    }
    after = *parsed;
  }
  const Result<Schedule> parsed = parseSchedule(args.expression, args.tz, "--tz");
  if (!parsed) {
    err << kProgram << parsed.status().message() << '\n';
    return kExitBadInput;
  }
  if (!parsed->hasSlots()) {
    err << kProgram << "schedule " << quote(args.expression) << " has no cron slots: "
        << noSlotsReason(parsed->kind()) << '\n';
    return kExitBadInput;
  }
  for (int i = 0; i < args.count; ++i) {
    const std::optional<Timestamp> slot = parsed->next(after);
    if (!slot) {
      err << kProgram << "schedule " << quote(args.expression) << " has no slot within "
          << schedule::kCronSearchYears << " years after " << schedule::formatIsoSeconds(after) << '\n';
      return kExitBadInput;
    }
    out << schedule::formatIsoSeconds(*slot) << '\n';
    after = *slot;
  }
  return kExitOk;
}

int runScheduleDue(std::istream& in, std::ostream& out, std::ostream& err, Timestamp now) {
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {
    const nlohmann::json doc = parseJsonText(text, "stdin");
    if (!doc.is_object()) throw JsonFieldError("stdin: expected a JSON object, got " + doc.dump());
    // ARCHITECTURE §8.4: absent, null and "" all mean manual.
    const std::string expression = optionalString(member(doc, "schedule"), "schedule").value_or("");
    const std::string tz = optionalString(member(doc, "tz"), "tz").value_or("");
    schedule::DueQuery query;
    query.now = optionalTime(member(doc, "now"), "now").value_or(now);
    query.catchup = optionalBool(member(doc, "catchup"), "catchup").value_or(false);
    query.last_logical = optionalTime(member(doc, "last_logical"), "last_logical");
    query.start_date = optionalTime(member(doc, "start_date"), "start_date");
    query.end_date = optionalTime(member(doc, "end_date"), "end_date");
    if (const auto max_slots = optionalInt(member(doc, "max_slots"), "max_slots")) {
      if (*max_slots < 1 || *max_slots > kMaxSlotsPerQuery) {
        throw JsonFieldError("max_slots: expected an integer from 1 to " + std::to_string(kMaxSlotsPerQuery) +
                             ", got " + std::to_string(*max_slots));
      }
      query.max_slots = static_cast<int>(*max_slots);
    }
    const Result<Schedule> parsed = parseSchedule(expression, tz, "tz");
    if (!parsed) throw JsonFieldError(parsed.status().message());

    std::vector<Timestamp> slots;
    schedule::dueSlots(*parsed, query, slots);
    nlohmann::ordered_json result;
    result["slots"] = nlohmann::ordered_json::array();
    for (const Timestamp slot : slots) result["slots"].push_back(schedule::formatIsoSeconds(slot));
    out << result.dump(2) << '\n';
    return kExitOk;
  } catch (const JsonFieldError& e) {
    err << "leoflow schedule due: " << e.what() << '\n';
    return kExitBadInput;
  }
}

void addScheduleCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("schedule", "Cron slots: next and due");
  cmd->require_subcommand(1);

  // Owned by the callback, which the app keeps as long as the options refer to them.
  auto args = std::make_shared<ScheduleNextArgs>();
  auto words = std::make_shared<std::vector<std::string>>();
  auto after = std::make_shared<std::string>();
  CLI::App* next = cmd->add_subcommand("next", "Print the next slots of a schedule, one ISO-8601 UTC time a line");
  next->add_option("EXPR", *words,
                   "The schedule as in a DAG file: 5-field cron (minute hour day-of-month month day-of-week), "
                   "@yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly or @every D (D like 1h30m, "
                   "90s), optionally prefixed by CRON_TZ=Zone or TZ=Zone. Quote it; separate words are "
                   "joined with spaces")
      ->required();
  next->add_option("--after", *after,
                   "Print slots strictly after this ISO-8601 time (Z or an offset, fractions allowed); "
                   "default: now");
  next->add_option("--count", args->count, "How many slots to print (1 to 100000)")->capture_default_str();
  next->add_option("--tz", args->tz, "IANA time zone the cron fields are read in (default UTC); a CRON_TZ=/TZ= "
                                     "prefix in EXPR wins");
  next->footer(
      "Examples:\n"
      "  leoflow schedule next '*/5 * * * *' --after 2026-01-01T00:00:00Z --count 3\n"
      "  leoflow schedule next 'CRON_TZ=Europe/Paris 0 9 * * MON-FRI'\n"
      "Exit 2 with a message for a malformed or never-firing schedule, or one without slots "
      "(@once, @continuous, none).");
  next->callback([&ctx, next, args, words, after] {
    args->expression = joinWords(*words);
    args->after = next->count("--after") > 0 ? std::optional<std::string>(*after) : std::nullopt;
    ctx.exit_code = runScheduleNext(*args, *ctx.out, *ctx.err, currentTime());
  });

  CLI::App* due = cmd->add_subcommand(
      "due", "Print the slots due now for a schedule (catch-up, first run, start/end dates) as JSON");
  due->footer(
      "Input on stdin: {\"schedule\": EXPR, \"now\"?: time (default: now), \"catchup\"?: bool (default false),\n"
      "                 \"last_logical\"?: time, \"start_date\"?: time, \"end_date\"?: time,\n"
      "                 \"max_slots\"?: int (default 100), \"tz\"?: zone (a CRON_TZ=/TZ= prefix wins)}\n"
      "Times are ISO-8601 with Z or an offset. Unknown keys are ignored.\n"
      "Output: {\"slots\": [\"2026-01-01T00:00:00Z\", ...]} oldest first. Without catchup only the latest\n"
      "due slot is listed; with it, at most max_slots, the earliest first.");
  due->callback([&ctx] { ctx.exit_code = runScheduleDue(*ctx.in, *ctx.out, *ctx.err, currentTime()); });
}

}  // namespace leoflow::host
