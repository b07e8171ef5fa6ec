#include "server/common/certificates.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

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

}  // namespace casework
