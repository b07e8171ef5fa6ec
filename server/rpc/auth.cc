#include "server/rpc/auth.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/common/files.h"
#include "server/common/log.h"
#include "server/common/secret_box.h"

namespace casework::rpc {
namespace {

constexpr char kPrincipalHeader[] = "x-casework-principal";
constexpr char kRoleHeader[] = "x-casework-role";
constexpr absl::Duration kReloadCheck = absl::Seconds(1);

std::string Metadata(const grpc::CallbackServerContext& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

bool KnownRole(const std::string& role) {
  const auto& roles = workflow::AllRoles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Picks the role the caller asked for among those granted.
absl::StatusOr<workflow::Actor> ActorOf(const Grant& grant, const std::string& wanted_role) {
  if (wanted_role.empty()) return workflow::Actor{grant.principal, grant.roles.front()};
  if (std::find(grant.roles.begin(), grant.roles.end(), wanted_role) == grant.roles.end()) {
    return absl::PermissionDeniedError(absl::StrCat(grant.principal, " does not hold role ",
                                                    wanted_role));
  }
  return workflow::Actor{grant.principal, wanted_role};
}

}  // namespace

std::string HashToken(const std::string& token) {
  return absl::StrCat("sha256:", Sha256Hex(token));
}

absl::StatusOr<Credentials> ParseTokenFile(const std::string& text) {
  Credentials out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("token file line ", line_no, ": ", why));
    };
    if (f.size() != 4 || (f[0] != "token" && f[0] != "cert")) {
      return bad("expected `token sha256:HEX PRINCIPAL ROLES` or `cert NAME PRINCIPAL ROLES`");
    }
    Grant grant{f[2], absl::StrSplit(f[3], ',', absl::SkipEmpty())};
    if (grant.principal.size() > 128) return bad("principal is longer than 128 bytes");
    for (const auto& role : grant.roles) {
      if (!KnownRole(role)) return bad(absl::StrCat("unknown role ", role));
    }
    if (grant.roles.empty()) return bad("no role");
    if (f[0] == "token") {
      const std::string& hash = f[1];
      if (!absl::StartsWith(hash, "sha256:") || hash.size() != 7 + 64 ||
          hash.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
        return bad("the token must be given as sha256: and 64 lower-case hex digits");
      }
      if (!out.tokens.emplace(hash, std::move(grant)).second) return bad("token listed twice");
    } else if (!out.certs.emplace(f[1], std::move(grant)).second) {
      return bad("certificate name listed twice");
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Make(std::string token_file,
                                                                   bool header_identity) {
  std::unique_ptr<Authenticator> a(new Authenticator(std::move(token_file), header_identity));
  a->credentials_ = std::make_shared<Credentials>();
  if (!a->token_file_.empty()) {
    if (auto s = a->Reload(); !s.ok()) return s;
  }
  return a;
}

absl::Status Authenticator::Reload() {
  const int64_t mtime = MtimeNs(token_file_);
  auto text = ReadWholeFile(token_file_);
  if (!text) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", token_file_));
  auto parsed = ParseTokenFile(*text);
  if (!parsed.ok()) return parsed.status();
  auto fresh = std::make_shared<const Credentials>(*std::move(parsed));
  std::lock_guard<std::mutex> lock(mu_);
  Log(LogLevel::kInfo, "token_file_loaded",
      {{"bearer_grants", absl::StrCat(fresh->tokens.size())},
       {"certificate_grants", absl::StrCat(fresh->certs.size())}});
  credentials_ = std::move(fresh);
  loaded_mtime_ns_ = mtime;
  return absl::OkStatus();
}

void Authenticator::ReloadIfChanged() {
  if (token_file_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    if (now < next_check_) return;
    next_check_ = now + kReloadCheck;
    if (MtimeNs(token_file_) == loaded_mtime_ns_) return;
  }
  if (absl::Status s = Reload(); !s.ok()) {
    Log(LogLevel::kError, "token_file_reload_failed", {{"error", std::string(s.message())}});
    std::lock_guard<std::mutex> lock(mu_);
    loaded_mtime_ns_ = MtimeNs(token_file_);  // do not retry a broken file every second
  }
}

std::shared_ptr<const Credentials> Authenticator::credentials() {
  ReloadIfChanged();
  std::lock_guard<std::mutex> lock(mu_);
  return credentials_;
}

absl::StatusOr<workflow::Actor> Authenticator::Authenticate(const grpc::CallbackServerContext& ctx) {
  const std::string wanted_role = Metadata(ctx, kRoleHeader);
  const std::string authorization = Metadata(ctx, "authorization");
  auto creds = credentials();
  if (!authorization.empty()) {
    if (!absl::StartsWith(authorization, "Bearer ")) {
      return absl::UnauthenticatedError("authorization must be `Bearer <token>`");
    }
    auto it = creds->tokens.find(HashToken(authorization.substr(7)));
    if (it == creds->tokens.end()) return absl::UnauthenticatedError("unknown token");
    return ActorOf(it->second, wanted_role);
  }
  if (auto auth = ctx.auth_context(); auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const auto& value : auth->FindPropertyValues(property)) {
        auto it = creds->certs.find(std::string(value.data(), value.size()));
        if (it != creds->certs.end()) return ActorOf(it->second, wanted_role);
      }
    }
    if (!header_identity_) {
      return absl::UnauthenticatedError("the client certificate is not in the token file");
    }
  }
  if (header_identity_) {
    workflow::Actor actor{Metadata(ctx, kPrincipalHeader), wanted_role};
    if (actor.principal.empty() || actor.role.empty()) {
      return absl::UnauthenticatedError(absl::StrCat("say who you are: set the ", kPrincipalHeader,
                                                     " and ", kRoleHeader, " metadata"));
    }
    if (actor.principal.size() > 128) {
      return absl::UnauthenticatedError("principal is longer than 128 bytes");
    }
    if (!KnownRole(actor.role)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "unknown role '", actor.role, "'; roles are cs_agent, ops, approver, team_lead, admin, service"));
    }
    return actor;
  }
  return absl::UnauthenticatedError("send `authorization: Bearer <token>` metadata");
}

}  // namespace casework::rpc
