#include "server/rpc/protection_service.h"

#include <random>
#include <type_traits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/engine/page_token.h"
#include "server/rpc/case_queries.h"
#include "server/workflow/claim_workflow.h"
#include "server/workflow/enrollment_workflow.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;
namespace wf = workflow;

constexpr char kService[] = "casework.v1.ProtectionClaimService";
constexpr const char* kCollection = workflow::kEnrollmentCollection;
constexpr const char* kKind = workflow::kEnrollmentKind;
constexpr const char* kClaims = workflow::kClaimCollection;
constexpr const char* kClaimKind = workflow::kClaimKind;

std::string NewPlanNumber() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return wf::FormatPlanNumber(absl::StrCat(10000000 + rng() % 90000000));
}

class ProtectionService final : public v1::ProtectionClaimService::CallbackService {
 public:
  ProtectionService(engine::Engine* engine, directory::PlanCatalogue* plans, RpcEnv env)
      : engine_(engine), plans_(plans), env_(env) {}

  ServerUnaryReactor* GetProtectionPlan(CallbackServerContext* ctx,
                                        const v1::GetProtectionPlanRequest* req,
                                        v1::ProtectionPlan* resp) override {
    return ServeRead(env_, ctx, kService, "GetProtectionPlan", [=](const Actor&) -> absl::Status {
      auto id = ParseName(req->name(), "protectionPlans");
      if (!id.ok()) return id.status();
      auto plan = plans_->Get(*id);
      if (!plan.ok()) return plan.status();
      *resp = *std::move(plan);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListProtectionPlans(CallbackServerContext* ctx,
                                          const v1::ListProtectionPlansRequest* req,
                                          v1::ListProtectionPlansResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListProtectionPlans", [=](const Actor&) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      const int limit = *page_limit;
      auto after = engine::DecodePageToken(req->page_token(), "protection_plans");
      if (!after.ok()) return after.status();
      auto list = plans_->List(*after, limit + 1);
      if (!list.ok()) return list.status();
      for (auto& p : *list) {
        if (resp->protection_plans_size() == limit) {
          resp->set_next_page_token(engine::EncodePageToken(
              "protection_plans", resp->protection_plans(limit - 1).plan_id()));
          break;
        }
        *resp->add_protection_plans() = std::move(p);
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* CreateProtectionPlan(CallbackServerContext* ctx,
                                           const v1::CreateProtectionPlanRequest* req,
                                           v1::ProtectionPlan* resp) override {
    return Serve(env_, ctx, kService, "CreateProtectionPlan", [=](const Actor&) -> absl::Status {
      return SavePlan(req->protection_plan(), 0, true, google::protobuf::FieldMask(), resp);
    });
  }

  ServerUnaryReactor* UpdateProtectionPlan(CallbackServerContext* ctx,
                                           const v1::UpdateProtectionPlanRequest* req,
                                           v1::ProtectionPlan* resp) override {
    return Serve(env_, ctx, kService, "UpdateProtectionPlan", [=](const Actor&) -> absl::Status {
      auto version = ParseEtag(req->protection_plan().etag());
      if (!version.ok()) return InvalidField("protection_plan.etag", "is not an etag this server issued");
      return SavePlan(req->protection_plan(), *version, req->allow_missing(), req->update_mask(), resp);
    });
  }

  ServerUnaryReactor* CreateEnrollment(CallbackServerContext* ctx,
                                       const v1::CreateEnrollmentRequest* req,
                                       v1::Enrollment* resp) override {
    return ServeChange(env_, ctx, kService, "CreateEnrollment", [=](const Actor& who, Reply reply) {
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return reply(st);
      auto input = std::make_unique<internal::EnrollmentInput>();
      if (auto plan = FindPlan(req->enrollment().plan_id()); plan.ok()) {
        *input->mutable_plan() = *plan;
      } else if (!absl::IsNotFound(plan.status()) && !absl::IsInvalidArgument(plan.status())) {
        return reply(plan.status());
      }
      std::vector<std::string> devices;
      for (const auto& d : req->enrollment().devices()) devices.push_back(wf::DeviceKey(d));
      if (auto s = NoteProtectedElsewhere(devices, "", input.get()); !s.ok()) return reply(s);
      input->mutable_request()->PackFrom(*req);
      CreateUnderNewPlanNumber(who, req->request_id(), std::move(input), 0, CallDeadline(*ctx),
                       Respond(std::move(reply), [resp](engine::CaseView view) {
                         *resp = ToEnrollment(std::move(view));
                       }));
    });
  }

  ServerUnaryReactor* GetEnrollment(CallbackServerContext* ctx, const v1::GetEnrollmentRequest* req,
                                    v1::Enrollment* resp) override {
    return ServeRead(env_, ctx, kService, "GetEnrollment", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kKind, kCollection, req->name());
      if (!view.ok()) return view.status();
      *resp = ToEnrollment(std::move(*view));
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListEnrollments(CallbackServerContext* ctx,
                                      const v1::ListEnrollmentsRequest* req,
                                      v1::ListEnrollmentsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListEnrollments", [=](const Actor&) -> absl::Status {
      auto filter = OneFilter({{"plan_number", {"plan_number", req->plan_number()}},
                               {"email", {"email", absl::AsciiStrToLower(req->email())}},
                               {"device", {"device", wf::DeviceKey(req->device())}}});
      if (!filter.ok()) return filter.status();
      return FillList(engine_, kKind, *filter, req->page_token(), req->page_size(),
                      resp->mutable_enrollments(), resp->mutable_next_page_token(), ToEnrollment);
    });
  }

  ServerUnaryReactor* ListEnrollmentEvents(CallbackServerContext* ctx,
                                           const v1::ListEnrollmentEventsRequest* req,
                                           v1::ListEnrollmentEventsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListEnrollmentEvents", [=](const Actor&) {
      return FillEvents(engine_, kKind, kCollection, req->parent(), req->page_token(),
                        req->page_size(), resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  ServerUnaryReactor* UpdateEnrollmentContact(CallbackServerContext* ctx,
                                              const v1::UpdateEnrollmentContactRequest* req,
                                              v1::Enrollment* resp) override {
    return Act(ctx, "UpdateEnrollmentContact", wf::kEnrollmentUpdateContact, *req, "", resp);
  }
  ServerUnaryReactor* UpdatePaymentMethod(CallbackServerContext* ctx,
                                          const v1::UpdatePaymentMethodRequest* req,
                                          v1::Enrollment* resp) override {
    return Act(ctx, "UpdatePaymentMethod", wf::kEnrollmentUpdatePayment, *req, "", resp);
  }
  ServerUnaryReactor* AddProtectedDevice(CallbackServerContext* ctx,
                                         const v1::AddProtectedDeviceRequest* req,
                                         v1::Enrollment* resp) override {
    return Act(ctx, "AddProtectedDevice", wf::kEnrollmentAddDevice, *req, "", resp);
  }
  ServerUnaryReactor* RemoveProtectedDevice(CallbackServerContext* ctx,
                                            const v1::RemoveProtectedDeviceRequest* req,
                                            v1::Enrollment* resp) override {
    return Act(ctx, "RemoveProtectedDevice", wf::kEnrollmentRemoveDevice, *req, "", resp);
  }
  ServerUnaryReactor* ChangePlan(CallbackServerContext* ctx, const v1::ChangePlanRequest* req,
                                 v1::Enrollment* resp) override {
    return Act(ctx, "ChangePlan", wf::kEnrollmentChangePlan, *req, req->plan_id(), resp);
  }
  ServerUnaryReactor* VerifyEnrollmentContact(CallbackServerContext* ctx,
                                              const v1::VerifyEnrollmentContactRequest* req,
                                              v1::Enrollment* resp) override {
    return Act(ctx, "VerifyEnrollmentContact", wf::kEnrollmentVerifyContact, *req, "", resp);
  }
  ServerUnaryReactor* ReportContactBounced(CallbackServerContext* ctx,
                                           const v1::ReportContactBouncedRequest* req,
                                           v1::Enrollment* resp) override {
    return Act(ctx, "ReportContactBounced", wf::kEnrollmentContactBounced, *req, "", resp);
  }
  ServerUnaryReactor* AddEnrollmentComment(CallbackServerContext* ctx,
                                           const v1::AddEnrollmentCommentRequest* req,
                                           v1::Enrollment* resp) override {
    return Act(ctx, "AddEnrollmentComment", wf::kComment, *req, "", resp);
  }

  ServerUnaryReactor* ReportClaim(CallbackServerContext* ctx, const v1::ReportClaimRequest* req,
                                  v1::Claim* resp) override {
    return ServeChange(env_, ctx, kService, "ReportClaim", [=](const Actor& who, Reply reply) {
      if (!wf::IsPlanNumber(req->plan_number())) {
        return reply(
            InvalidField("plan_number", "must look like DP-1234-5678-9 (check the digits)"));
      }
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return reply(st);
      auto page = engine_->List(kKind, {"plan_number", req->plan_number()}, "", 1);
      if (!page.ok()) return reply(page.status());
      if (page->cases.empty()) {
        return reply(absl::NotFoundError(
            absl::StrCat("no enrollment with plan number ", req->plan_number())));
      }
      auto input = ClaimInputFor(page->cases.front());
      if (!input.ok()) return reply(input.status());
      (*input)->mutable_request()->PackFrom(*req);
      const internal::ClaimInput& message = **input;
      engine_->Create(kClaimKind, "", req->request_id(), who, message, CallDeadline(*ctx),
                      Holding(*std::move(input), Respond(std::move(reply),
                                                         [resp](engine::CaseView view) {
                                                           *resp = ToClaim(std::move(view));
                                                         })));
    });
  }

  ServerUnaryReactor* GetClaim(CallbackServerContext* ctx, const v1::GetClaimRequest* req,
                               v1::Claim* resp) override {
    return ServeRead(env_, ctx, kService, "GetClaim", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kClaimKind, kClaims, req->name());
      if (!view.ok()) return view.status();
      *resp = ToClaim(std::move(*view));
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListClaims(CallbackServerContext* ctx, const v1::ListClaimsRequest* req,
                                 v1::ListClaimsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListClaims", [=](const Actor&) -> absl::Status {
      if (!v1::ClaimState_IsValid(req->state())) return InvalidField("state", "unknown value");
      auto attention = SlaAttentionFilter(req->sla_attention());
      if (!attention.ok()) return attention.status();
      auto filter = OneFilter({{"state", {"state", StateKey(req->state())}},
                               {"plan_number", {"plan_number", req->plan_number()}},
                               {"assignee", {engine::kAssigneeIndex, req->assignee()}},
                               *attention});
      if (!filter.ok()) return filter.status();
      return FillList(engine_, kClaimKind, *filter, req->page_token(), req->page_size(),
                      resp->mutable_claims(), resp->mutable_next_page_token(), ToClaim);
    });
  }

  ServerUnaryReactor* GetClaimBoard(CallbackServerContext* ctx, const v1::GetClaimBoardRequest*,
                                    v1::ClaimBoard* resp) override {
    return ServeRead(env_, ctx, kService, "GetClaimBoard", [=](const Actor&) {
      return FillBoard(engine_, kClaimKind, resp->mutable_columns(), resp->mutable_slas());
    });
  }

  ServerUnaryReactor* GetClaimDocument(CallbackServerContext* ctx, const v1::GetClaimDocumentRequest* req,
                                       v1::ClaimDocumentContent* resp) override {
    return ServeRead(env_, ctx, kService, "GetClaimDocument", [=](const Actor&) -> absl::Status {
      if (req->document_id().empty()) return InvalidField("document_id", "is required");
      auto view = GetCase(engine_, kClaimKind, kClaims, req->name());
      if (!view.ok()) return view.status();
      for (const auto& doc : view->record.claim().documents()) {
        if (doc.document_id() != req->document_id()) continue;
        auto bytes = engine_->GetAttachment(kClaimKind, view->record.id(), doc.document_id());
        if (!bytes.ok()) return bytes.status();
        *resp->mutable_document() = doc;
        resp->set_content(*std::move(bytes));
        return absl::OkStatus();
      }
      return absl::NotFoundError("the claim has no document with that document_id");
    });
  }

  ServerUnaryReactor* ListClaimEvents(CallbackServerContext* ctx,
                                      const v1::ListClaimEventsRequest* req,
                                      v1::ListClaimEventsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListClaimEvents", [=](const Actor&) {
      return FillEvents(engine_, kClaimKind, kClaims, req->parent(), req->page_token(),
                        req->page_size(), resp->mutable_events(), resp->mutable_next_page_token());
    });
  }

  ServerUnaryReactor* RequestClaimDocuments(CallbackServerContext* ctx,
                                            const v1::RequestClaimDocumentsRequest* req,
                                            v1::Claim* resp) override {
    return ClaimAct(ctx, "RequestClaimDocuments", wf::kClaimRequestDocuments, *req, resp);
  }
  ServerUnaryReactor* AttachClaimDocument(CallbackServerContext* ctx,
                                          const v1::AttachClaimDocumentRequest* req,
                                          v1::Claim* resp) override {
    return ClaimAct(ctx, "AttachClaimDocument", wf::kClaimAttachDocument, *req, resp);
  }
  ServerUnaryReactor* StartClaimReview(CallbackServerContext* ctx,
                                       const v1::StartClaimReviewRequest* req,
                                       v1::Claim* resp) override {
    return ClaimAct(ctx, "StartClaimReview", wf::kClaimStartReview, *req, resp);
  }
  ServerUnaryReactor* AwaitClaimDocuments(CallbackServerContext* ctx,
                                          const v1::AwaitClaimDocumentsRequest* req,
                                          v1::Claim* resp) override {
    return ClaimAct(ctx, "AwaitClaimDocuments", wf::kClaimAwaitDocuments, *req, resp);
  }
  ServerUnaryReactor* ResumeClaimReview(CallbackServerContext* ctx,
                                        const v1::ResumeClaimReviewRequest* req,
                                        v1::Claim* resp) override {
    return ClaimAct(ctx, "ResumeClaimReview", wf::kClaimResumeReview, *req, resp);
  }
  ServerUnaryReactor* ResolveClaim(CallbackServerContext* ctx, const v1::ResolveClaimRequest* req,
                                   v1::Claim* resp) override {
    return ClaimAct(ctx, "ResolveClaim", wf::kClaimResolve, *req, resp);
  }
  ServerUnaryReactor* DenyClaim(CallbackServerContext* ctx, const v1::DenyClaimRequest* req,
                                v1::Claim* resp) override {
    return ClaimAct(ctx, "DenyClaim", wf::kClaimDeny, *req, resp);
  }

  ServerUnaryReactor* AddClaimComment(CallbackServerContext* ctx, const v1::AddClaimCommentRequest* req,
                                      v1::Claim* resp) override {
    return ClaimAct(ctx, "AddClaimComment", wf::kComment, *req, resp);
  }

  ServerUnaryReactor* AssignClaim(CallbackServerContext* ctx, const v1::AssignClaimRequest* req,
                                  v1::Claim* resp) override {
    return ClaimAct(ctx, "AssignClaim", wf::kAssign, *req, resp);
  }

  ServerUnaryReactor* CancelEnrollment(CallbackServerContext* ctx,
                                       const v1::CancelEnrollmentRequest* req,
                                       v1::Enrollment* resp) override {
    return Act(ctx, "CancelEnrollment", wf::kEnrollmentCancel, *req, "", resp);
  }

 private:
  // Stores a plan named by its name or plan_id (see PlanCatalogue::Put for
  // `version`), the fields of `mask` only when it names any.
  absl::Status SavePlan(v1::ProtectionPlan plan, int64_t version, bool allow_missing,
                        const google::protobuf::FieldMask& mask, v1::ProtectionPlan* resp) {
    auto id = UpdateTarget(plan.name(), plan.plan_id(), "protectionPlans", "protection_plan.");
    if (!id.ok()) return id.status();
    plan.set_plan_id(*id);
    auto read = [&] { return plans_->Get(*id); };
    if (auto s = ApplyUpdateMask(mask, allow_missing, read, &plan, &version); !s.ok()) return s;
    auto saved = plans_->Put(std::move(plan), version, allow_missing);
    if (!saved.ok()) return saved.status();
    *resp = *std::move(saved);
    return absl::OkStatus();
  }

  // The catalogue entry for `plan_id`; INVALID_ARGUMENT for a malformed id.
  absl::StatusOr<v1::ProtectionPlan> FindPlan(const std::string& plan_id) {
    if (plan_id.empty() || plan_id.size() > 40) return absl::InvalidArgumentError("bad plan id");
    return plans_->Get(plan_id);
  }

  // Every action: the plan it concerns goes with it — `target_plan` for a
  // change, otherwise the enrollment's current plan.
  template <typename Request>
  ServerUnaryReactor* Act(CallbackServerContext* ctx, const char* method, const char* action,
                          const Request& req, const std::string& target_plan, v1::Enrollment* resp) {
    return ServeChange(env_, ctx, kService, method, [=, &req](const Actor& who, Reply reply) {
      ActOnCase(
          engine_, kKind, kCollection, req.name(), req.etag(), action, who, CallDeadline(*ctx),
          [&](const engine::CaseView& current)
              -> absl::StatusOr<std::unique_ptr<google::protobuf::Message>> {
            auto input = std::make_unique<internal::EnrollmentInput>();
            const std::string plan_id =
                target_plan.empty() ? current.record.enrollment().plan_id() : target_plan;
            auto plan = FindPlan(plan_id);
            if (plan.ok()) {
              *input->mutable_plan() = *plan;
            } else if (!absl::IsNotFound(plan.status()) && !absl::IsInvalidArgument(plan.status())) {
              return plan.status();
            }
            if constexpr (std::is_same_v<Request, v1::AddProtectedDeviceRequest>) {
              auto s = NoteProtectedElsewhere({wf::DeviceKey(req.device())}, current.record.id(), input.get());
              if (!s.ok()) return s;
            }
            input->mutable_request()->PackFrom(req);
            return std::unique_ptr<google::protobuf::Message>(std::move(input));
          },
          Respond(std::move(reply),
                  [resp](engine::CaseView view) { *resp = ToEnrollment(std::move(view)); }));
    });
  }

  // Notes which of `devices` an active enrollment other than `self`
  // protects, for the workflow to refuse (the store's unique key on each
  // protected device is what holds against two calls at once).
  absl::Status NoteProtectedElsewhere(const std::vector<std::string>& devices, const std::string& self,
                                      internal::EnrollmentInput* input) {
    for (const auto& key : devices) {
      if (key.empty()) continue;
      std::string token;
      do {
        auto page = engine_->List(kKind, {"device", key}, token, 100);
        if (!page.ok()) return page.status();
        for (const auto& c : page->cases) {
          if (c.record.id() != self && c.record.state() == wf::kEnrollmentActive) {
            (*input->mutable_protected_elsewhere())[key] = c.record.enrollment().plan_number();
          }
        }
        token = page->next_page_token;
      } while (!token.empty());
    }
    return absl::OkStatus();
  }

  // Creates an enrollment under a newly drawn plan number; a number that is
  // taken is drawn again (three tries).
  void CreateUnderNewPlanNumber(const Actor& who, const std::string& request_id,
                                std::unique_ptr<internal::EnrollmentInput> input, int attempt,
                                absl::Time deadline, engine::CaseCallback done) {
    input->set_plan_number(NewPlanNumber());
    const internal::EnrollmentInput& message = *input;
    engine_->Create(kKind, "", request_id, who, message, deadline,
                    [this, who, request_id, input = std::move(input), attempt, deadline,
                     done = std::move(done)](absl::StatusOr<engine::CaseView> view) mutable {
                      if (absl::IsAlreadyExists(view.status()) && attempt < 2) {
                        return CreateUnderNewPlanNumber(who, request_id, std::move(input),
                                                        attempt + 1, deadline, std::move(done));
                      }
                      done(std::move(view));
                    });
  }

  // A claim command's input: the enrollment as it is now and every plan of
  // its history.
  absl::StatusOr<std::unique_ptr<internal::ClaimInput>> ClaimInputFor(
      const engine::CaseView& enrollment) {
    auto input = std::make_unique<internal::ClaimInput>();
    input->set_enrollment_id(enrollment.record.id());
    input->set_enrollment_state(enrollment.record.state());
    *input->mutable_enrollment_create_time() = enrollment.record.create_time();
    *input->mutable_enrollment() = enrollment.record.enrollment();
    for (const auto& period : enrollment.record.enrollment().plan_history()) {
      auto plan = plans_->Get(period.plan_id());
      if (plan.ok()) {
        (*input->mutable_plans())[period.plan_id()] = *plan;
      } else if (!absl::IsNotFound(plan.status())) {
        return plan.status();
      }
    }
    return input;
  }

  template <typename Request>
  ServerUnaryReactor* ClaimAct(CallbackServerContext* ctx, const char* method, const char* action,
                               const Request& req, v1::Claim* resp) {
    return ServeChange(env_, ctx, kService, method, [=, &req](const Actor& who, Reply reply) {
      ActOnCase(
          engine_, kClaimKind, kClaims, req.name(), req.etag(), action, who, CallDeadline(*ctx),
          [&](const engine::CaseView& current)
              -> absl::StatusOr<std::unique_ptr<google::protobuf::Message>> {
            auto enrollment = engine_->Load(kKind, current.record.claim().enrollment_id());
            if (!enrollment.ok()) return enrollment.status();
            auto input = ClaimInputFor(*enrollment);
            if (!input.ok()) return input.status();
            (*input)->mutable_request()->PackFrom(req);
            return std::unique_ptr<google::protobuf::Message>(*std::move(input));
          },
          Respond(std::move(reply), [resp](engine::CaseView view) { *resp = ToClaim(std::move(view)); }));
    });
  }

  engine::Engine* engine_;
  directory::PlanCatalogue* plans_;
  RpcEnv env_;
};

}  // namespace

v1::Enrollment ToEnrollment(engine::CaseView view) {
  auto& r = view.record;
  auto& e = *r.mutable_enrollment();
  v1::Enrollment out;
  out.set_name(absl::StrCat(kCollection, "/", r.id()));
  out.set_plan_number(std::move(*e.mutable_plan_number()));
  out.set_state(StateValue<v1::EnrollmentState>(r.state()));
  out.set_plan_id(std::move(*e.mutable_plan_id()));
  *out.mutable_contact() = std::move(*e.mutable_contact());
  out.set_contact_status(e.contact_status());
  *out.mutable_devices() = std::move(*e.mutable_devices());
  out.set_payment_method_ref(std::move(*e.mutable_payment_method_ref()));
  *out.mutable_create_time() = std::move(*r.mutable_create_time());
  *out.mutable_update_time() = std::move(*r.mutable_update_time());
  out.set_etag(absl::StrCat(view.version));
  return out;
}

v1::Claim ToClaim(engine::CaseView view) {
  auto& r = view.record;
  auto& c = *r.mutable_claim();
  v1::Claim out;
  out.set_name(absl::StrCat(kClaims, "/", r.id()));
  out.set_plan_number(std::move(*c.mutable_plan_number()));
  out.set_enrollment(absl::StrCat(kCollection, "/", c.enrollment_id()));
  out.set_state(StateValue<v1::ClaimState>(r.state()));
  out.set_channel(c.channel());
  out.set_peril(c.peril());
  out.set_incident_date(std::move(*c.mutable_incident_date()));
  out.set_description(std::move(*c.mutable_description()));
  out.set_device(std::move(*c.mutable_device()));
  for (int reason : c.denial_reasons()) out.add_denial_reasons(static_cast<v1::DenialReason>(reason));
  out.set_resolution(c.resolution());
  if (c.has_reimbursement()) *out.mutable_reimbursement() = std::move(*c.mutable_reimbursement());
  *out.mutable_documents() = std::move(*c.mutable_documents());
  out.set_documents_note(std::move(*c.mutable_documents_note()));
  out.set_assignee(std::move(*r.mutable_assignee()));
  for (auto& sla : view.slas) out.mutable_slas()->Add(std::move(sla));
  for (const auto& sla : out.slas()) {
    for (const auto& d : sla.deadlines()) {
      if (d.rung() == "breach" && d.has_due_time()) *out.mutable_expected_decision_time() = d.due_time();
    }
  }
  *out.mutable_create_time() = std::move(*r.mutable_create_time());
  *out.mutable_update_time() = std::move(*r.mutable_update_time());
  out.set_etag(absl::StrCat(view.version));
  return out;
}

std::unique_ptr<v1::ProtectionClaimService::CallbackService> NewProtectionService(
    engine::Engine* engine, directory::PlanCatalogue* plans, RpcEnv env) {
  return std::make_unique<ProtectionService>(engine, plans, env);
}

}  // namespace casework::rpc
