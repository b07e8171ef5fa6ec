#include "server/rpc/trade_in_service.h"

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/rpc/case_queries.h"
#include "server/workflow/trade_in_workflow.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;
namespace wf = workflow;

constexpr char kService[] = "casework.v1.TradeInService";
constexpr const char* kCollection = workflow::kTradeInCollection;
constexpr const char* kKind = workflow::kTradeInKind;

class TradeInService final : public v1::TradeInService::CallbackService {
 public:
  TradeInService(engine::Engine* engine, RpcEnv env) : engine_(engine), env_(env) {}

  ServerUnaryReactor* CreateTradeIn(CallbackServerContext* ctx,
                                    const v1::CreateTradeInRequest* req,
                                    v1::TradeIn* resp) override {
    return ServeChange(env_, ctx, kService, "CreateTradeIn", [=](const Actor& who, Reply reply) {
      if (!req->trade_in_id().empty() && !ParseName(absl::StrCat(kCollection, "/", req->trade_in_id()), kCollection).ok()) {
        return reply(InvalidField("trade_in_id", "must be 1 to 63 letters, digits or '-'"));
      }
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return reply(st);
      engine_->Create(kKind, req->trade_in_id(), req->request_id(), who, *req, CallDeadline(*ctx),
                      Respond(std::move(reply), [resp](engine::CaseView view) {
                        *resp = ToTradeIn(std::move(view));
                      }));
    });
  }

  ServerUnaryReactor* GetTradeIn(CallbackServerContext* ctx, const v1::GetTradeInRequest* req,
                                 v1::TradeIn* resp) override {
    return ServeRead(env_, ctx, kService, "GetTradeIn", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kKind, kCollection, req->name());
      if (!view.ok()) return view.status();
      *resp = ToTradeIn(std::move(*view));
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListTradeIns(CallbackServerContext* ctx,
                                   const v1::ListTradeInsRequest* req,
                                   v1::ListTradeInsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListTradeIns", [=](const Actor&) -> absl::Status {
      auto filter = FilterOf(*req);
      if (!filter.ok()) return filter.status();
      return FillList(engine_, kKind, *filter, req->page_token(), req->page_size(),
                      resp->mutable_trade_ins(), resp->mutable_next_page_token(), ToTradeIn);
    });
  }

  ServerUnaryReactor* GetTradeInBoard(CallbackServerContext* ctx,
                                      const v1::GetTradeInBoardRequest* req,
                                      v1::TradeInBoard* resp) override {
    return ServeRead(env_, ctx, kService, "GetTradeInBoard", [=](const Actor&) {
      return FillBoard(engine_, kKind, resp->mutable_columns(), resp->mutable_slas());
    });
  }

  ServerUnaryReactor* ListTradeInEvents(CallbackServerContext* ctx,
                                        const v1::ListTradeInEventsRequest* req,
                                        v1::ListTradeInEventsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListTradeInEvents", [=](const Actor&) {
      return FillEvents(engine_, kKind, kCollection, req->parent(), req->page_token(),
                        req->page_size(), resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  ServerUnaryReactor* ContactCustomer(CallbackServerContext* ctx,
                                      const v1::ContactCustomerRequest* req,
                                      v1::TradeIn* resp) override {
    return Act(ctx, "ContactCustomer", wf::kTradeInContactCustomer, *req, resp);
  }
  ServerUnaryReactor* RecordUnlockCode(CallbackServerContext* ctx,
                                       const v1::RecordUnlockCodeRequest* req,
                                       v1::TradeIn* resp) override {
    return Act(ctx, "RecordUnlockCode", wf::kTradeInRecordUnlockCode, *req, resp);
  }
  ServerUnaryReactor* AttachProofOfPurchase(CallbackServerContext* ctx,
                                            const v1::AttachProofOfPurchaseRequest* req,
                                            v1::TradeIn* resp) override {
    return Act(ctx, "AttachProofOfPurchase", wf::kTradeInAttachProof, *req, resp);
  }
  ServerUnaryReactor* ApproveProofOfPurchase(CallbackServerContext* ctx,
                                             const v1::ApproveProofOfPurchaseRequest* req,
                                             v1::TradeIn* resp) override {
    return Act(ctx, "ApproveProofOfPurchase", wf::kTradeInApproveProof, *req, resp);
  }
  ServerUnaryReactor* RejectProofOfPurchase(CallbackServerContext* ctx,
                                            const v1::RejectProofOfPurchaseRequest* req,
                                            v1::TradeIn* resp) override {
    return Act(ctx, "RejectProofOfPurchase", wf::kTradeInRejectProof, *req, resp);
  }
  ServerUnaryReactor* FlagProblem(CallbackServerContext* ctx,
                                  const v1::FlagProblemRequest* req,
                                  v1::TradeIn* resp) override {
    return Act(ctx, "FlagProblem", wf::kTradeInFlagProblem, *req, resp);
  }
  ServerUnaryReactor* CloseTradeIn(CallbackServerContext* ctx,
                                   const v1::CloseTradeInRequest* req,
                                   v1::TradeIn* resp) override {
    return Act(ctx, "CloseTradeIn", wf::kTradeInClose, *req, resp);
  }
  ServerUnaryReactor* CancelTradeIn(CallbackServerContext* ctx,
                                    const v1::CancelTradeInRequest* req,
                                    v1::TradeIn* resp) override {
    return Act(ctx, "CancelTradeIn", wf::kTradeInCancel, *req, resp);
  }
  ServerUnaryReactor* AddTradeInComment(CallbackServerContext* ctx,
                                        const v1::AddTradeInCommentRequest* req,
                                        v1::TradeIn* resp) override {
    return Act(ctx, "AddTradeInComment", wf::kComment, *req, resp);
  }
  ServerUnaryReactor* AssignTradeIn(CallbackServerContext* ctx, const v1::AssignTradeInRequest* req,
                                    v1::TradeIn* resp) override {
    return Act(ctx, "AssignTradeIn", wf::kAssign, *req, resp);
  }

  ServerUnaryReactor* RecordCustomerResponse(CallbackServerContext* ctx,
                                             const v1::RecordCustomerResponseRequest* req,
                                             v1::TradeIn* resp) override {
    return Act(ctx, "RecordCustomerResponse", wf::kTradeInCustomerResponded, *req, resp);
  }

  ServerUnaryReactor* RevealUnlockCode(CallbackServerContext* ctx,
                                       const v1::RevealUnlockCodeRequest* req,
                                       v1::RevealUnlockCodeResponse* resp) override {
    return ServeChange(env_, ctx, kService, "RevealUnlockCode", [=](const Actor& who, Reply reply) {
      auto id = ParseName(req->name(), kCollection);
      if (!id.ok()) return reply(id.status());
      engine_->Act(kKind, *id, -1, wf::kTradeInRevealUnlockCode, who, *req, CallDeadline(*ctx),
                   Respond(std::move(reply), [resp](const engine::CaseView& view) {
                     resp->set_unlock_code(view.reveal);
                   }));
    });
  }

  ServerUnaryReactor* GetProofOfPurchase(CallbackServerContext* ctx,
                                         const v1::GetProofOfPurchaseRequest* req,
                                         v1::ProofOfPurchase* resp) override {
    return ServeRead(env_, ctx, kService, "GetProofOfPurchase", [=](const Actor& who) -> absl::Status {
      auto id = ParseName(req->name(), kCollection);
      if (!id.ok()) return id.status();
      auto view = engine_->Get(kKind, *id);
      if (!view.ok()) return view.status();
      auto bytes = engine_->GetAttachment(kKind, *id, wf::kProofAttachment);
      if (!bytes.ok()) return bytes.status();
      const auto& summary = view->record.trade_in().proof_of_purchase();
      resp->set_content_type(summary.content_type());
      resp->set_file_name(summary.file_name());
      resp->set_status(summary.status());
      resp->set_content(*std::move(bytes));
      return absl::OkStatus();
    });
  }

 private:
  // Every state-changing action: parse name and etag, run, return the case.
  template <typename Request>
  ServerUnaryReactor* Act(CallbackServerContext* ctx, const char* method,
                          const char* action, const Request& req, v1::TradeIn* resp) {
    return ServeChange(env_, ctx, kService, method, [=, &req](const Actor& who, Reply reply) {
      auto id = ParseName(req.name(), kCollection);
      if (!id.ok()) return reply(id.status());
      auto version = ParseEtag(req.etag());
      if (!version.ok()) return reply(version.status());
      engine_->Act(kKind, *id, *version, action, who, req, CallDeadline(*ctx),
                   Respond(std::move(reply), [resp](engine::CaseView view) {
                     *resp = ToTradeIn(std::move(view));
                   }));
    });
  }

  static absl::StatusOr<engine::ListFilter> FilterOf(const v1::ListTradeInsRequest& req) {
    if (!v1::TradeInState_IsValid(req.state())) return InvalidField("state", "unknown value");
    auto attention = SlaAttentionFilter(req.sla_attention());
    if (!attention.ok()) return attention.status();
    return OneFilter({{"state", {"state", StateKey(req.state())}},
                      {"v_number", {"v_number", req.v_number()}},
                      {"s_number", {"s_number", req.s_number()}},
                      {"assignee", {engine::kAssigneeIndex, req.assignee()}},
                      *attention});
  }

  engine::Engine* engine_;
  RpcEnv env_;
};

}  // namespace

v1::TradeIn ToTradeIn(engine::CaseView view) {
  auto& r = view.record;
  auto& t = *r.mutable_trade_in();
  v1::TradeIn out;
  out.set_name(absl::StrCat(kCollection, "/", r.id()));
  out.set_v_number(std::move(*t.mutable_v_number()));
  out.set_s_number(std::move(*t.mutable_s_number()));
  out.set_state(StateValue<v1::TradeInState>(r.state()));
  out.set_problem(t.problem());
  out.set_problem_note(std::move(*t.mutable_problem_note()));
  out.set_product_name(std::move(*t.mutable_product_name()));
  *out.mutable_customer() = std::move(*t.mutable_customer());
  out.set_assignee(std::move(*r.mutable_assignee()));
  for (const auto& s : r.secrets()) {
    if (s.name() == "unlock_code") out.set_unlock_code_stored(true);
  }
  if (t.has_proof_of_purchase()) {
    *out.mutable_proof_of_purchase() = std::move(*t.mutable_proof_of_purchase());
  }
  out.set_reminders_sent(t.reminders_sent());
  for (auto& sla : view.slas) out.mutable_slas()->Add(std::move(sla));
  for (const auto& sla : out.slas()) {
    if (sla.name() != wf::kTradeInResponseSla || sla.status() != v1::SLA_STATUS_RUNNING) continue;
    for (const auto& d : sla.deadlines()) {
      if (d.fired() || !d.has_due_time() || d.rung().rfind("reminder.", 0) != 0) continue;
      if (!out.has_next_reminder_time() ||
          d.due_time().seconds() < out.next_reminder_time().seconds()) {
        *out.mutable_next_reminder_time() = d.due_time();
      }
    }
  }
  out.set_round(t.round());
  *out.mutable_create_time() = std::move(*r.mutable_create_time());
  *out.mutable_update_time() = std::move(*r.mutable_update_time());
  *out.mutable_state_change_time() = std::move(*r.mutable_state_change_time());
  out.set_etag(absl::StrCat(view.version));
  return out;
}

std::unique_ptr<v1::TradeInService::CallbackService> NewTradeInService(
    engine::Engine* engine, RpcEnv env) {
  return std::make_unique<TradeInService>(engine, env);
}

}  // namespace casework::rpc
