// Who may call what: one table with an entry for every RPC of every
// service, enforced in one place (Serve). An RPC that performs a workflow
// action takes its roles from that action's transition, so the RPC table
// and the workflows' transition tables cannot disagree.
#ifndef CASEWORK_SERVER_RPC_ACCESS_H_
#define CASEWORK_SERVER_RPC_ACCESS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/workflow/workflow.h"

namespace casework::rpc {

class AccessTable {
 public:
  // Resolves the table against the registered workflows. INTERNAL when an
  // RPC of the casework services has no entry, or an entry names an
  // unknown RPC or workflow action.
  static absl::StatusOr<AccessTable> Build(const std::vector<const workflow::Workflow*>& workflows);

  // OK when `role` may call `method` ("casework.v1.TradeInService/GetTradeIn");
  // PERMISSION_DENIED naming the roles that may. Unknown methods are denied.
  absl::Status Check(const std::string& method, const std::string& role) const;

  // method -> roles that may call it.
  const std::map<std::string, std::vector<std::string>>& roles() const { return roles_; }

  // The workflow transition `method` performs (its states and roles), or
  // null for an RPC that performs none. Points into the workflows given
  // to Build.
  const workflow::Transition* TransitionOf(const std::string& method) const;

 private:
  std::map<std::string, std::vector<std::string>> roles_;
  std::map<std::string, const workflow::Transition*> transitions_;
};

// The services whose RPCs the table covers.
const std::vector<std::string>& CaseworkServices();

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_ACCESS_H_
