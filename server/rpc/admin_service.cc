#include "server/rpc/admin_service.h"

#include "casework/internal/records.pb.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/common/ids.h"
#include "server/common/log.h"
#include "server/common/personal_data.h"
#include "server/common/proto_time.h"
#include "server/common/secret_box.h"
#include "server/engine/page_token.h"
#include "server/notify/notifier.h"
#include "server/workflow/validation.h"
#include "server/workflow/workflow.h"

namespace casework::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using workflow::Actor;

constexpr char kService[] = "casework.v1.AdminService";

// Template ids are dotted names: "trade_in.contact.device_locked".
absl::StatusOr<std::string> TemplateId(const std::string& name, const std::string& field) {
  const std::string prefix = "templates/";
  const auto bad = InvalidField(field, "must look like templates/{procedure.name}");
  if (!absl::StartsWith(name, prefix)) return bad;
  std::string id = name.substr(prefix.size());
  if (id.empty() || id.size() > 100) return bad;
  for (char c : id) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_' && c != '.') return bad;
  }
  return id;
}

// An import needs rows; bad rows are reported one by one in the response.
// A dead letter as the API shows it; `key` is its dedupe key.
void ToDeadLetter(const std::string& case_id, const std::string& key,
                  const internal::OutboxMessage& m, v1::DeadLetter* out) {
  out->set_name(absl::StrCat("deadLetters/", key));
  out->set_case_id(case_id);
  out->set_template_id(m.template_id());
  out->set_channel(m.channel());
  out->set_attempts(m.attempts());
  out->set_last_error(m.last_error());
  *out->mutable_create_time() = m.create_time();
}

absl::Status CheckImport(const std::string& json_lines) {
  if (absl::StripAsciiWhitespace(json_lines).empty()) {
    return InvalidField("json_lines", "is required: one JSON object per line");
  }
  return absl::OkStatus();
}

constexpr char kAuditSpace[] = "audit";

v1::Backup BackupOf(const storage::BackupInfo& b) {
  v1::Backup out;
  out.set_name(absl::StrCat("backups/", b.id));
  if (b.damaged) {
    out.set_damaged(true);
    return out;
  }
  *out.mutable_create_time() = ToProto(b.create_time);
  out.set_size_bytes(b.size_bytes);
  out.set_file_count(b.file_count);
  return out;
}
constexpr size_t kMaxReasonBytes = 500;
}  // namespace

std::vector<std::string> ObserveBackups(const std::vector<storage::BackupInfo>& backups,
                                        metrics::Metrics* metrics) {
  std::vector<std::string> damaged;
  for (const auto& b : backups) {
    if (b.damaged) {
      damaged.push_back(absl::StrCat("backups/", b.id));
    } else {
      metrics->SetLastBackup(b.create_time);
    }
  }
  metrics->SetDamagedBackups(static_cast<int64_t>(damaged.size()));
  return damaged;
}

namespace {

class AdminService final : public v1::AdminService::CallbackService {
 public:
  AdminService(notify::TemplateStore* templates, sla::CalendarStore* calendars,
               engine::Engine* engine, directory::StoredAccountDirectory* accounts,
               directory::StoredProfileDirectory* profiles, storage::Repository* repo,
               const Clock* clock, std::string spool_dir, BackupPolicy backups, RpcEnv env)
      : templates_(templates),
        calendars_(calendars),
        engine_(engine),
        accounts_(accounts),
        profiles_(profiles),
        repo_(repo),
        clock_(clock),
        spool_dir_(std::move(spool_dir)),
        backups_(std::move(backups)),
        env_(env) {}

  ServerUnaryReactor* ListDeadLetters(CallbackServerContext* ctx,
                                      const v1::ListDeadLettersRequest* req,
                                      v1::ListDeadLettersResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListDeadLetters", [=](const Actor& who) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      const int limit = *page_limit;
      auto after = engine::DecodePageToken(req->page_token(), "dead_letters");
      if (!after.ok()) return after.status();
      const size_t split = after->find('\n');
      const std::string after_case = split == std::string::npos ? "" : after->substr(0, split);
      const std::string after_name = split == std::string::npos ? "" : after->substr(split + 1);
      auto items = repo_->ListDeadLetters(after_case, after_name, limit + 1);
      if (!items.ok()) return items.status();
      for (size_t i = 0; i < items->size(); ++i) {
        const auto& item = (*items)[i];
        if (static_cast<int>(i) == limit) {
          const auto& last = (*items)[i - 1];
          resp->set_next_page_token(
              engine::EncodePageToken("dead_letters", last.case_id + "\n" + last.name));
          break;
        }
        internal::OutboxMessage m;
        if (!m.ParseFromString(item.payload)) {
          return absl::DataLossError(absl::StrCat("dead letter ", item.name, " is damaged"));
        }
        ToDeadLetter(item.case_id, item.name, m, resp->add_dead_letters());
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* RetryDeadLetter(CallbackServerContext* ctx,
                                      const v1::RetryDeadLetterRequest* req,
                                      v1::DeadLetter* resp) override {
    return Serve(env_, ctx, kService, "RetryDeadLetter", [=](const Actor& who) -> absl::Status {
      // Dedupe keys are "{case id}-{event sequence}".
      auto key = ParseName(req->name(), "deadLetters");
      if (!key.ok()) return key.status();
      const size_t dash = key->rfind('-');
      if (dash == std::string::npos || dash == 0) {
        return InvalidField("name", "must look like deadLetters/{case id}-{sequence}");
      }
      const std::string case_id = key->substr(0, dash);
      auto requeued = engine_->RetryDeadLetter(case_id, *key, who);
      if (!requeued.ok()) return requeued.status();
      ToDeadLetter(case_id, *key, *requeued, resp);  // the message as it goes back out
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* EraseCustomerData(CallbackServerContext* ctx,
                                        const v1::EraseCustomerDataRequest* req,
                                        v1::EraseCustomerDataResponse* resp) override {
    return Serve(env_, ctx, kService, "EraseCustomerData", [=](const Actor& who) -> absl::Status {
      FieldErrors errors;
      if (req->email().empty() && req->phone_number().empty()) {
        errors.Add("email", "email or phone_number is required");
      }
      if (!req->email().empty() && !workflow::IsEmail(req->email())) {
        errors.Add("email", "must be a valid email address");
      }
      if (!req->phone_number().empty() && !workflow::IsE164(req->phone_number())) {
        errors.Add("phone_number", "must be in E.164 form, e.g. +31612345678");
      }
      if (req->reason().empty()) {
        errors.Add("reason", "is required, e.g. the privacy request's ticket number");
      } else if (req->reason().size() > kMaxReasonBytes || !workflow::IsCleanLine(req->reason())) {
        errors.Add("reason", "must be one line of at most 500 bytes of printable text");
      }
      if (auto st = errors.ToStatus(); !st.ok()) return st;

      std::set<std::string> subjects;
      for (const std::string& s : {EmailSubject(req->email()), PhoneSubject(req->phone_number())}) {
        if (!s.empty()) subjects.insert(s);
      }
      std::map<std::string, engine::CaseView> cases;  // by id
      for (const auto& subject : subjects) {
        auto found = engine_->FindBySubject(subject);
        if (!found.ok()) return found.status();
        for (auto& view : *found) cases.emplace(view.record.id(), std::move(view));
      }
      std::vector<std::vector<std::string>> open;
      for (const auto& [id, view] : cases) {
        if (!engine_->IsClosed(view.record)) {
          open.push_back({"CASE_OPEN", engine_->ResourceName(view.record.kind(), id),
                          absl::StrCat("in state ", view.record.state(), "; close or cancel it first")});
        }
      }
      if (!open.empty()) {
        return WithPreconditionFailure(
            absl::FailedPreconditionError(
                open.size() == 1
                    ? std::string("the customer has an open case; close or cancel it first")
                    : absl::StrCat("the customer has ", open.size(),
                                   " open cases; close or cancel them first")),
            open);
      }
      for (const auto& [id, view] : cases) {
        resp->add_cases(engine_->ResourceName(view.record.kind(), id));
      }
      if (req->validate_only()) {
        auto accounts = accounts_->EraseNaming(subjects, true);
        if (!accounts.ok()) return accounts.status();
        auto profiles = profiles_->EraseNaming(subjects, true);
        if (!profiles.ok()) return profiles.status();
        resp->set_directory_records_erased(*accounts + *profiles);
        return absl::OkStatus();
      }

      for (const auto& [id, view] : cases) {
        auto redacted = engine_->ErasePersonalData(id, who);
        if (!redacted.ok()) return redacted.status();
        resp->set_events_redacted(resp->events_redacted() + *redacted);
        resp->set_spool_files_removed(resp->spool_files_removed() +
                                      notify::RemoveSpooledCopies(spool_dir_, id));
      }
      auto accounts = accounts_->EraseNaming(subjects, false);
      if (!accounts.ok()) return accounts.status();
      auto profiles = profiles_->EraseNaming(subjects, false);
      if (!profiles.ok()) return profiles.status();
      resp->set_directory_records_erased(*accounts + *profiles);
      if (resp->cases_size() > 0 || resp->directory_records_erased() > 0) {
        if (auto st = repo_->Compact(); !st.ok()) return st;
      }

      const absl::Time now = clock_->Now();
      const std::string audit_id = NewCaseId(now);
      v1::AuditRecord audit;
      *audit.mutable_create_time() = ToProto(now);
      audit.mutable_actor()->set_principal(who.principal);
      audit.mutable_actor()->set_role(who.role);
      audit.set_action("EraseCustomerData");
      audit.set_reason(req->reason());
      for (const auto& subject : subjects) audit.add_subject_digests(Sha256Hex(subject));
      auto& counts = *audit.mutable_counts();
      counts["cases"] = resp->cases_size();
      counts["events_redacted"] = resp->events_redacted();
      counts["directory_records_erased"] = resp->directory_records_erased();
      counts["spool_files_removed"] = resp->spool_files_removed();
      auto written = repo_->PutRecord(kAuditSpace, audit_id, 0, audit.SerializeAsString());
      if (!written.ok()) return written.status();
      resp->set_audit_record(absl::StrCat("auditRecords/", audit_id));
      Log(LogLevel::kInfo, "personal_data_erased",
          {{"audit_record", audit_id}, {"principal", who.principal},
           {"cases", absl::StrCat(resp->cases_size())}});
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListAuditRecords(CallbackServerContext* ctx,
                                       const v1::ListAuditRecordsRequest* req,
                                       v1::ListAuditRecordsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListAuditRecords", [=](const Actor&) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      const int limit = *page_limit;
      auto after = engine::DecodePageToken(req->page_token(), "audit");
      if (!after.ok()) return after.status();
      auto records = repo_->ListRecords(kAuditSpace, *after, limit + 1);
      if (!records.ok()) return records.status();
      for (size_t i = 0; i < records->size(); ++i) {
        if (static_cast<int>(i) == limit) {
          resp->set_next_page_token(engine::EncodePageToken("audit", (*records)[i - 1].key));
          break;
        }
        const auto& r = (*records)[i];
        auto* out = resp->add_audit_records();
        if (!out->ParseFromString(r.value)) {
          return absl::DataLossError(absl::StrCat("audit record ", r.key, " is damaged"));
        }
        out->set_name(absl::StrCat("auditRecords/", r.key));
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* CreateBackup(CallbackServerContext* ctx, const v1::CreateBackupRequest* req,
                                   v1::Backup* resp) override {
    return Serve(env_, ctx, kService, "CreateBackup", [=](const Actor& who) -> absl::Status {
      if (auto st = CheckRequestId(req->request_id()); !st.ok()) return st;
      const absl::Time start = absl::Now();
      auto backup = repo_->CreateBackup(backups_.folder, backups_.keep, req->request_id());
      if (!backup.ok()) return backup.status();
      *resp = BackupOf(*backup);
      if (backup->repeated) {
        Log(LogLevel::kInfo, "backup_repeated", {{"backup", resp->name()}, {"principal", who.principal}});
        return absl::OkStatus();
      }
      // It is the newest good backup, and taking it deleted every damaged
      // one before it: the figures follow without reading the folder again.
      ObserveBackups({*backup}, env_.metrics);
      Log(LogLevel::kInfo, "backup_created",
          {{"backup", resp->name()}, {"principal", who.principal}, {"folder", backups_.folder},
           {"bytes", absl::StrCat(backup->size_bytes)},
           {"damaged_removed", absl::StrCat(backup->damaged_removed)},
           {"seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - start))}});
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListBackups(CallbackServerContext* ctx, const v1::ListBackupsRequest* req,
                                  v1::ListBackupsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListBackups", [=](const Actor&) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      auto after = engine::DecodePageToken(req->page_token(), "backups");
      if (!after.ok()) return after.status();
      int64_t after_id = 0;
      if (!after->empty() && !absl::SimpleAtoi(*after, &after_id)) {
        return InvalidField("page_token", "is not a token of this list");
      }
      auto backups = repo_->ListBackups(backups_.folder);
      if (!backups.ok()) return backups.status();
      ObserveBackups(*backups, env_.metrics);
      int64_t last = after_id;
      for (const auto& b : *backups) {
        if (b.id <= after_id) continue;
        if (resp->backups_size() == *page_limit) {
          resp->set_next_page_token(engine::EncodePageToken("backups", absl::StrCat(last)));
          break;
        }
        *resp->add_backups() = BackupOf(b);
        last = b.id;
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* GetProfile(CallbackServerContext* ctx, const v1::GetProfileRequest* req,
                                 v1::CustomerProfile* resp) override {
    return ServeRead(env_, ctx, kService, "GetProfile", [=](const Actor&) -> absl::Status {
      const std::string prefix = "profiles/";
      if (req->name().rfind(prefix, 0) != 0 || req->name().size() == prefix.size() ||
          req->name().size() > 80) {
        return InvalidField("name", "must look like profiles/{profile_id}");
      }
      auto profile = profiles_->Find(req->name().substr(prefix.size()));
      if (!profile.ok()) return profile.status();
      *resp = *std::move(profile);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* UpdateProfile(CallbackServerContext* ctx, const v1::UpdateProfileRequest* req,
                                    v1::CustomerProfile* resp) override {
    return Serve(env_, ctx, kService, "UpdateProfile", [=](const Actor& who) -> absl::Status {
      auto version = ParseEtag(req->profile().etag());
      if (!version.ok()) return InvalidField("profile.etag", "is not an etag this server issued");
      v1::CustomerProfile profile = req->profile();
      auto id = UpdateTarget(profile.name(), profile.profile_id(), "profiles", "profile.");
      if (!id.ok()) return id.status();
      profile.set_profile_id(*id);
      auto read = [&] { return profiles_->Find(*id); };
      if (auto s = ApplyUpdateMask(req->update_mask(), req->allow_missing(), read, &profile, &*version); !s.ok()) {
        return s;
      }
      auto saved = profiles_->Put(std::move(profile), *version, req->allow_missing());
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ImportProfiles(CallbackServerContext* ctx,
                                     const v1::ImportProfilesRequest* req,
                                     v1::ImportProfilesResponse* resp) override {
    return Serve(env_, ctx, kService, "ImportProfiles", [=](const Actor& who) -> absl::Status {
      if (auto st = CheckImport(req->json_lines()); !st.ok()) return st;
      auto imported = profiles_->Import(req->json_lines());
      if (!imported.ok()) return imported.status();
      *resp = *std::move(imported);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* GetAccount(CallbackServerContext* ctx, const v1::GetAccountRequest* req,
                                 v1::Account* resp) override {
    return ServeRead(env_, ctx, kService, "GetAccount", [=](const Actor&) -> absl::Status {
      auto number = ParseName(req->name(), "accounts");
      if (!number.ok()) return number.status();
      auto account = accounts_->FindByNumber(*number);
      if (!account.ok()) return account.status();
      *resp = *std::move(account);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* UpdateAccount(CallbackServerContext* ctx, const v1::UpdateAccountRequest* req,
                                    v1::Account* resp) override {
    return Serve(env_, ctx, kService, "UpdateAccount", [=](const Actor& who) -> absl::Status {
      auto version = ParseEtag(req->account().etag());
      if (!version.ok()) return InvalidField("account.etag", "is not an etag this server issued");
      v1::Account account = req->account();
      auto id = UpdateTarget(account.name(), account.account_number(), "accounts", "account.");
      if (!id.ok()) return id.status();
      account.set_account_number(*id);
      auto read = [&] { return accounts_->FindByNumber(*id); };
      if (auto s = ApplyUpdateMask(req->update_mask(), req->allow_missing(), read, &account, &*version); !s.ok()) {
        return s;
      }
      auto saved = accounts_->Put(std::move(account), *version, req->allow_missing());
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ImportAccounts(CallbackServerContext* ctx,
                                     const v1::ImportAccountsRequest* req,
                                     v1::ImportAccountsResponse* resp) override {
    return Serve(env_, ctx, kService, "ImportAccounts", [=](const Actor& who) -> absl::Status {
      if (auto st = CheckImport(req->json_lines()); !st.ok()) return st;
      auto imported = accounts_->Import(req->json_lines());
      if (!imported.ok()) return imported.status();
      *resp = *std::move(imported);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* GetCalendar(CallbackServerContext* ctx, const v1::GetCalendarRequest* req,
                                  v1::BusinessCalendar* resp) override {
    return ServeRead(env_, ctx, kService, "GetCalendar", [=](const Actor&) -> absl::Status {
      if (auto st = sla::CheckCalendarName(req->name(), "name"); !st.ok()) return st;
      auto cal = calendars_->GetProto(req->name());
      if (!cal.ok()) return cal.status();
      *resp = *std::move(cal);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListCalendars(CallbackServerContext* ctx,
                                    const v1::ListCalendarsRequest* req,
                                    v1::ListCalendarsResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListCalendars", [=](const Actor&) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      const int limit = *page_limit;
      auto after = engine::DecodePageToken(req->page_token(), "calendars");
      if (!after.ok()) return after.status();
      auto list = calendars_->List(*after, limit + 1);
      if (!list.ok()) return list.status();
      for (auto& c : *list) {
        if (resp->calendars_size() == limit) {
          resp->set_next_page_token(
              engine::EncodePageToken("calendars", resp->calendars(limit - 1).name()));
          break;
        }
        *resp->add_calendars() = std::move(c);
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* CreateCalendar(CallbackServerContext* ctx,
                                     const v1::CreateCalendarRequest* req,
                                     v1::BusinessCalendar* resp) override {
    return Serve(env_, ctx, kService, "CreateCalendar", [=](const Actor&) -> absl::Status {
      return SaveCalendar(req->calendar(), 0, true, google::protobuf::FieldMask(), resp);
    });
  }

  ServerUnaryReactor* UpdateCalendar(CallbackServerContext* ctx,
                                     const v1::UpdateCalendarRequest* req,
                                     v1::BusinessCalendar* resp) override {
    return Serve(env_, ctx, kService, "UpdateCalendar", [=](const Actor&) -> absl::Status {
      auto version = ParseEtag(req->calendar().etag());
      if (!version.ok()) return InvalidField("calendar.etag", "is not an etag this server issued");
      return SaveCalendar(req->calendar(), *version, req->allow_missing(), req->update_mask(), resp);
    });
  }

  ServerUnaryReactor* DeleteCalendar(CallbackServerContext* ctx,
                                     const v1::DeleteCalendarRequest* req,
                                     google::protobuf::Empty*) override {
    return Serve(env_, ctx, kService, "DeleteCalendar", [=](const Actor&) -> absl::Status {
      auto version = ParseEtag(req->etag());
      if (!version.ok()) return version.status();
      if (auto retired = calendars_->Retire(req->name(), *version); !retired.ok()) return retired;
      return engine_->MoveOffDeletedCalendars().status();
    });
  }

  ServerUnaryReactor* GetTemplate(CallbackServerContext* ctx, const v1::GetTemplateRequest* req,
                                  v1::Template* resp) override {
    return ServeRead(env_, ctx, kService, "GetTemplate", [=](const Actor&) -> absl::Status {
      auto id = TemplateId(req->name(), "name");
      if (!id.ok()) return id.status();
      auto t = templates_->Get(*id);
      if (!t.ok()) return t.status();
      *resp = *std::move(t);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ListTemplates(CallbackServerContext* ctx,
                                    const v1::ListTemplatesRequest* req,
                                    v1::ListTemplatesResponse* resp) override {
    return ServeRead(env_, ctx, kService, "ListTemplates", [=](const Actor&) -> absl::Status {
      auto page_limit = engine::PageLimit(req->page_size());
      if (!page_limit.ok()) return page_limit.status();
      const int limit = *page_limit;
      auto after = engine::DecodePageToken(req->page_token(), "templates");
      if (!after.ok()) return after.status();
      auto list = templates_->List(*after, limit + 1);
      if (!list.ok()) return list.status();
      for (auto& t : *list) {
        if (resp->templates_size() == limit) {
          const std::string last = resp->templates(limit - 1).name().substr(10);
          resp->set_next_page_token(engine::EncodePageToken("templates", last));
          break;
        }
        *resp->add_templates() = std::move(t);
      }
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* CreateTemplate(CallbackServerContext* ctx,
                                     const v1::CreateTemplateRequest* req,
                                     v1::Template* resp) override {
    return Serve(env_, ctx, kService, "CreateTemplate", [=](const Actor& who) -> absl::Status {
      auto id = TemplateId(notify::TemplateName(req->template_id()), "template_id");
      if (!id.ok()) return id.status();
      v1::Template wanted = req->template_();
      const std::string procedure = id->substr(0, id->find('.'));
      if (id->find('.') == std::string::npos || procedure.empty()) {
        return InvalidField("template_id", "must start with its procedure, e.g. trade_in.pickup_delayed");
      }
      if (wanted.procedure().empty()) wanted.set_procedure(procedure);
      if (wanted.procedure() != procedure) {
        return InvalidField("template.procedure",
                            absl::StrCat("must be ", procedure, ", the start of the template id"));
      }
      auto saved = templates_->Put(*id, std::move(wanted), 0, clock_->Now());
      if (absl::IsAborted(saved.status())) {
        return absl::AlreadyExistsError(absl::StrCat("template ", *id, " already exists"));
      }
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* UpdateTemplate(CallbackServerContext* ctx,
                                     const v1::UpdateTemplateRequest* req,
                                     v1::Template* resp) override {
    return Serve(env_, ctx, kService, "UpdateTemplate", [=](const Actor& who) -> absl::Status {
      auto id = TemplateId(req->template_().name(), "template.name");
      if (!id.ok()) return id.status();
      auto version = ParseEtag(req->template_().etag());
      if (!version.ok()) return InvalidField("template.etag", "is not an etag this server issued");
      auto current = templates_->Get(*id);
      if (!current.ok()) return current.status();
      v1::Template wanted = req->template_();
      auto read = [&] { return current; };
      if (auto s = ApplyUpdateMask(req->update_mask(), false, read, &wanted, &*version); !s.ok()) return s;
      // The procedure a template belongs to is fixed by the server.
      wanted.set_procedure(current->procedure());
      if (wanted.channel() == v1::CHANNEL_UNSPECIFIED) wanted.set_channel(current->channel());
      auto saved = templates_->Put(*id, std::move(wanted), *version, clock_->Now());
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* ResetTemplate(CallbackServerContext* ctx,
                                    const v1::ResetTemplateRequest* req,
                                    v1::Template* resp) override {
    return Serve(env_, ctx, kService, "ResetTemplate", [=](const Actor&) -> absl::Status {
      auto id = TemplateId(req->name(), "name");
      if (!id.ok()) return id.status();
      auto version = ParseEtag(req->etag());
      if (!version.ok()) return version.status();
      auto saved = templates_->Reset(*id, *version, clock_->Now());
      if (!saved.ok()) return saved.status();
      *resp = *std::move(saved);
      return absl::OkStatus();
    });
  }

  ServerUnaryReactor* DeleteTemplate(CallbackServerContext* ctx,
                                     const v1::DeleteTemplateRequest* req,
                                     google::protobuf::Empty*) override {
    return Serve(env_, ctx, kService, "DeleteTemplate", [=](const Actor&) -> absl::Status {
      auto id = TemplateId(req->name(), "name");
      if (!id.ok()) return id.status();
      auto version = ParseEtag(req->etag());
      if (!version.ok()) return version.status();
      return templates_->Delete(*id, *version);
    });
  }

  ServerUnaryReactor* RenderTemplate(CallbackServerContext* ctx,
                                     const v1::RenderTemplateRequest* req,
                                     v1::RenderTemplateResponse* resp) override {
    return ServeRead(env_, ctx, kService, "RenderTemplate", [=](const Actor&) -> absl::Status {
      auto id = TemplateId(req->name(), "name");
      if (!id.ok()) return id.status();
      std::map<std::string, std::string> values(req->values().begin(), req->values().end());
      auto out = templates_->Render(*id, req->language_code(), values);
      if (!out.ok()) {
        if (absl::IsFailedPrecondition(out.status())) {
          return InvalidField("values", std::string(out.status().message()));
        }
        return out.status();
      }
      resp->set_subject(out->subject);
      resp->set_body(out->body);
      resp->set_language_code(out->language_code);
      return absl::OkStatus();
    });
  }

 private:
  // Stores a calendar (see CalendarStore::Put for `version`), the fields of
  // `mask` only when it names any; the deadlines measured on it move with it.
  absl::Status SaveCalendar(v1::BusinessCalendar calendar, int64_t version, bool allow_missing,
                            const google::protobuf::FieldMask& mask, v1::BusinessCalendar* resp) {
    const std::string name = calendar.name();
    auto read = [&] { return calendars_->GetProto(name); };
    if (auto s = ApplyUpdateMask(mask, allow_missing, read, &calendar, &version); !s.ok()) return s;
    auto saved = calendars_->Put(std::move(calendar), version, allow_missing, clock_->Now());
    if (!saved.ok()) return saved.status();
    auto moved = engine_->RecomputeCalendar(saved->name());
    if (!moved.ok()) return moved.status();
    *resp = *std::move(saved);
    return absl::OkStatus();
  }

  notify::TemplateStore* templates_;
  sla::CalendarStore* calendars_;
  engine::Engine* engine_;
  directory::StoredAccountDirectory* accounts_;
  directory::StoredProfileDirectory* profiles_;
  storage::Repository* repo_;
  const Clock* clock_;
  std::string spool_dir_;
  BackupPolicy backups_;
  RpcEnv env_;
};

}  // namespace

std::unique_ptr<v1::AdminService::CallbackService> NewAdminService(
    notify::TemplateStore* templates, sla::CalendarStore* calendars, engine::Engine* engine,
    directory::StoredAccountDirectory* accounts, directory::StoredProfileDirectory* profiles,
    storage::Repository* repo, const Clock* clock, std::string spool_dir, BackupPolicy backups,
    RpcEnv env) {
  return std::make_unique<AdminService>(templates, calendars, engine, accounts, profiles, repo,
                                        clock, std::move(spool_dir), std::move(backups), env);
}

}  // namespace casework::rpc
