#ifndef CASEWORK_SERVER_RPC_PROTECTION_SERVICE_H_
#define CASEWORK_SERVER_RPC_PROTECTION_SERVICE_H_

#include <memory>

#include "casework/v1/protection.grpc.pb.h"
#include "server/directory/plan_catalogue.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// The ProtectionClaimService: the plan catalogue and enrollments.
std::unique_ptr<v1::ProtectionClaimService::CallbackService> NewProtectionService(
    engine::Engine* engine, directory::PlanCatalogue* plans, RpcEnv env);

// The API views of a stored enrollment and claim; their fields are moved in.
v1::Enrollment ToEnrollment(engine::CaseView view);
v1::Claim ToClaim(engine::CaseView view);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_PROTECTION_SERVICE_H_
