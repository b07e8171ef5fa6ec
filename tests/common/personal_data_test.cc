#include "server/common/personal_data.h"

#include "casework/internal/records.pb.h"
#include "casework/v1/unlock.pb.h"
#include "gtest/gtest.h"

namespace casework {
namespace {

internal::CaseRecord TradeIn() {
  internal::CaseRecord r;
  r.set_id("c1");
  r.set_state("PROBLEM_ORDER");
  r.add_secrets()->set_name("unlock_code");
  r.add_slas()->set_name("response");  // nested, holds nothing personal
  auto* t = r.mutable_trade_in();
  t->set_v_number("V1234567");
  t->set_problem_note("customer says the PIN is 1234");
  t->mutable_customer()->set_display_name("Jan Jansen");
  t->mutable_customer()->set_email(" Jan@Example.NL ");
  t->mutable_proof_of_purchase()->set_file_name("receipt-jan.pdf");
  return r;
}

TEST(PersonalDataTest, SubjectsComeFromEmailAndPhoneFieldsAtAnyDepth) {
  EXPECT_EQ(PersonalSubjects(TradeIn()), std::set<std::string>{"email:jan@example.nl"});

  v1::Account account;
  account.set_email("ops@example.com");
  account.set_phone_number("+1 (415) 555-0123");
  account.set_full_name("Sam Smith");  // a name is not a subject
  EXPECT_EQ(PersonalSubjects(account),
            (std::set<std::string>{"email:ops@example.com", "phone:+14155550123"}));
  EXPECT_TRUE(PersonalSubjects(v1::Account()).empty());
}

TEST(PersonalDataTest, EraseClearsEveryMarkedFieldAndKeepsTheRest) {
  internal::CaseRecord r = TradeIn();
  // problem note, secrets, display name, email, proof file name
  EXPECT_EQ(ErasePersonalData(&r), 5);
  EXPECT_EQ(r.secrets_size(), 0);
  EXPECT_TRUE(r.trade_in().problem_note().empty());
  EXPECT_TRUE(r.trade_in().customer().display_name().empty());
  EXPECT_TRUE(r.trade_in().customer().email().empty());
  EXPECT_TRUE(r.trade_in().proof_of_purchase().file_name().empty());
  EXPECT_EQ(r.trade_in().v_number(), "V1234567");
  EXPECT_EQ(r.state(), "PROBLEM_ORDER");
  EXPECT_EQ(r.slas(0).name(), "response");
  EXPECT_TRUE(PersonalSubjects(r).empty());
  EXPECT_EQ(ErasePersonalData(&r), 0);
}

}  // namespace
}  // namespace casework
