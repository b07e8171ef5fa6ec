#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/common/files.h"
#include "server/notify/notifier.h"

namespace casework::notify {
namespace {

constexpr const char* kChannels[] = {"email", "chat", "sms", "webhook"};

bool Matches(const internal::RouteConfig& r, const internal::OutboxMessage& m) {
  return absl::StartsWith(m.template_id(), r.template_prefix()) &&
         (r.brand().empty() || r.brand() == m.brand()) &&
         (r.channel().empty() || r.channel() == ChannelLabel(m.channel()));
}

// Higher is more specific: the template prefix counts most, then the
// brand, then the channel.
size_t Specificity(const internal::RouteConfig& r) {
  return (r.template_prefix().empty() ? 0 : r.template_prefix().size() + 1) * 4 +
         (r.brand().empty() ? 0 : 2) + (r.channel().empty() ? 0 : 1);
}

absl::StatusOr<std::string> ReadSecret(const std::string& path, const std::string& field) {
  if (path.empty()) return std::string();
  auto text = ReadWholeFile(path);
  if (!text) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read ", path));
  return std::string(absl::StripTrailingAsciiWhitespace(*text));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Router>> Router::Make(std::vector<std::shared_ptr<Notifier>> notifiers,
                                                     std::vector<internal::RouteConfig> routes) {
  auto router = std::unique_ptr<Router>(new Router());
  for (auto& n : notifiers) {
    const std::string name = n->name();
    if (!router->notifiers_.emplace(name, std::move(n)).second) {
      return absl::InvalidArgumentError(absl::StrCat("notifier: two notifiers are named ", name));
    }
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    const std::string where = absl::StrCat("notifier.routes[", i, "]");
    if (!r.channel().empty() && std::find(std::begin(kChannels), std::end(kChannels),
                                          r.channel()) == std::end(kChannels)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".channel: '", r.channel(), "' is not email, chat, sms or webhook"));
    }
    if (r.notifiers().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".notifiers: name at least one"));
    }
    for (const auto& n : r.notifiers()) {
      if (!router->notifiers_.count(n)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".notifiers: '", n, "' is not configured"));
      }
    }
  }
  router->routes_ = std::move(routes);
  return router;
}

std::vector<std::string> Router::Targets(const internal::OutboxMessage& message) const {
  const internal::RouteConfig* best = nullptr;
  for (const auto& r : routes_) {
    if (Matches(r, message) && (best == nullptr || Specificity(r) > Specificity(*best))) best = &r;
  }
  if (best == nullptr) return {};
  return {best->notifiers().begin(), best->notifiers().end()};
}

absl::Status Router::Deliver(internal::OutboxMessage* message) {
  const auto targets = Targets(*message);
  if (targets.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no route sends ", ChannelLabel(message->channel()), " messages of ", message->template_id()));
  }
  std::set<std::string> done(message->delivered_to().begin(), message->delivered_to().end());
  absl::Status first_failure;
  auto deliver = [&](const std::string& name) {
    if (done.count(name)) return;
    absl::Status s = notifiers_.at(name)->Deliver(*message);
    if (s.ok()) {
      message->add_delivered_to(name);
    } else if (first_failure.ok()) {
      first_failure = absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
    }
  };
  for (const auto& name : targets) {
    if (name != kLogNotifier) deliver(name);
  }
  // The log records a delivery: it is written when the rest have taken it.
  const bool logged = std::find(targets.begin(), targets.end(), kLogNotifier) != targets.end();
  if (logged && first_failure.ok()) deliver(kLogNotifier);
  return first_failure;
}

absl::StatusOr<std::unique_ptr<Router>> BuildRouter(const internal::NotifierConfig& config) {
  std::vector<std::shared_ptr<Notifier>> notifiers;
  std::map<std::string, std::vector<std::string>> defaults;  // channel -> notifiers
  if (!config.smtp().url().empty()) {
    const auto& smtp = config.smtp();
    if (!absl::StartsWith(smtp.url(), "smtp://") && !absl::StartsWith(smtp.url(), "smtps://")) {
      return absl::InvalidArgumentError("notifier.smtp.url: must start with smtp:// or smtps://");
    }
    if (!smtp.starttls().empty() && smtp.starttls() != "required" &&
        smtp.starttls() != "optional" && smtp.starttls() != "off") {
      return absl::InvalidArgumentError(
          "notifier.smtp.starttls: must be \"required\", \"optional\" or \"off\"");
    }
    auto password = ReadSecret(smtp.password_file(), "notifier.smtp.password_file");
    if (!password.ok()) return password.status();
    std::map<std::string, internal::BrandConfig> brands(config.brands().begin(),
                                                        config.brands().end());
    notifiers.push_back(NewSmtpNotifier(smtp, *password, std::move(brands)));
    defaults["email"].push_back("smtp");
  }
  if (!config.chat().webhook_url().empty() || !config.chat().channel_urls().empty()) {
    notifiers.push_back(NewChatNotifier(config.chat()));
    defaults["chat"].push_back("chat");
  }
  if (!config.sms().url().empty()) {
    auto token = ReadSecret(config.sms().token_file(), "notifier.sms.token_file");
    if (!token.ok()) return token.status();
    notifiers.push_back(NewSmsNotifier(config.sms(), *token));
    defaults["sms"].push_back("sms");
  }
  for (int i = 0; i < config.webhooks_size(); ++i) {
    const auto& w = config.webhooks(i);
    const std::string where = absl::StrCat("notifier.webhooks[", i, "]");
    if (w.name().empty() || w.url().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": name and url are required"));
    }
    if (w.secret_file().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".secret_file: webhooks are always signed; give a secret file"));
    }
    auto secret = ReadSecret(w.secret_file(), absl::StrCat(where, ".secret_file"));
    if (!secret.ok()) return secret.status();
    if (secret->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".secret_file: the file is empty"));
    }
    notifiers.push_back(NewWebhookNotifier(w, *secret));
    defaults["webhook"].push_back(absl::StrCat("webhook:", w.name()));
  }
  if (!config.spool_dir().empty()) notifiers.push_back(NewSpoolNotifier(config.spool_dir()));
  if (config.log()) notifiers.push_back(NewLogNotifier());

  std::vector<internal::RouteConfig> routes(config.routes().begin(), config.routes().end());
  if (routes.empty()) {
    for (const char* channel : kChannels) {
      internal::RouteConfig r;
      r.set_channel(channel);
      for (const auto& n : defaults[channel]) r.add_notifiers(n);
      if (r.notifiers().empty() && !config.spool_dir().empty()) r.add_notifiers("spool");
      if (r.notifiers().empty()) continue;  // undeliverable: dead letters show it
      routes.push_back(std::move(r));
    }
  }
  if (config.log()) {
    for (auto& r : routes) {
      if (std::find(r.notifiers().begin(), r.notifiers().end(), kLogNotifier) == r.notifiers().end()) {
        r.add_notifiers(kLogNotifier);
      }
    }
  }
  return Router::Make(std::move(notifiers), std::move(routes));
}

}  // namespace casework::notify
