// BoardService: live boards streamed from the engine's change feed.
#ifndef CASEWORK_SERVER_RPC_BOARD_SERVICE_H_
#define CASEWORK_SERVER_RPC_BOARD_SERVICE_H_

#include <memory>

#include "casework/v1/boards.grpc.pb.h"
#include "server/engine/change_feed.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

std::unique_ptr<v1::BoardService::CallbackService> NewBoardService(engine::Engine* engine,
                                                                   engine::ChangeFeed* feed,
                                                                   const RpcEnv& env);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_BOARD_SERVICE_H_
