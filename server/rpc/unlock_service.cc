#include "server/rpc/unlock_service.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/rpc/case_queries.h"
#include "server/workflow/unlock_workflow.h"
#include "server/workflow/validation.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;
namespace wf = workflow;

constexpr char kService[] = "casework.v1.UnlockService";
constexpr const char* kCollection = workflow::kUnlockCollection;
constexpr const char* kKind = workflow::kUnlockKind;

class UnlockService final : public v1::UnlockService::CallbackService {
 public:
  UnlockService(engine::Engine* engine, directory::AccountDirectory* accounts, RpcEnv env)
      : engine_(engine), accounts_(accounts), env_(env) {}

  ServerUnaryReactor* CreateUnlockRequest(CallbackServerContext* ctx,
                                          const v1::CreateUnlockRequestRequest* req,
                                          v1::UnlockRequest* resp) override {
    return ServeChange(env_, ctx, kService, "CreateUnlockRequest", [=](const Actor& who, Reply reply) {
      if (req->account_number().empty() == req->phone_number().empty()) {
        return reply(InvalidField("account_number",
                                  "set exactly one of account_number and phone_number"));
      }
      if (!req->phone_number().empty() && !wf::IsE164(req->phone_number())) {
        return reply(InvalidField("phone_number", "must be E.164, e.g. +14155550123"));
      }
      if (req->account_number().size() > 32) {
        return reply(InvalidField("account_number", "is too long"));
      }
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return reply(st);
      auto account = req->account_number().empty() ? accounts_->FindByPhone(req->phone_number())
                                                    : accounts_->FindByNumber(req->account_number());
      if (!account.ok()) return reply(account.status());
      auto input = std::make_unique<internal::UnlockInput>();
      *input->mutable_account() = *account;
      input->mutable_request()->PackFrom(*req);
      const internal::UnlockInput& message = *input;
      engine_->Create(kKind, "", req->request_id(), who, message, CallDeadline(*ctx),
                      Holding(std::move(input), Respond(std::move(reply),
                                                        [resp](engine::CaseView view) {
                                                          *resp = ToUnlockRequest(std::move(view));
                                                        })));
    });
  }

  ServerUnaryReactor* GetUnlockRequest(CallbackServerContext* ctx,
                                       const v1::GetUnlockRequestRequest* req,
                                       v1::UnlockRequest* resp) override {
    return ServeRead(env_, ctx, kService, "GetUnlockRequest", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kKind, kCollection, req->name());
      if (!view.ok()) return view.status();
      *resp = ToUnlockRequest(std::move(*view));
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListUnlockRequests(CallbackServerContext* ctx,
                                         const v1::ListUnlockRequestsRequest* req,
                                         v1::ListUnlockRequestsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListUnlockRequests", [=](const Actor&) -> absl::Status {
      if (!v1::UnlockState_IsValid(req->state())) return InvalidField("state", "unknown value");
      auto attention = SlaAttentionFilter(req->sla_attention());
      if (!attention.ok()) return attention.status();
      auto filter = OneFilter(
          {{"state", {"state", StateKey(req->state())}},
           {"account_number", {"account_number", req->account_number()}},
           {"imei", {"imei", req->imei()}},
           {"assignee", {engine::kAssigneeIndex, req->assignee()}},
           {"repeated_identity_failures",
            {"attention", req->repeated_identity_failures() ? "identity_failures" : ""}},
           *attention});
      if (!filter.ok()) return filter.status();
      return FillList(engine_, kKind, *filter, req->page_token(), req->page_size(),
                      resp->mutable_unlock_requests(), resp->mutable_next_page_token(),
                      ToUnlockRequest);
    });
  }

  ServerUnaryReactor* GetUnlockBoard(CallbackServerContext* ctx, const v1::GetUnlockBoardRequest*,
                                     v1::UnlockBoard* resp) override {
    return ServeRead(env_, ctx, kService, "GetUnlockBoard", [=](const Actor&) {
      return FillBoard(engine_, kKind, resp->mutable_columns(), resp->mutable_slas());
    });
  }

  ServerUnaryReactor* ListUnlockRequestEvents(CallbackServerContext* ctx,
                                              const v1::ListUnlockRequestEventsRequest* req,
                                              v1::ListUnlockRequestEventsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListUnlockRequestEvents", [=](const Actor&) {
      return FillEvents(engine_, kKind, kCollection, req->parent(), req->page_token(),
                        req->page_size(), resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  ServerUnaryReactor* VerifyIdentity(CallbackServerContext* ctx, const v1::VerifyIdentityRequest* req,
                                     v1::UnlockRequest* resp) override {
    return Act(ctx, "VerifyIdentity", wf::kUnlockVerifyIdentity, *req, req->etag(), resp);
  }
  ServerUnaryReactor* CheckEligibility(CallbackServerContext* ctx,
                                       const v1::CheckEligibilityRequest* req,
                                       v1::UnlockRequest* resp) override {
    return Act(ctx, "CheckEligibility", wf::kUnlockCheckEligibility, *req, req->etag(), resp);
  }
  ServerUnaryReactor* SubmitUnlock(CallbackServerContext* ctx, const v1::SubmitUnlockRequest* req,
                                   v1::UnlockRequest* resp) override {
    return Act(ctx, "SubmitUnlock", wf::kUnlockSubmit, *req, req->etag(), resp);
  }
  ServerUnaryReactor* CompleteUnlock(CallbackServerContext* ctx, const v1::CompleteUnlockRequest* req,
                                     v1::UnlockRequest* resp) override {
    return Act(ctx, "CompleteUnlock", wf::kUnlockComplete, *req, "", resp);
  }
  ServerUnaryReactor* ResendConfirmation(CallbackServerContext* ctx,
                                         const v1::ResendConfirmationRequest* req,
                                         v1::UnlockRequest* resp) override {
    return Act(ctx, "ResendConfirmation", wf::kUnlockResendConfirmation, *req, req->etag(), resp);
  }
  ServerUnaryReactor* EscalateUnlock(CallbackServerContext* ctx, const v1::EscalateUnlockRequest* req,
                                     v1::UnlockRequest* resp) override {
    return Act(ctx, "EscalateUnlock", wf::kUnlockEscalate, *req, req->etag(), resp);
  }
  ServerUnaryReactor* CancelUnlockRequest(CallbackServerContext* ctx,
                                          const v1::CancelUnlockRequestRequest* req,
                                          v1::UnlockRequest* resp) override {
    return Act(ctx, "CancelUnlockRequest", wf::kUnlockCancel, *req, req->etag(), resp);
  }

  ServerUnaryReactor* AddUnlockRequestComment(CallbackServerContext* ctx,
                                              const v1::AddUnlockRequestCommentRequest* req,
                                              v1::UnlockRequest* resp) override {
    return Act(ctx, "AddUnlockRequestComment", wf::kComment, *req, req->etag(), resp);
  }

  ServerUnaryReactor* AssignUnlockRequest(CallbackServerContext* ctx, const v1::AssignUnlockRequestRequest* req,
                                          v1::UnlockRequest* resp) override {
    return Act(ctx, "AssignUnlockRequest", wf::kAssign, *req, req->etag(), resp);
  }

 private:
  // Every action: the account as the directory has it now goes with it.
  template <typename Request>
  ServerUnaryReactor* Act(CallbackServerContext* ctx, const char* method, const char* action,
                          const Request& req, const std::string& etag, v1::UnlockRequest* resp) {
    return ServeChange(env_, ctx, kService, method, [=, &req](const Actor& who, Reply reply) {
      ActOnCase(
          engine_, kKind, kCollection, req.name(), etag, action, who, CallDeadline(*ctx),
          [&](const engine::CaseView& current)
              -> absl::StatusOr<std::unique_ptr<google::protobuf::Message>> {
            auto account = accounts_->FindByNumber(current.record.unlock().account_number());
            if (absl::IsNotFound(account.status())) {
              return absl::FailedPreconditionError(
                  "the request's account is no longer in the directory");
            }
            if (!account.ok()) return account.status();
            auto input = std::make_unique<internal::UnlockInput>();
            *input->mutable_account() = *account;
            input->mutable_request()->PackFrom(req);
            return std::unique_ptr<google::protobuf::Message>(std::move(input));
          },
          Respond(std::move(reply),
                  [resp](engine::CaseView view) { *resp = ToUnlockRequest(std::move(view)); }));
    });
  }

  engine::Engine* engine_;
  directory::AccountDirectory* accounts_;
  RpcEnv env_;
};

}  // namespace

v1::UnlockRequest ToUnlockRequest(engine::CaseView view) {
  auto& r = view.record;
  auto& u = *r.mutable_unlock();
  v1::UnlockRequest out;
  out.set_name(absl::StrCat(kCollection, "/", r.id()));
  out.set_account_number(std::move(*u.mutable_account_number()));
  out.set_state(StateValue<v1::UnlockState>(r.state()));
  out.set_assignee(std::move(*r.mutable_assignee()));
  out.set_identity_failures(u.identity_failures());
  out.set_imei(std::move(*u.mutable_imei()));
  out.set_device_model(std::move(*u.mutable_device_model()));
  for (int rule : u.failed_rules()) out.add_failed_rules(static_cast<v1::EligibilityRule>(rule));
  out.set_failure_reason(std::move(*u.mutable_failure_reason()));
  out.set_escalation_note(std::move(*u.mutable_escalation_note()));
  out.set_submissions(u.submissions());
  for (auto& sla : view.slas) out.mutable_slas()->Add(std::move(sla));
  for (const auto& sla : out.slas()) {
    if (sla.name() != wf::kUnlockSla) continue;
    for (const auto& d : sla.deadlines()) {
      if (!d.has_due_time()) continue;
      if (d.rung() == "warning") *out.mutable_expected_from_time() = d.due_time();
      if (d.rung() == "breach") *out.mutable_expected_by_time() = d.due_time();
    }
  }
  *out.mutable_create_time() = std::move(*r.mutable_create_time());
  *out.mutable_update_time() = std::move(*r.mutable_update_time());
  *out.mutable_state_change_time() = std::move(*r.mutable_state_change_time());
  out.set_etag(absl::StrCat(view.version));
  return out;
}

std::unique_ptr<v1::UnlockService::CallbackService> NewUnlockService(
    engine::Engine* engine, directory::AccountDirectory* accounts, RpcEnv env) {
  return std::make_unique<UnlockService>(engine, accounts, env);
}

}  // namespace casework::rpc
