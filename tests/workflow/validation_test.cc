#include "server/workflow/validation.h"

#include "gtest/gtest.h"

namespace casework::workflow {
namespace {

TEST(ValidationTest, OrderAndShipmentNumbers) {
  EXPECT_TRUE(IsVNumber("V123456"));
  EXPECT_TRUE(IsVNumber("V1234567890"));
  EXPECT_FALSE(IsVNumber("V12345"));
  EXPECT_FALSE(IsVNumber("V12345678901"));
  EXPECT_FALSE(IsVNumber("v1234567"));
  EXPECT_FALSE(IsVNumber("S1234567"));
  EXPECT_FALSE(IsVNumber("V12345a7"));
  EXPECT_TRUE(IsSNumber("S7654321"));
  EXPECT_FALSE(IsSNumber("V7654321"));
}

TEST(ValidationTest, Emails) {
  EXPECT_TRUE(IsEmail("jan@example.nl"));
  EXPECT_TRUE(IsEmail("a.b+tag@sub.example.com"));
  EXPECT_FALSE(IsEmail(""));
  EXPECT_FALSE(IsEmail("jan"));
  EXPECT_FALSE(IsEmail("@example.nl"));
  EXPECT_FALSE(IsEmail("jan@example"));
  EXPECT_FALSE(IsEmail("jan@@example.nl"));
  EXPECT_FALSE(IsEmail("jan de vries@example.nl"));
  EXPECT_FALSE(IsEmail("jan@example..nl"));
  EXPECT_FALSE(IsEmail("jan@exa\nmple.nl"));
}

TEST(ValidationTest, CleanText) {
  EXPECT_TRUE(IsCleanText("Hallo wereld, één test"));
  EXPECT_TRUE(IsCleanText("line one\nline two\ttab"));
  EXPECT_FALSE(IsCleanText(std::string("nul\0byte", 8)));
  EXPECT_FALSE(IsCleanText("bell\x07"));
  EXPECT_FALSE(IsCleanText("\xc3"));          // truncated sequence
  EXPECT_FALSE(IsCleanText("\xc0\xaf"));      // overlong
  EXPECT_FALSE(IsCleanText("\xed\xa0\x80"));  // surrogate
}

TEST(ValidationTest, NamesAreCleanTextOnOneLine) {
  EXPECT_TRUE(IsCleanLine("Jan de Vries, één test"));
  EXPECT_FALSE(IsCleanLine("Jan\nde Vries"));
  EXPECT_FALSE(IsCleanLine("Jan\tde Vries"));
  EXPECT_FALSE(IsCleanLine("bell\x07"));
  EXPECT_FALSE(IsCleanLine("\xc3"));
  FieldErrors errors;
  CheckLine(errors, "display_name", "Jan\nde Vries", 200, /*required=*/true);
  CheckLine(errors, "product_name", "", 200, /*required=*/true);
  CheckLine(errors, "assignee", "", 200, /*required=*/false);
  CheckText(errors, "description", "line one\nline two", 200, /*required=*/true);
  const absl::Status status = errors.ToStatus();
  EXPECT_NE(status.message().find("display_name: must be one line"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("product_name: is required"), absl::string_view::npos) << status;
  EXPECT_EQ(status.message().find("assignee"), absl::string_view::npos) << status;
  EXPECT_EQ(status.message().find("description"), absl::string_view::npos) << status;
}

TEST(ValidationTest, NotesThatGiveAnAccessCodeAreFound) {
  for (const char* note : {"PIN code: 1234", "customer says pin 0000", "Passcode=ab12cd", "wachtwoord is Zomer2024!",
                           "Unlock code 778899.", "toegangscode: 4321, graag testen", "Apple ID password: Hunter42",
                           "screen lock 2580"}) {
    EXPECT_TRUE(HoldsAccessCode(note)) << note;
  }
  for (const char* note : {"PIN code for V1234567 did not work", "customer forgot the pin", "pin 12",
                           "password reset on 12-05", "spinning wheel 1234", "postcode 1234 AB", "OTP PIN not received",
                           "shipping 1234", "pincode ontvangen, opnieuw testen"}) {
    EXPECT_FALSE(HoldsAccessCode(note)) << note;
  }
  FieldErrors errors;
  CheckNote(errors, "note", "PIN: 1234", true);
  ASSERT_FALSE(errors.empty());
  const absl::Status s = errors.ToStatus();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_EQ(s.message().find("1234"), absl::string_view::npos) << s.message();
  FieldErrors clean;
  CheckNote(clean, "note", "customer sent the code; recorded it", true);
  EXPECT_TRUE(clean.empty());
}

TEST(ValidationTest, DocumentsAreSniffedByContent) {
  EXPECT_EQ(SniffDocumentType("%PDF-1.7\n..."), "application/pdf");
  EXPECT_EQ(SniffDocumentType(std::string("\x89PNG\r\n\x1a\n", 8) + "data"), "image/png");
  EXPECT_EQ(SniffDocumentType("\xff\xd8\xff\xe0 jfif"), "image/jpeg");
  EXPECT_EQ(SniffDocumentType("<html>"), "");
  EXPECT_EQ(SniffDocumentType(""), "");
}

}  // namespace
}  // namespace casework::workflow
