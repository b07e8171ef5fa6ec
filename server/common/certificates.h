// What caseworkd reads from its TLS files itself (gRPC serves them): whether
// a key belongs to its certificate, and when the certificate expires; and a
// watch that reads them again as gRPC does and logs what changed.
#ifndef CASEWORK_SERVER_COMMON_CERTIFICATES_H_
#define CASEWORK_SERVER_COMMON_CERTIFICATES_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/common/background_loop.h"

namespace casework {

// The end of the validity of the first certificate in `cert_pem` (the
// server's own, ahead of its chain).
absl::StatusOr<absl::Time> CertificateExpiry(absl::string_view cert_pem);

// OK when `key_pem` is the private key of the first certificate in
// `cert_pem`; otherwise INVALID_ARGUMENT saying what is wrong.
absl::Status CheckKeyPair(absl::string_view cert_pem, absl::string_view key_pem);

// The served certificate and key as the files hold them now. Each Check
// reads both; a change from the reading before is logged: a new
// certificate as tls_certificate_loaded with its end of validity, one that
// cannot be read or a key that is not the certificate's as an error. The
// first Check logs what is served at start.
class TlsFileWatch {
 public:
  struct Reading {
    std::optional<absl::Time> certificate_expiry;  // unset: unreadable
    bool key_matches = false;
  };

  TlsFileWatch(std::string cert_file, std::string key_file);
  ~TlsFileWatch();  // stops checking

  Reading Check();
  // Checks every `every` on a thread of its own from now on.
  void CheckEvery(absl::Duration every);

 private:
  const std::string cert_file_;
  const std::string key_file_;
  std::mutex mu_;
  std::optional<std::string> cert_pem_;  // as last read; unset before the first Check
  bool key_matched_ = false;
  std::unique_ptr<BackgroundLoop> loop_;
};

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_CERTIFICATES_H_
