#include "server/rpc/otp_support_service.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/rpc/case_queries.h"
#include "server/workflow/otp_workflow.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;
namespace wf = workflow;

constexpr char kService[] = "casework.v1.OtpSupportService";
constexpr const char* kCollection = workflow::kOtpCollection;
constexpr const char* kKind = workflow::kOtpKind;

class OtpSupportService final : public v1::OtpSupportService::CallbackService {
 public:
  OtpSupportService(engine::Engine* engine, directory::ProfileDirectory* profiles, RpcEnv env)
      : engine_(engine), profiles_(profiles), env_(env) {}

  ServerUnaryReactor* CreateOtpTicket(CallbackServerContext* ctx,
                                      const v1::CreateOtpTicketRequest* req,
                                      v1::OtpTicket* resp) override {
    return ServeChange(env_, ctx, kService, "CreateOtpTicket", [=](const Actor& who, Reply reply) {
      if (req->profile_id().empty() || req->profile_id().size() > 64) {
        return reply(InvalidField("profile_id", "is required (at most 64 bytes)"));
      }
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return reply(st);
      auto profile = profiles_->Find(req->profile_id());
      if (!profile.ok()) return reply(profile.status());
      auto input = std::make_unique<internal::OtpInput>();
      *input->mutable_profile() = *profile;
      input->mutable_request()->PackFrom(*req);
      const internal::OtpInput& message = *input;
      engine_->Create(kKind, "", req->request_id(), who, message, CallDeadline(*ctx),
                      Holding(std::move(input), Respond(std::move(reply),
                                                        [resp](engine::CaseView view) {
                                                          *resp = ToOtpTicket(std::move(view));
                                                        })));
    });
  }

  ServerUnaryReactor* GetOtpTicket(CallbackServerContext* ctx, const v1::GetOtpTicketRequest* req,
                                   v1::OtpTicket* resp) override {
    return ServeRead(env_, ctx, kService, "GetOtpTicket", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kKind, kCollection, req->name());
      if (!view.ok()) return view.status();
      *resp = ToOtpTicket(std::move(*view));
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListOtpTickets(CallbackServerContext* ctx, const v1::ListOtpTicketsRequest* req,
                                     v1::ListOtpTicketsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListOtpTickets", [=](const Actor&) -> absl::Status {
      if (!v1::OtpState_IsValid(req->state())) return InvalidField("state", "unknown value");
      if (!v1::EscalationTarget_IsValid(req->escalation_target())) {
        return InvalidField("escalation_target", "unknown value");
      }
      const v1::EscalationTarget target = req->escalation_target();
      auto attention = SlaAttentionFilter(req->sla_attention());
      if (!attention.ok()) return attention.status();
      auto filter = OneFilter(
          {{"state", {"state", StateKey(req->state())}},
           {"profile_id", {"profile_id", req->profile_id()}},
           {"assignee", {engine::kAssigneeIndex, req->assignee()}},
           {"escalation_target",
            {"escalation", target == v1::ESCALATION_TARGET_PRODUCT ? "product"
                           : target == v1::ESCALATION_TARGET_OPS   ? "ops"
                                                                   : ""}},
           *attention});
      if (!filter.ok()) return filter.status();
      return FillList(engine_, kKind, *filter, req->page_token(), req->page_size(),
                      resp->mutable_otp_tickets(), resp->mutable_next_page_token(), ToOtpTicket);
    });
  }

  ServerUnaryReactor* GetOtpBoard(CallbackServerContext* ctx, const v1::GetOtpBoardRequest*,
                                  v1::OtpBoard* resp) override {
    return ServeRead(env_, ctx, kService, "GetOtpBoard", [=](const Actor&) {
      return FillBoard(engine_, kKind, resp->mutable_columns(), resp->mutable_slas());
    });
  }

  ServerUnaryReactor* ListOtpTicketEvents(CallbackServerContext* ctx,
                                          const v1::ListOtpTicketEventsRequest* req,
                                          v1::ListOtpTicketEventsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListOtpTicketEvents", [=](const Actor&) {
      return FillEvents(engine_, kKind, kCollection, req->parent(), req->page_token(),
                        req->page_size(), resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  ServerUnaryReactor* RecordVerification(CallbackServerContext* ctx,
                                         const v1::RecordVerificationRequest* req,
                                         v1::OtpTicket* resp) override {
    return Act(ctx, "RecordVerification", wf::kOtpRecordVerification, *req, resp);
  }
  ServerUnaryReactor* RecordFirstLevel(CallbackServerContext* ctx,
                                       const v1::RecordFirstLevelRequest* req,
                                       v1::OtpTicket* resp) override {
    return Act(ctx, "RecordFirstLevel", wf::kOtpRecordFirstLevel, *req, resp);
  }
  ServerUnaryReactor* CorrectProfileContact(CallbackServerContext* ctx,
                                            const v1::CorrectProfileContactRequest* req,
                                            v1::OtpTicket* resp) override {
    return Act(ctx, "CorrectProfileContact", wf::kOtpCorrectContact, *req, resp);
  }
  ServerUnaryReactor* SendTestMail(CallbackServerContext* ctx, const v1::SendTestMailRequest* req,
                                   v1::OtpTicket* resp) override {
    return Act(ctx, "SendTestMail", wf::kOtpSendTestMail, *req, resp);
  }
  ServerUnaryReactor* RecordTestMailResult(CallbackServerContext* ctx,
                                           const v1::RecordTestMailResultRequest* req,
                                           v1::OtpTicket* resp) override {
    return Act(ctx, "RecordTestMailResult", wf::kOtpRecordTestMailResult, *req, resp);
  }
  ServerUnaryReactor* RecordOtpResult(CallbackServerContext* ctx,
                                      const v1::RecordOtpResultRequest* req,
                                      v1::OtpTicket* resp) override {
    return Act(ctx, "RecordOtpResult", wf::kOtpRecordOtpResult, *req, resp);
  }
  ServerUnaryReactor* DecideEscalation(CallbackServerContext* ctx,
                                       const v1::DecideEscalationRequest* req,
                                       v1::OtpTicket* resp) override {
    return Act(ctx, "DecideEscalation", wf::kOtpDecideEscalation, *req, resp);
  }
  ServerUnaryReactor* CloseOtpTicket(CallbackServerContext* ctx, const v1::CloseOtpTicketRequest* req,
                                     v1::OtpTicket* resp) override {
    return Act(ctx, "CloseOtpTicket", wf::kOtpClose, *req, resp);
  }

  ServerUnaryReactor* AddOtpTicketComment(CallbackServerContext* ctx, const v1::AddOtpTicketCommentRequest* req,
                                          v1::OtpTicket* resp) override {
    return Act(ctx, "AddOtpTicketComment", wf::kComment, *req, resp);
  }

  ServerUnaryReactor* AssignOtpTicket(CallbackServerContext* ctx, const v1::AssignOtpTicketRequest* req,
                                      v1::OtpTicket* resp) override {
    return Act(ctx, "AssignOtpTicket", wf::kAssign, *req, resp);
  }

 private:
  // Every action: the profile as the directory has it now goes with it.
  template <typename Request>
  ServerUnaryReactor* Act(CallbackServerContext* ctx, const char* method, const char* action,
                          const Request& req, v1::OtpTicket* resp) {
    return ServeChange(env_, ctx, kService, method, [=, &req](const Actor& who, Reply reply) {
      ActOnCase(
          engine_, kKind, kCollection, req.name(), req.etag(), action, who, CallDeadline(*ctx),
          [&](const engine::CaseView& current)
              -> absl::StatusOr<std::unique_ptr<google::protobuf::Message>> {
            auto profile = profiles_->Find(current.record.otp().profile_id());
            if (absl::IsNotFound(profile.status())) {
              return absl::FailedPreconditionError("the ticket's profile is no longer in the directory");
            }
            if (!profile.ok()) return profile.status();
            auto input = std::make_unique<internal::OtpInput>();
            *input->mutable_profile() = *profile;
            input->mutable_request()->PackFrom(req);
            return std::unique_ptr<google::protobuf::Message>(std::move(input));
          },
          Respond(std::move(reply),
                  [resp](engine::CaseView view) { *resp = ToOtpTicket(std::move(view)); }));
    });
  }

  engine::Engine* engine_;
  directory::ProfileDirectory* profiles_;
  RpcEnv env_;
};

}  // namespace

v1::OtpTicket ToOtpTicket(engine::CaseView view) {
  auto& r = view.record;
  auto& o = *r.mutable_otp();
  v1::OtpTicket out;
  out.set_name(absl::StrCat(kCollection, "/", r.id()));
  out.set_profile_id(std::move(*o.mutable_profile_id()));
  out.set_state(StateValue<v1::OtpState>(r.state()));
  out.set_assignee(std::move(*r.mutable_assignee()));
  *out.mutable_passed_questions() = std::move(*o.mutable_passed_questions());
  out.set_tried_sms(o.tried_sms());
  out.set_tried_email(o.tried_email());
  out.set_checked_spam(o.checked_spam());
  out.set_next_step(std::move(*o.mutable_next_step()));
  out.set_suspected_account_takeover(o.suspected_account_takeover());
  out.set_escalation_target(o.escalation_target());
  out.set_escalation_note(std::move(*o.mutable_escalation_note()));
  out.set_ticket_form(std::move(*o.mutable_ticket_form()));
  out.set_query_type(std::move(*o.mutable_query_type()));
  for (auto& sla : view.slas) out.mutable_slas()->Add(std::move(sla));
  *out.mutable_create_time() = std::move(*r.mutable_create_time());
  *out.mutable_update_time() = std::move(*r.mutable_update_time());
  *out.mutable_state_change_time() = std::move(*r.mutable_state_change_time());
  out.set_etag(absl::StrCat(view.version));
  return out;
}

std::unique_ptr<v1::OtpSupportService::CallbackService> NewOtpSupportService(
    engine::Engine* engine, directory::ProfileDirectory* profiles, RpcEnv env) {
  return std::make_unique<OtpSupportService>(engine, profiles, env);
}

}  // namespace casework::rpc
