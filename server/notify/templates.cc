#include "server/notify/templates.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/notify/render.h"

namespace casework::notify {
namespace {
constexpr char kSpace[] = "templates";
constexpr size_t kMaxTemplateText = 64 << 10;
}  // namespace

std::string TemplateName(const std::string& id) { return absl::StrCat("templates/", id); }

TemplateStore::TemplateStore(storage::Repository* repo,
                             std::map<std::string, std::vector<std::string>> fields)
    : repo_(repo), fields_(std::move(fields)) {}

absl::Status TemplateStore::InstallDefaults(absl::Time now) {
  for (v1::Template t : DefaultTemplates()) {
    if (fields_.count(t.procedure()) == 0) continue;  // procedure not served here
    const std::string id = t.name().substr(std::string("templates/").size());
    auto existing = repo_->GetRecord(kSpace, id);
    if (existing.ok()) continue;
    if (!absl::IsNotFound(existing.status())) return existing.status();
    auto put = Put(id, std::move(t), 0, now);
    if (!put.ok() && !absl::IsAborted(put.status())) {
      return absl::InternalError(absl::StrCat("default template ", id, ": ",
                                              put.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Template> TemplateStore::Reset(const std::string& id, int64_t expected_version,
                                                  absl::Time now) {
  for (v1::Template t : DefaultTemplates()) {
    if (t.name() == TemplateName(id)) return Put(id, std::move(t), expected_version, now);
  }
  if (auto current = Get(id); !current.ok()) return current.status();
  return absl::NotFoundError(
      absl::StrCat(TemplateName(id), " has no default wording: it was created here, not shipped"));
}

absl::Status TemplateStore::Delete(const std::string& id, int64_t expected_version) {
  for (const v1::Template& t : DefaultTemplates()) {
    if (t.name() != TemplateName(id)) continue;
    return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                             TemplateName(id), " is one casework sends and cannot be deleted; ",
                             "ResetTemplate puts its shipped wording back")),
                         "SHIPPED_TEMPLATE");
  }
  absl::Status deleted = repo_->DeleteRecord(kSpace, id, expected_version);
  if (absl::IsNotFound(deleted)) return absl::NotFoundError(absl::StrCat("template ", id, " not found"));
  if (absl::IsAborted(deleted)) return EtagMismatch(TemplateName(id));
  return deleted;
}

v1::Template TemplateStore::Decorate(v1::Template tmpl, const std::string& id,
                                     int64_t version) const {
  tmpl.set_name(TemplateName(id));
  tmpl.set_etag(absl::StrCat(version));
  tmpl.clear_allowed_placeholders();
  auto it = fields_.find(tmpl.procedure());
  if (it != fields_.end()) {
    for (const auto& f : it->second) tmpl.add_allowed_placeholders(f);
  }
  return tmpl;
}

absl::StatusOr<v1::Template> TemplateStore::Get(const std::string& id) const {
  auto rec = repo_->GetRecord(kSpace, id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(absl::StrCat("template ", id, " not found"));
    }
    return rec.status();
  }
  v1::Template tmpl;
  if (!tmpl.ParseFromString(rec->value)) {
    return absl::DataLossError(absl::StrCat("template ", id, " is damaged"));
  }
  return Decorate(std::move(tmpl), id, rec->version);
}

absl::StatusOr<std::vector<v1::Template>> TemplateStore::List(
    const std::string& after_id, int limit) const {
  auto recs = repo_->ListRecords(kSpace, after_id, limit);
  if (!recs.ok()) return recs.status();
  std::vector<v1::Template> out;
  for (const auto& rec : *recs) {
    v1::Template tmpl;
    if (!tmpl.ParseFromString(rec.value)) {
      return absl::DataLossError(absl::StrCat("template ", rec.key, " is damaged"));
    }
    out.push_back(Decorate(std::move(tmpl), rec.key, rec.version));
  }
  return out;
}

absl::Status TemplateStore::Validate(const v1::Template& tmpl,
                                     const std::string& prefix) const {
  FieldErrors errors;
  auto fields = fields_.find(tmpl.procedure());
  if (fields == fields_.end()) {
    errors.Add(prefix + "procedure", "unknown procedure");
    return errors.ToStatus();
  }
  if (!v1::Channel_IsValid(tmpl.channel()) || tmpl.channel() == v1::CHANNEL_UNSPECIFIED) {
    errors.Add(prefix + "channel", "is required");
  }
  if (tmpl.variants().empty()) errors.Add(prefix + "variants", "at least one is required");
  std::vector<std::string> seen;
  // The known placeholders each variant uses, subject and body together.
  std::vector<std::set<std::string>> used(tmpl.variants_size());
  for (int i = 0; i < tmpl.variants_size(); ++i) {
    const auto& v = tmpl.variants(i);
    const std::string vp = absl::StrCat(prefix, "variants[", i, "].");
    const std::string& lang = v.language_code();
    if (lang.size() < 2 || lang.size() > 8) {
      errors.Add(vp + "language_code", "must be a language code such as \"en\" or \"nl\"");
    } else if (std::find(seen.begin(), seen.end(), lang) != seen.end()) {
      errors.Add(vp + "language_code", "appears twice");
    }
    seen.push_back(lang);
    if (tmpl.channel() == v1::CHANNEL_EMAIL && v.subject().empty()) {
      errors.Add(vp + "subject", "is required for email");
    } else if (v.subject().find_first_of("\r\n") != std::string::npos) {
      errors.Add(vp + "subject", "must be one line");
    }
    if (v.body().empty()) errors.Add(vp + "body", "is required");
    for (const auto& [field, text] :
         {std::pair<std::string, std::string>{"subject", v.subject()}, {"body", v.body()}}) {
      if (text.size() > kMaxTemplateText) {
        errors.Add(vp + field, "is too long");
        continue;
      }
      auto names = Placeholders(text);
      if (!names.ok()) {
        errors.Add(vp + field, std::string(names.status().message()));
        continue;
      }
      for (const auto& n : *names) {
        if (std::find(fields->second.begin(), fields->second.end(), n) ==
            fields->second.end()) {
          errors.Add(vp + field, absl::StrCat("unknown placeholder {{", n, "}} for ",
                                              tmpl.procedure()));
        } else {
          used[i].insert(n);
        }
      }
    }
  }
  // Every language says the same things: a variant lacking a placeholder
  // that another one uses would leave its readers without that fact.
  std::map<std::string, int> first_use;
  for (int i = tmpl.variants_size() - 1; i >= 0; --i) {
    for (const auto& n : used[i]) first_use[n] = i;
  }
  for (int i = 0; i < tmpl.variants_size(); ++i) {
    for (const auto& [n, j] : first_use) {
      if (used[i].count(n) > 0) continue;
      errors.Add(absl::StrCat(prefix, "variants[", i, "]"),
                 absl::StrCat("lacks {{", n, "}} in its subject and body, which the \"",
                              tmpl.variants(j).language_code(), "\" variant uses"));
    }
  }
  return errors.ToStatus();
}

absl::StatusOr<v1::Template> TemplateStore::Put(const std::string& id,
                                                v1::Template tmpl,
                                                int64_t expected_version,
                                                absl::Time now) {
  if (absl::Status s = Validate(tmpl, "template."); !s.ok()) return s;
  tmpl.clear_name();
  tmpl.clear_etag();
  tmpl.clear_allowed_placeholders();
  *tmpl.mutable_update_time() = ToProto(now);
  auto version = repo_->PutRecord(kSpace, id, expected_version, tmpl.SerializeAsString());
  if (absl::IsAborted(version.status())) return EtagMismatch(TemplateName(id));
  if (!version.ok()) return version.status();
  return Decorate(std::move(tmpl), id, *version);
}

absl::StatusOr<RenderedMessage> TemplateStore::Render(
    const std::string& id, const std::string& language_code,
    const std::map<std::string, std::string>& values) const {
  auto tmpl = Get(id);
  if (!tmpl.ok()) return tmpl.status();
  const v1::TemplateVariant* chosen = nullptr;
  for (const char* want : {language_code.c_str(), "en"}) {
    for (const auto& v : tmpl->variants()) {
      if (v.language_code() == want) {
        chosen = &v;
        break;
      }
    }
    if (chosen != nullptr) break;
  }
  if (chosen == nullptr) {
    if (tmpl->variants().empty()) {
      return absl::FailedPreconditionError(absl::StrCat("template ", id, " has no variants"));
    }
    chosen = &tmpl->variants(0);
  }
  RenderedMessage out;
  out.language_code = chosen->language_code();
  auto subject = notify::Render(chosen->subject(), values);
  if (!subject.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("template ", id, " subject: ", subject.status().message()));
  }
  auto body = notify::Render(chosen->body(), values);
  if (!body.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("template ", id, " body: ", body.status().message()));
  }
  out.subject = std::move(*subject);
  out.body = std::move(*body);
  return out;
}

}  // namespace casework::notify
