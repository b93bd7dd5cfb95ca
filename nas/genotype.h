// The discrete architecture a search ends with: which nodes feed each cell, which states feed each inner
// step and which fusion op it applies. Derived from alpha, beta and gamma; stored as versioned JSON; drawn as
// a graphviz DOT diagram.
// defines: StepGenotype, CellGenotype, Genotype, derive_genotype, validate_genotype, genotype_to_json,
//          parse_genotype, save_genotype, load_genotype, genotype_to_dot
//
// Indices follow nas/search_space.h. Nodes: u < N is input node u (config.input_names[u]), N + j is cell j.
// States of a cell: 0 = x, 1 = y, 2 + i = the output of inner step i.
//
// JSON (README "Genotypes and the fixed network"): node references are written as the input's name or
// "cell<j>", states as "x", "y" or "s<i>", ops by fusion_op_name:
//   {"format": "stgs-genotype", "version": 1,
//    "config": {"inputs": [{"name": "image.layer1", "channels": 64}, ...], "C": 128, "L": 8, "cells": 2,
//               "steps": 2, "dropout": 0.2, "num_classes": 2, "ops": ["zero", "sum", ...]},
//    "cells": [{"inputs": ["image.layer3", "audio.layer2"],
//               "steps": [{"inputs": ["x", "y"], "op": "linear_glu"}, {"inputs": ["s0", "x"], "op": "sum"}]},
//              {"inputs": ["cell0", "audio.layer4"], "steps": [...]}]}
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "nas/fusion_ops.h"
#include "nas/search_space.h"

namespace stgs::nas {

// Inner step k: s_k = op(states[inputs[0]], states[inputs[1]]); both inputs < 2 + k and distinct. The order
// matters: inputs[0] is the op's x (Attention's query).
struct StepGenotype {
  std::array<int, 2> inputs{0, 1};
  FusionOpKind op = FusionOpKind::Sum;
  bool operator==(const StepGenotype&) const = default;
};

// Cell v: x = node[inputs[0]] (it also feeds the residual), y = node[inputs[1]]; both < N + v and distinct.
struct CellGenotype {
  std::array<int, 2> inputs{0, 1};
  std::vector<StepGenotype> steps;
  bool operator==(const CellGenotype&) const = default;
};

struct Genotype {
  static constexpr int kFormatVersion = 1;

  SearchConfig config;             // the search space it came from; the fixed network uses its sizes
  std::vector<CellGenotype> cells;  // config.cells entries, each with config.steps steps
};

// Same configuration (every field) and the same cells.
bool operator==(const Genotype& a, const Genotype& b);

// The strongest architecture under softmax(logits) of every row, no noise (BM-NAS's rule, which DARTS and
// GDAS also use). alpha (alpha_rows, 2), beta (beta_rows, 2), gamma (gamma_rows, |ops|) as ArchLayout lays
// them out; any float dtype and device. An edge's strength is its Identity probability.
//  - Cell v: the two distinct predecessors u < N + v with the strongest edges, strongest first (x).
//  - Step k: the two distinct states j < 2 + k with the strongest edges, strongest first.
//  - Op of step k: the argmax of its gamma row over ALL configured ops, Zero included: the search ranked
//    Zero against the other ops, so a step whose Zero won contributes nothing (s_k = 0) in the fixed
//    network too, instead of silently promoting the runner-up.
// Ties go to the lower index. Throws on a shape that does not match the layout or a non-finite logit, and
// when there are fewer than 2 input nodes (cell 0 needs two distinct inputs).
Genotype derive_genotype(const SearchConfig& config, const Tensor& alpha, const Tensor& beta, const Tensor& gamma);

// Throws, naming `source` and the JSON path of the problem (e.g. "cells[1].steps[0].inputs[1]"), unless the
// config is valid, no input name looks like a cell reference ("cell<j>"), there are config.cells cells of
// config.steps steps, every input refers to an earlier node or state, the two inputs differ, and every op is
// one of config.ops.
void validate_genotype(const Genotype& g, const std::string& source = "genotype");

// Pretty-printed JSON (2-space indent, trailing newline) in the documented field order. Validates first.
std::string genotype_to_json(const Genotype& g);
// Parses and validates JSON text; every error starts with "<source_name>: <JSON path>: ". Rejects a wrong
// format or version, missing or unknown fields, wrong types, unknown names and ops, duplicate keys, and
// everything validate_genotype rejects.
Genotype parse_genotype(const std::string& text, const std::string& source_name);
// Atomic write (temporary file, fsync, rename): an interrupted save leaves the old file intact.
void save_genotype(const std::string& path, const Genotype& g);
Genotype load_genotype(const std::string& path);

// A graphviz digraph (rankdir=LR): input nodes (unused ones grey), one cluster per cell with x, y, the steps
// labelled with their ops and the cell output (residual from x dashed), and the classification head. Node
// ids are generated; names appear only in quoted, escaped labels, so any input name is safe.
std::string genotype_to_dot(const Genotype& g);

}  // namespace stgs::nas
