#ifndef CASEWORK_SERVER_RPC_OTP_SUPPORT_SERVICE_H_
#define CASEWORK_SERVER_RPC_OTP_SUPPORT_SERVICE_H_

#include <memory>

#include "casework/v1/otp_support.grpc.pb.h"
#include "server/directory/profile_directory.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// The OtpSupportService: handlers look up the profile and hand request and
// profile to the engine.
std::unique_ptr<v1::OtpSupportService::CallbackService> NewOtpSupportService(
    engine::Engine* engine, directory::ProfileDirectory* profiles, RpcEnv env);

// The API view of a stored OTP ticket; its fields are moved in.
v1::OtpTicket ToOtpTicket(engine::CaseView view);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_OTP_SUPPORT_SERVICE_H_
