// DAG files (ARCHITECTURE §6): JSON, compatible with Leoflow's compiled DAG format, read into a
// DagSpec with defaults applied, validated, and written back as canonical JSON for the store.
//
// Validation names the file and the task for every error (`bad.json: task "x" depends on unknown
// task "nowhere"`) and reports all of them, not just the first. A file with any error yields no
// DAG: nothing of it is registered.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <leoflow/domain.h>
#include <leoflow/status.h>

namespace leoflow::host {

/// One DAG read from a file.
struct ParsedDag {
  DagSpec spec;                ///< defaults applied (default_args, execution modes, catchup, ...)
  std::string canonical_json;  ///< what the store keeps; identical files give identical text
  std::string file;
};

/// The outcome of reading DAG files.
struct DagLoad {
  std::vector<ParsedDag> dags;
  std::vector<std::string> errors;    ///< "file: message", every one found
  std::vector<std::string> warnings;  ///< "file: message" (unknown keys, ...), not fatal
};

/// Parses one DAG document; problems go to `load` prefixed with `file`. Returns the DAG only when
/// the document has no error. A key given twice in one object is an error naming the key and where
/// (JSON parsers would keep only the last one, silently).
std::optional<ParsedDag> parseDagText(const std::string& text, const std::string& file, DagLoad& load);

/// Reads every path: a file, or a folder whose *.json files are read (recursively, in name order).
/// A file reached twice (named twice, or in a folder and by name) is read once; a DAG id defined by
/// two files is an error naming both.
DagLoad loadDagFiles(const std::vector<std::string>& paths);

/// The canonical JSON of a spec (sorted keys, defaults written out, times in UTC).
std::string canonicalDagJson(const DagSpec& spec);

/// Reads canonical JSON back (what the engine does with a stored DAG version).
Result<DagSpec> decodeCanonicalDag(const std::string& json);

/// True for ids the store, file names and pod names can carry: [A-Za-z0-9_.-], 1 to 250 chars.
bool isValidId(const std::string& id);

}  // namespace leoflow::host
