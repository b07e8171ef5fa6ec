#ifndef CASEWORK_SERVER_RPC_UNLOCK_SERVICE_H_
#define CASEWORK_SERVER_RPC_UNLOCK_SERVICE_H_

#include <memory>

#include "casework/v1/unlock.grpc.pb.h"
#include "server/directory/account_directory.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// The UnlockService: handlers look up the account in the directory and hand
// request and account to the engine.
std::unique_ptr<v1::UnlockService::CallbackService> NewUnlockService(
    engine::Engine* engine, directory::AccountDirectory* accounts, RpcEnv env);

// The API view of a stored unlock request; its fields are moved in.
v1::UnlockRequest ToUnlockRequest(engine::CaseView view);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_UNLOCK_SERVICE_H_
