#include "engine/distributed/batch_norm_group.h"

namespace stgs::dist {
namespace {
thread_local Communicator* t_group = nullptr;
}  // namespace

BatchNormGroupScope::BatchNormGroupScope(Communicator& comm) : previous_(t_group) { t_group = &comm; }
BatchNormGroupScope::~BatchNormGroupScope() { t_group = previous_; }

Communicator* batch_norm_group() { return t_group; }

}  // namespace stgs::dist
