// `leoflow status`: who leads, with which term, when it last ticked (ARCHITECTURE §5, §8.6, §8.7).
#pragma once

#include <iosfwd>

#include <leoflow/context.h>
#include <leoflow/store.h>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

int status(Store& store, const Clock& clock, bool json, std::ostream& out);

void addStatusCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
