// Notification templates ("macros"), stored in the repository, with
// language variants and placeholders checked against the fields of the
// procedure each template belongs to.
#ifndef CASEWORK_SERVER_NOTIFY_TEMPLATES_H_
#define CASEWORK_SERVER_NOTIFY_TEMPLATES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "casework/v1/admin.pb.h"
#include "storage/repository.h"

namespace casework::notify {

struct RenderedMessage {
  std::string subject;
  std::string body;
  std::string language_code;
};

// The templates shipped with casework (English and Dutch where the
// procedures use Dutch).
std::vector<v1::Template> DefaultTemplates();

class TemplateStore {
 public:
  // `fields` maps a procedure ("trade_in") to the placeholders its
  // templates may use. Thread-safe; `repo` must outlive the store.
  TemplateStore(storage::Repository* repo,
                std::map<std::string, std::vector<std::string>> fields);

  // Stores every default template that is not stored yet (of the
  // procedures this store knows).
  absl::Status InstallDefaults(absl::Time now);

  // NOT_FOUND naming the template.
  absl::StatusOr<v1::Template> Get(const std::string& template_id) const;
  absl::StatusOr<std::vector<v1::Template>> List(const std::string& after_id,
                                                 int limit) const;
  // Validates (INVALID_ARGUMENT naming the variant field) and stores.
  // `expected_version` < 0 skips the etag check; ABORTED when stale.
  absl::StatusOr<v1::Template> Put(const std::string& template_id,
                                   v1::Template tmpl, int64_t expected_version,
                                   absl::Time now);

  // Stores the default template of that id again, as this version ships
  // it; NOT_FOUND when there is no such default.
  absl::StatusOr<v1::Template> Reset(const std::string& template_id, int64_t expected_version,
                                     absl::Time now);

  // Deletes a template an admin created (`expected_version` < 0 skips the
  // etag check). FAILED_PRECONDITION (ErrorInfo SHIPPED_TEMPLATE) for one
  // casework ships: notifications need it, and Reset puts its wording back.
  absl::Status Delete(const std::string& template_id, int64_t expected_version);

  // Renders the variant for `language_code`, falling back to "en" and then
  // to the first variant. FAILED_PRECONDITION when a placeholder has no
  // value.
  absl::StatusOr<RenderedMessage> Render(
      const std::string& template_id, const std::string& language_code,
      const std::map<std::string, std::string>& values) const;

  // Checks a template against its procedure's fields; OK or
  // INVALID_ARGUMENT with a field violation per problem.
  absl::Status Validate(const v1::Template& tmpl,
                        const std::string& field_prefix) const;

 private:
  v1::Template Decorate(v1::Template tmpl, const std::string& id,
                        int64_t version) const;

  storage::Repository* repo_;
  std::map<std::string, std::vector<std::string>> fields_;
};

// "templates/{id}" <-> id.
std::string TemplateName(const std::string& id);

}  // namespace casework::notify

#endif  // CASEWORK_SERVER_NOTIFY_TEMPLATES_H_
