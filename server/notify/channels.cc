// The real channels: SMTP email, chat and generic webhooks, SMS gateway.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "server/common/json.h"
#include "server/common/proto_time.h"
#include "server/notify/email.h"
#include "server/notify/notifier.h"
#include "server/notify/transport.h"

namespace casework::notify {
namespace {

absl::Duration TimeoutOf(int32_t ms) { return absl::Milliseconds(ms > 0 ? ms : 10000); }

std::string DedupeHeader(const internal::OutboxMessage& m) {
  return absl::StrCat("X-Casework-Dedupe-Key: ", m.dedupe_key());
}

class SmtpNotifier : public Notifier {
 public:
  SmtpNotifier(internal::SmtpConfig config, std::string password,
               std::map<std::string, internal::BrandConfig> brands)
      : config_(std::move(config)), password_(std::move(password)), brands_(std::move(brands)) {}
  std::string name() const override { return "smtp"; }

  absl::Status Deliver(const internal::OutboxMessage& m) override {
    const internal::BrandConfig* brand = BrandOf(m.brand());
    if (brand == nullptr || brand->from().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no sender address is configured for brand ", m.brand()));
    }
    SmtpSubmission s;
    s.url = config_.url();
    s.starttls = config_.starttls() == "off"        ? StartTls::kOff
                 : config_.starttls() == "optional" ? StartTls::kOptional
                                                    : StartTls::kRequired;
    s.username = config_.username();
    s.password = password_;
    s.ca_file = config_.ca_file();
    s.envelope_from = MailboxAddress(brand->from());
    s.envelope_to = {MailboxAddress(m.recipient())};
    s.message = ComposeEmail(m, brand->from(), brand->reply_to());
    s.timeout = TimeoutOf(config_.timeout_ms());
    return Submit(s);
  }

 private:
  const internal::BrandConfig* BrandOf(const std::string& brand) const {
    auto it = brands_.find(brand);
    if (it == brands_.end()) it = brands_.find("default");
    return it == brands_.end() ? nullptr : &it->second;
  }

  internal::SmtpConfig config_;
  std::string password_;
  std::map<std::string, internal::BrandConfig> brands_;
};

class ChatNotifier : public Notifier {
 public:
  explicit ChatNotifier(internal::ChatConfig config) : config_(std::move(config)) {}
  std::string name() const override { return "chat"; }

  absl::Status Deliver(const internal::OutboxMessage& m) override {
    auto it = config_.channel_urls().find(m.recipient());
    const std::string& url = it != config_.channel_urls().end() ? it->second : config_.webhook_url();
    if (url.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no chat webhook is configured for ", m.recipient()));
    }
    const std::string text =
        m.subject().empty() ? m.body() : absl::StrCat("*", m.subject(), "*\n", m.body());
    HttpPost post;
    post.url = url;
    post.headers = {"Content-Type: application/json", DedupeHeader(m)};
    post.body = absl::StrCat("{\"channel\":", JsonString(m.recipient()),
                             ",\"text\":", JsonString(text), "}");
    post.timeout = TimeoutOf(config_.timeout_ms());
    return Post(post);
  }

 private:
  internal::ChatConfig config_;
};

class SmsNotifier : public Notifier {
 public:
  SmsNotifier(internal::SmsConfig config, std::string token)
      : config_(std::move(config)), token_(std::move(token)) {}
  std::string name() const override { return "sms"; }

  absl::Status Deliver(const internal::OutboxMessage& m) override {
    const std::string& tmpl = config_.body_template().empty()
                                  ? std::string(R"({"to":"{{to}}","text":"{{text}}"})")
                                  : config_.body_template();
    HttpPost post;
    post.url = config_.url();
    post.headers = {"Content-Type: application/json", DedupeHeader(m)};
    if (!token_.empty()) post.headers.push_back(absl::StrCat("Authorization: Bearer ", token_));
    post.body = absl::StrReplaceAll(tmpl, {{"{{to}}", JsonEscape(m.recipient())},
                                           {"{{text}}", JsonEscape(m.body())},
                                           {"{{dedupe_key}}", JsonEscape(m.dedupe_key())}});
    post.timeout = TimeoutOf(config_.timeout_ms());
    return Post(post);
  }

 private:
  internal::SmsConfig config_;
  std::string token_;
};

class WebhookNotifier : public Notifier {
 public:
  WebhookNotifier(internal::WebhookConfig config, std::string secret)
      : config_(std::move(config)), secret_(std::move(secret)) {}
  std::string name() const override { return absl::StrCat("webhook:", config_.name()); }

  absl::Status Deliver(const internal::OutboxMessage& m) override {
    const std::string body = WebhookBody(m);
    const std::string timestamp = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
    HttpPost post;
    post.url = config_.url();
    post.headers = {"Content-Type: application/json", DedupeHeader(m),
                    absl::StrCat("X-Casework-Timestamp: ", timestamp),
                    absl::StrCat("X-Casework-Signature: ", WebhookSignature(secret_, timestamp, body))};
    post.body = body;
    post.timeout = TimeoutOf(config_.timeout_ms());
    return Post(post);
  }

 private:
  internal::WebhookConfig config_;
  std::string secret_;
};

}  // namespace

std::string WebhookSignature(const std::string& secret, const std::string& timestamp,
                             const std::string& body) {
  const std::string signed_text = absl::StrCat(timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &len);
  return absl::StrCat("sha256=",
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(mac), len)));
}

std::string WebhookBody(const internal::OutboxMessage& m) {
  const absl::Time created = m.has_create_time() ? FromProto(m.create_time()) : absl::Now();
  return absl::StrCat(
      "{\"dedupe_key\":", JsonString(m.dedupe_key()), ",\"case_id\":", JsonString(m.case_id()),
      ",\"reference\":", JsonString(m.reference()), ",\"brand\":", JsonString(m.brand()),
      ",\"template\":", JsonString(m.template_id()),
      ",\"channel\":", JsonString(ChannelLabel(m.channel())),
      ",\"recipient\":", JsonString(m.recipient()),
      ",\"language_code\":", JsonString(m.language_code()),
      ",\"subject\":", JsonString(m.subject()), ",\"body\":", JsonString(m.body()),
      ",\"create_time\":",
      JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", created, absl::UTCTimeZone())), "}");
}

std::unique_ptr<Notifier> NewSmtpNotifier(internal::SmtpConfig config, std::string password,
                                          std::map<std::string, internal::BrandConfig> brands) {
  return std::make_unique<SmtpNotifier>(std::move(config), std::move(password), std::move(brands));
}
std::unique_ptr<Notifier> NewChatNotifier(internal::ChatConfig config) {
  return std::make_unique<ChatNotifier>(std::move(config));
}
std::unique_ptr<Notifier> NewSmsNotifier(internal::SmsConfig config, std::string token) {
  return std::make_unique<SmsNotifier>(std::move(config), std::move(token));
}
std::unique_ptr<Notifier> NewWebhookNotifier(internal::WebhookConfig config, std::string secret) {
  return std::make_unique<WebhookNotifier>(std::move(config), std::move(secret));
}

}  // namespace casework::notify
