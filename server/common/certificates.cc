#include "server/common/certificates.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/files.h"
#include "server/common/log.h"

namespace casework {
namespace {

struct OpenSslFree {
  void operator()(BIO* b) const { BIO_free(b); }
  void operator()(X509* x) const { X509_free(x); }
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
template <typename T>
using Owned = std::unique_ptr<T, OpenSslFree>;

Owned<BIO> Reader(absl::string_view pem) {
  return Owned<BIO>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// OpenSSL keeps its errors per thread; what a failed parse leaves there
// must not be taken later for the error of a TLS handshake on this thread.
template <typename T>
T Parsed(T parsed) {
  if (!parsed) ERR_clear_error();
  return parsed;
}

Owned<X509> FirstCertificate(absl::string_view pem) {
  return Parsed(Owned<X509>(PEM_read_bio_X509(Reader(pem).get(), nullptr, nullptr, nullptr)));
}

}  // namespace

absl::StatusOr<absl::Time> CertificateExpiry(absl::string_view cert_pem) {
  Owned<X509> cert = FirstCertificate(cert_pem);
  if (!cert) return absl::InvalidArgumentError("the certificate file holds no PEM certificate");
  std::tm end{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &end) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the certificate's end of validity cannot be read");
  }
  return absl::FromTM(end, absl::UTCTimeZone());
}

absl::Status CheckKeyPair(absl::string_view cert_pem, absl::string_view key_pem) {
  Owned<X509> cert = FirstCertificate(cert_pem);
  if (!cert) return absl::InvalidArgumentError("the certificate file holds no PEM certificate");
  Owned<EVP_PKEY> key = Parsed(
      Owned<EVP_PKEY>(PEM_read_bio_PrivateKey(Reader(key_pem).get(), nullptr, nullptr, nullptr)));
  if (!key) return absl::InvalidArgumentError("the key file holds no PEM private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the key file does not hold the certificate's key");
  }
  return absl::OkStatus();
}

TlsFileWatch::TlsFileWatch(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

TlsFileWatch::~TlsFileWatch() {
  if (loop_) loop_->Stop();
}

TlsFileWatch::Reading TlsFileWatch::Check() {
  // Held while reading too, so that two checks at once log changes in the
  // order the files went through them.
  std::lock_guard<std::mutex> lock(mu_);
  std::string cert = ReadWholeFile(cert_file_).value_or("");
  const absl::StatusOr<absl::Time> expiry = CertificateExpiry(cert);
  const absl::Status pair = CheckKeyPair(cert, ReadWholeFile(key_file_).value_or(""));
  Reading now;
  if (expiry.ok()) now.certificate_expiry = *expiry;
  now.key_matches = pair.ok();
  const bool changed = cert_pem_ != cert || key_matched_ != now.key_matches;
  cert_pem_ = std::move(cert);
  key_matched_ = now.key_matches;
  if (!changed) return now;
  if (!expiry.ok()) {
    Log(LogLevel::kError, "tls_certificate_unreadable",
        {{"cert_file", cert_file_}, {"error", std::string(expiry.status().message())}});
  } else if (!pair.ok()) {
    Log(LogLevel::kError, "tls_key_mismatch",
        {{"cert_file", cert_file_},
         {"key_file", key_file_},
         {"error", absl::StrCat(pair.message(), "; new connections fail until it does")}});
  } else {
    Log(LogLevel::kInfo, "tls_certificate_loaded",
        {{"cert_file", cert_file_},
         {"not_after", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *expiry, absl::UTCTimeZone())}});
  }
  return now;
}

void TlsFileWatch::CheckEvery(absl::Duration every) {
  loop_ = std::make_unique<BackgroundLoop>("tls-watch", [this, every] {
    Check();
    return absl::Now() + every;
  });
  loop_->Start();
}

}  // namespace casework
