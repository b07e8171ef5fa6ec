#include "server/notify/templates.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/notify/render.h"
#include "server/workflow/claim_workflow.h"
#include "server/workflow/enrollment_workflow.h"
#include "server/workflow/otp_workflow.h"
#include "server/workflow/trade_in_workflow.h"
#include "server/workflow/unlock_workflow.h"
#include "storage/rocksdb_repository.h"
#include "tests/testing/temp_dir.h"

namespace casework::notify {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

TEST(RenderTest, FillsPlaceholdersAndRefusesMissingOnes) {
  EXPECT_EQ(*Render("Update ({{v_number}}) for {{name}}", {{"v_number", "V1"}, {"name", "Jan"}}),
            "Update (V1) for Jan");
  auto missing = Render("Hi {{name}}", {});
  ASSERT_TRUE(absl::IsFailedPrecondition(missing.status()));
  EXPECT_NE(missing.status().message().find("{{name}}"), absl::string_view::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(Render("Hi {{name", {{"name", "x"}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Placeholders("{{}}").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Placeholders("{{Bad Name}}").status()));
  EXPECT_EQ(*Placeholders("{{a}} and {{b_2}}"), (std::vector<std::string>{"a", "b_2"}));
}

class TemplateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = *storage::OpenRocksDbRepository({dir_.path() + "/db"});
    // The fields the real workflows declare.
    std::map<std::string, std::vector<std::string>> fields;
    std::vector<std::unique_ptr<workflow::Workflow>> workflows;
    workflows.push_back(workflow::NewTradeInWorkflow({}));
    workflows.push_back(workflow::NewUnlockWorkflow({}));
    workflows.push_back(workflow::NewOtpWorkflow({}));
    workflows.push_back(workflow::NewEnrollmentWorkflow());
    workflows.push_back(workflow::NewClaimWorkflow());
    for (const auto& wf : workflows) fields[wf->spec().kind] = wf->TemplateFields();
    store_ = std::make_unique<TemplateStore>(repo_.get(), fields);
    ASSERT_TRUE(store_->InstallDefaults(kNow).ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<storage::Repository> repo_;
  std::unique_ptr<TemplateStore> store_;
};

TEST_F(TemplateStoreTest, DefaultsRenderInDutchAndEnglishWithTheVNumberInTheSubject) {
  std::map<std::string, std::string> values = {
      {"v_number", "V1234567"}, {"customer_name", "Jan"}, {"product_name", "iPhone 13"}};
  auto nl = store_->Render("trade_in.contact.device_locked", "nl", values);
  ASSERT_TRUE(nl.ok()) << nl.status();
  EXPECT_EQ(nl->subject, "Update over je inruil (V1234567)");
  auto en = store_->Render("trade_in.contact.device_locked", "en", values);
  EXPECT_EQ(en->subject, "Update on your trade-in (V1234567)");
  // Unknown language falls back to English.
  EXPECT_EQ(store_->Render("trade_in.reminder", "fr", values)->language_code, "en");
}

TEST_F(TemplateStoreTest, EveryDefaultTemplateIsValid) {
  for (const auto& t : DefaultTemplates()) {
    EXPECT_TRUE(store_->Validate(t, "").ok()) << t.name();
  }
}

TEST_F(TemplateStoreTest, UnknownPlaceholdersCannotBeSaved) {
  auto t = *store_->Get("trade_in.reminder");
  t.mutable_variants(0)->set_body("Hello {{first_name}}");
  auto saved = store_->Put("trade_in.reminder", t, -1, kNow);
  ASSERT_TRUE(absl::IsInvalidArgument(saved.status()));
  EXPECT_NE(saved.status().message().find("variants[0].body"), absl::string_view::npos);
  EXPECT_NE(saved.status().message().find("{{first_name}}"), absl::string_view::npos);
  // Nothing changed.
  EXPECT_EQ(store_->Get("trade_in.reminder")->etag(), "1");
}

TEST_F(TemplateStoreTest, AnEmailSubjectIsOneLine) {
  auto t = *store_->Get("trade_in.reminder");
  t.mutable_variants(0)->set_subject("Update over je inruil\nBcc: someone@example.com");
  auto saved = store_->Put("trade_in.reminder", t, -1, kNow);
  ASSERT_TRUE(absl::IsInvalidArgument(saved.status()));
  EXPECT_NE(saved.status().message().find("variants[0].subject: must be one line"), absl::string_view::npos)
      << saved.status();
  EXPECT_EQ(store_->Get("trade_in.reminder")->etag(), "1");
}

TEST_F(TemplateStoreTest, EveryLanguageVariantUsesTheSamePlaceholders) {
  auto t = *store_->Get("trade_in.reminder");
  ASSERT_GE(t.variants_size(), 2);
  for (auto& v : *t.mutable_variants()) v.set_body("Over {{v_number}} voor {{customer_name}}");
  t.mutable_variants(1)->set_body("About {{v_number}}");
  auto saved = store_->Put("trade_in.reminder", t, -1, kNow);
  ASSERT_TRUE(absl::IsInvalidArgument(saved.status()));
  const std::string lacks =
      absl::StrCat("variants[1]: lacks {{customer_name}} in its subject and body, which the \"",
                   t.variants(0).language_code(), "\" variant uses");
  EXPECT_NE(saved.status().message().find(lacks), absl::string_view::npos) << saved.status();
  EXPECT_EQ(store_->Get("trade_in.reminder")->etag(), "1");

  // A misspelt placeholder is one mistake, said once: not also as missing
  // from every other variant.
  t.mutable_variants(1)->set_body("About {{v_number}} for {{customer_nam}}");
  for (int i = 2; i < t.variants_size(); ++i) t.mutable_variants(i)->set_body(t.variants(0).body());
  saved = store_->Put("trade_in.reminder", t, -1, kNow);
  ASSERT_TRUE(absl::IsInvalidArgument(saved.status()));
  EXPECT_NE(saved.status().message().find("unknown placeholder {{customer_nam}}"), absl::string_view::npos)
      << saved.status();
  EXPECT_EQ(saved.status().message().find("lacks {{customer_nam}}"), absl::string_view::npos)
      << saved.status();
  EXPECT_NE(saved.status().message().find("variants[1]: lacks {{customer_name}}"), absl::string_view::npos)
      << saved.status();
}

TEST_F(TemplateStoreTest, UpdatesCheckTheEtag) {
  auto t = *store_->Get("trade_in.reminder");
  for (auto& v : *t.mutable_variants()) v.set_body("Nog even over {{v_number}}");
  ASSERT_TRUE(store_->Put("trade_in.reminder", t, 1, kNow).ok());
  EXPECT_TRUE(absl::IsAborted(store_->Put("trade_in.reminder", t, 1, kNow).status()));
  // Defaults never overwrite a stored template.
  ASSERT_TRUE(store_->InstallDefaults(kNow).ok());
  EXPECT_EQ(store_->Get("trade_in.reminder")->variants(0).body(), "Nog even over {{v_number}}");
}

}  // namespace
}  // namespace casework::notify
