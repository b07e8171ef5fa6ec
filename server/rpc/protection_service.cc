#include "server/rpc/protection_service.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/engine/page_token.h"
#include "server/rpc/case_queries.h"
#include "server/workflow/enrollment_workflow.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;
namespace wf = workflow;

constexpr char kService[] = "casework.v1.ProtectionClaimService";
constexpr char kCollection[] = "enrollments";
constexpr char kKind[] = "enrollment";

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
    return Serve(env_, ctx, kService, "GetProtectionPlan", [=](const Actor&) -> absl::Status {
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
    return Serve(env_, ctx, kService, "ListProtectionPlans", [=](const Actor&) -> absl::Status {
      if (req->page_size() < 0) return InvalidField("page_size", "must not be negative");
      const int limit = req->page_size() == 0 ? 50 : std::min(req->page_size(), 500);
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

  ServerUnaryReactor* UpdateProtectionPlan(CallbackServerContext* ctx,
                                           const v1::UpdateProtectionPlanRequest* req,
                                           v1::ProtectionPlan* resp) override {
    return Serve(env_, ctx, kService, "UpdateProtectionPlan", [=](const Actor& who) -> absl::Status {
      if (who.role != wf::kAdmin) {
        return absl::PermissionDeniedError("UpdateProtectionPlan requires role admin");
      }
      auto version = ParseEtag(req->protection_plan().etag());
      if (!version.ok()) return InvalidField("protection_plan.etag", "is not an etag this server issued");
      auto saved = plans_->Put(req->protection_plan(), *version, req->allow_missing());
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* CreateEnrollment(CallbackServerContext* ctx,
                                       const v1::CreateEnrollmentRequest* req,
                                       v1::Enrollment* resp) override {
    return Serve(env_, ctx, kService, "CreateEnrollment", [=](const Actor& who) -> absl::Status {
      if (req->request_id().size() > 128) return InvalidField("request_id", "must be at most 128 bytes");
      internal::EnrollmentInput input;
      if (auto plan = FindPlan(req->enrollment().plan_id()); plan.ok()) {
        *input.mutable_plan() = *plan;
      } else if (!absl::IsNotFound(plan.status()) && !absl::IsInvalidArgument(plan.status())) {
        return plan.status();
      }
      input.mutable_request()->PackFrom(*req);
      absl::StatusOr<engine::CaseView> view;
      for (int attempt = 0; attempt < 3; ++attempt) {  // a drawn plan number may be taken
        input.set_plan_number(NewPlanNumber());
        view = engine_->Create(kKind, "", req->request_id(), who, input);
        if (!absl::IsAlreadyExists(view.status())) break;
      }
      if (!view.ok()) return view.status();
      *resp = ToEnrollment(*view);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* GetEnrollment(CallbackServerContext* ctx, const v1::GetEnrollmentRequest* req,
                                    v1::Enrollment* resp) override {
    return Serve(env_, ctx, kService, "GetEnrollment", [=](const Actor&) -> absl::Status {
      auto view = GetCase(engine_, kKind, kCollection, req->name());
      if (!view.ok()) return view.status();
      *resp = ToEnrollment(*view);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListEnrollments(CallbackServerContext* ctx,
                                      const v1::ListEnrollmentsRequest* req,
                                      v1::ListEnrollmentsResponse* resp) override {
    return Serve(env_, ctx, kService, "ListEnrollments", [=](const Actor&) -> absl::Status {
      auto filter = OneFilter({{"plan_number", {"plan_number", req->plan_number()}},
                               {"email", {"email", absl::AsciiStrToLower(req->email())}},
                               {"device", {"device", req->device()}}});
      if (!filter.ok()) return filter.status();
      auto page = engine_->List(kKind, *filter, req->page_token(), req->page_size());
      if (!page.ok()) return page.status();
      for (const auto& c : page->cases) *resp->add_enrollments() = ToEnrollment(c);
      resp->set_next_page_token(page->next_page_token);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListEnrollmentEvents(CallbackServerContext* ctx,
                                           const v1::ListEnrollmentEventsRequest* req,
                                           v1::ListEnrollmentEventsResponse* resp) override {
    return Serve(env_, ctx, kService, "ListEnrollmentEvents", [=](const Actor&) {
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
  ServerUnaryReactor* CancelEnrollment(CallbackServerContext* ctx,
                                       const v1::CancelEnrollmentRequest* req,
                                       v1::Enrollment* resp) override {
    return Act(ctx, "CancelEnrollment", wf::kEnrollmentCancel, *req, "", resp);
  }

 private:
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
    return Serve(env_, ctx, kService, method, [=, &req](const Actor& who) -> absl::Status {
      auto view = ActOnCase(
          engine_, kKind, kCollection, req.name(), req.etag(), action, who,
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
            input->mutable_request()->PackFrom(req);
            return std::unique_ptr<google::protobuf::Message>(std::move(input));
          });
      if (!view.ok()) return view.status();
      *resp = ToEnrollment(*view);
      return absl::OkStatus();
    });
  }

  engine::Engine* engine_;
  directory::PlanCatalogue* plans_;
  RpcEnv env_;
};

}  // namespace

v1::Enrollment ToEnrollment(const engine::CaseView& view) {
  const auto& r = view.record;
  const auto& e = r.enrollment();
  v1::Enrollment out;
  out.set_name(absl::StrCat(kCollection, "/", r.id()));
  out.set_plan_number(e.plan_number());
  v1::EnrollmentState state = v1::ENROLLMENT_STATE_UNSPECIFIED;
  v1::EnrollmentState_Parse(absl::StrCat("ENROLLMENT_STATE_", r.state()), &state);
  out.set_state(state);
  out.set_plan_id(e.plan_id());
  *out.mutable_contact() = e.contact();
  out.set_contact_status(e.contact_status());
  *out.mutable_devices() = e.devices();
  out.set_payment_method_ref(e.payment_method_ref());
  *out.mutable_create_time() = r.create_time();
  *out.mutable_update_time() = r.update_time();
  out.set_etag(absl::StrCat(view.version));
  return out;
}

std::unique_ptr<v1::ProtectionClaimService::CallbackService> NewProtectionService(
    engine::Engine* engine, directory::PlanCatalogue* plans, RpcEnv env) {
  return std::make_unique<ProtectionService>(engine, plans, env);
}

}  // namespace casework::rpc
