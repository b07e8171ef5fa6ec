#include "server/engine/page_token.h"

#include "gtest/gtest.h"

namespace casework::engine {
namespace {

TEST(PageTokenTest, RoundTripsWithinItsScope) {
  const std::string token = EncodePageToken("state\ntrade_in/TESTING", "01ABC");
  EXPECT_EQ(*DecodePageToken(token, "state\ntrade_in/TESTING"), "01ABC");
  EXPECT_EQ(*DecodePageToken("", "anything"), "");
}

TEST(PageTokenTest, ForeignDamagedOrForgedTokensAreRefusedNamingTheField) {
  const std::string token = EncodePageToken("state\ntrade_in/TESTING", "01ABC");
  for (const std::string& bad :
       {EncodePageToken("state\ntrade_in/CLOSED", "01ABC"), token.substr(0, token.size() - 2),
        std::string("not base64 !!"), std::string("cDEKeAp5CjEy"), std::string(5000, 'A')}) {
    auto decoded = DecodePageToken(bad, "state\ntrade_in/TESTING");
    ASSERT_TRUE(absl::IsInvalidArgument(decoded.status())) << bad;
    EXPECT_NE(decoded.status().message().find("page_token"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace casework::engine
