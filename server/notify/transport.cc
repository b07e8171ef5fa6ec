#include "server/notify/transport.h"

#include <curl/curl.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace casework::notify {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

Slist ToSlist(const std::vector<std::string>& lines) {
  curl_slist* list = nullptr;
  for (const auto& l : lines) list = curl_slist_append(list, l.c_str());
  return Slist(list);
}

// Idle connections the process keeps open to receivers. The cache is the
// whole process's, and libcurl's default of 5 would have the senders of
// four lanes (notifier.senders_per_channel each, 4 unless set), some to
// several receivers, close each other's. 64 keeps one for every sender of
// every lane at the most senders a channel may have (16).
constexpr long kCachedConnections = 64;

// libcurl, set up once, and one connection cache for every transfer of the
// process: the next message to a receiver goes over the connection the last
// one used, already through its TCP, TLS and SMTP greeting and login,
// instead of opening its own. libcurl checks a cached connection is still
// up before it reuses it, and reuses it only for the same receiver, TLS
// settings and credentials.
CURLSH* SharedConnections() {
  static CURLSH* const share = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static std::mutex locks[CURL_LOCK_DATA_LAST];
    CURLSH* sh = curl_share_init();
    if (sh == nullptr) return sh;
    curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, +[](CURL*, curl_lock_data data, curl_lock_access, void*) {
      locks[data].lock();
    });
    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data data, void*) { locks[data].unlock(); });
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return sh;
  }();
  return share;
}

CurlHandle NewHandle(const std::string& url, const std::string& ca_file, absl::Duration timeout) {
  CURLSH* share = SharedConnections();  // before the first handle: it sets libcurl up
  CurlHandle h(curl_easy_init());
  if (!h) return h;
  if (share != nullptr) {
    curl_easy_setopt(h.get(), CURLOPT_SHARE, share);
    curl_easy_setopt(h.get(), CURLOPT_MAXCONNECTS, kCachedConnections);
  }
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(std::min(timeout, absl::Seconds(5)))));
  if (!ca_file.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, ca_file.c_str());
  return h;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// Feeds a string to libcurl's upload.
struct Reader {
  const std::string* text;
  size_t offset = 0;
  static size_t Read(char* buffer, size_t size, size_t n, void* self) {
    auto* r = static_cast<Reader*>(self);
    const size_t room = size * n;
    const size_t left = r->text->size() - r->offset;
    const size_t take = std::min(room, left);
    std::memcpy(buffer, r->text->data() + r->offset, take);
    r->offset += take;
    return take;
  }
};

}  // namespace

absl::Status Post(const HttpPost& request) {
  CurlHandle h = NewHandle(request.url, request.ca_file, request.timeout);
  if (!h) return absl::UnavailableError("cannot start an HTTP request");
  Slist headers = ToSlist(request.headers);
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &Discard);
  const CURLcode rc = curl_easy_perform(h.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("HTTP request failed: ", curl_easy_strerror(rc)));
  }
  long code = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300) return absl::OkStatus();
  const std::string what = absl::StrCat("receiver answered HTTP ", code);
  if (code == 408 || code == 425 || code == 429 || code >= 500) return absl::UnavailableError(what);
  return absl::InvalidArgumentError(what);
}

absl::Status Submit(const SmtpSubmission& s) {
  CurlHandle h = NewHandle(s.url, s.ca_file, s.timeout);
  if (!h) return absl::UnavailableError("cannot start an SMTP session");
  const bool implicit_tls = absl::StartsWith(s.url, "smtps://");
  if (!implicit_tls) {
    const long use_ssl = s.starttls == StartTls::kRequired   ? CURLUSESSL_ALL
                         : s.starttls == StartTls::kOptional ? CURLUSESSL_TRY
                                                             : CURLUSESSL_NONE;
    curl_easy_setopt(h.get(), CURLOPT_USE_SSL, use_ssl);
  }
  if (!s.username.empty()) {
    curl_easy_setopt(h.get(), CURLOPT_USERNAME, s.username.c_str());
    curl_easy_setopt(h.get(), CURLOPT_PASSWORD, s.password.c_str());
  }
  const std::string from = absl::StrCat("<", s.envelope_from, ">");
  curl_easy_setopt(h.get(), CURLOPT_MAIL_FROM, from.c_str());
  std::vector<std::string> to;
  for (const auto& r : s.envelope_to) to.push_back(absl::StrCat("<", r, ">"));
  Slist rcpt = ToSlist(to);
  curl_easy_setopt(h.get(), CURLOPT_MAIL_RCPT, rcpt.get());
  Reader reader{&s.message};
  curl_easy_setopt(h.get(), CURLOPT_READFUNCTION, &Reader::Read);
  curl_easy_setopt(h.get(), CURLOPT_READDATA, &reader);
  curl_easy_setopt(h.get(), CURLOPT_UPLOAD, 1L);
  const CURLcode rc = curl_easy_perform(h.get());
  if (rc == CURLE_OK) return absl::OkStatus();
  long code = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
  const std::string what = absl::StrCat("SMTP submission failed: ", curl_easy_strerror(rc),
                                        code ? absl::StrCat(" (reply ", code, ")") : "");
  if (code >= 500 && code < 600 && rc != CURLE_LOGIN_DENIED) {
    return absl::InvalidArgumentError(what);
  }
  return absl::UnavailableError(what);
}

}  // namespace casework::notify
