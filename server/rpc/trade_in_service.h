#ifndef CASEWORK_SERVER_RPC_TRADE_IN_SERVICE_H_
#define CASEWORK_SERVER_RPC_TRADE_IN_SERVICE_H_

#include <memory>

#include "casework/v1/trade_in.grpc.pb.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// The TradeInService; handlers translate requests into engine commands.
std::unique_ptr<v1::TradeInService::CallbackService> NewTradeInService(
    engine::Engine* engine, RpcEnv env);

// The API view of a stored trade-in (no secrets). Takes the case: its
// fields are moved into the answer.
v1::TradeIn ToTradeIn(engine::CaseView view);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_TRADE_IN_SERVICE_H_
