// The subcommands of the `stgs` binary, one file each (apps/cmd_*.cpp). Each takes the arguments after
// its name and returns the process exit status; errors it cannot handle propagate as stgs::Error, which
// main() prints.
#pragma once

namespace stgs::apps {

int run_augment(int argc, char** argv);  // apps/cmd_augment.cpp
int run_inspect(int argc, char** argv);  // apps/cmd_inspect.cpp
int run_synth(int argc, char** argv);    // apps/cmd_synth.cpp
int run_import(int argc, char** argv);   // apps/cmd_import.cpp
int run_show_input(int argc, char** argv);  // apps/cmd_show_input.cpp
int run_pretrain(int argc, char** argv);  // apps/cmd_pretrain.cpp
int run_extract(int argc, char** argv);   // apps/cmd_extract.cpp
int run_search(int argc, char** argv);   // apps/cmd_search.cpp
int run_eval(int argc, char** argv);     // apps/cmd_eval.cpp
int run_detect(int argc, char** argv);   // apps/cmd_detect.cpp
int run_report(int argc, char** argv);   // apps/cmd_report.cpp

}  // namespace stgs::apps
