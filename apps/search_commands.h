// The search and the evaluation as functions of a resolved config, shared by `stgs search`, `stgs eval` and the
// (lambda, M) sweep of `stgs search --sweep`, which runs both for every cell of its table.
// defines: search_flags, eval_flags, search_with_config, resolve_eval_inputs, evaluate_with_config,
//          sweep_with_config
#pragma once

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "apps/run_dir.h"

namespace stgs::apps {

CommandLine search_flags();  // apps/cmd_search.cpp
CommandLine eval_flags();    // apps/cmd_eval.cpp

// Runs the search that `config` (search_flags()'s keys) describes: in `run` when given (a run being resumed,
// its config.json already there), else in a new <runs_dir>/<name>-<timestamp> made once the features are read.
// Returns the exit status: 0, or 130 after Ctrl-C (a checkpoint written). apps/cmd_search.cpp.
int search_with_config(nlohmann::json config, std::optional<RunDir> run);

// An evaluation config (eval_flags()'s keys) with the inputs it leaves open taken from a search run: the
// genotype (its genotype.json), the features and, unless `given` holds "protocol", the protocol (its
// config.json). The search run is "search_run", else the newest search run under "runs_dir". apps/cmd_eval.cpp.
nlohmann::json resolve_eval_inputs(nlohmann::json config, const std::set<std::string>& given);

// Trains and scores the genotype of a resolved evaluation config, as search_with_config runs a search.
int evaluate_with_config(nlohmann::json config, std::optional<RunDir> run);

// `stgs search --sweep` (options: search_flags()'s keys, "sweep" set): a search and an evaluation per
// (lambda, M) cell and the table of their results, in a new sweep directory, or in `run` when resuming one
// (cells whose results exist are skipped). apps/cmd_sweep.cpp.
int sweep_with_config(const nlohmann::json& options, std::optional<RunDir> run);

}  // namespace stgs::apps
