// A comparison of several search and evaluation runs, from their files alone (apps/run_report.h): one results
// table and figures that overlay the runs, notably the entropy curves of an STGS search and a plain-softmax
// search (`stgs search --mode softmax`), the paper's Figure 1b.
// defines: write_comparison_report
//
// Files written into out_dir:
//   results.csv   run,kind,mode,split,auc,acc,eer,best_epoch,fusion_parameters,total_parameters,path: one row per run
//   entropy.csv   run,epoch,alpha,beta,gamma: every search run's entropies, one row per run and epoch
//   loss.csv      run,epoch,train_loss: every run's training loss per epoch
//   report.md     the table and the figures
//   entropy.png, loss.png, roc.png   overlays (gnuplot, when installed and `plots`): entropies of the search runs,
//                 training losses of all, test ROC curves of the evaluation runs
#pragma once

#include <string>
#include <vector>

#include "apps/run_dir.h"

namespace stgs::apps {

void write_comparison_report(const std::vector<RunDir>& runs, const std::string& out_dir, bool plots);

}  // namespace stgs::apps
