// What caseworkd reads from its TLS files itself (gRPC serves them): whether
// a key belongs to its certificate, and when the certificate expires.
#ifndef CASEWORK_SERVER_COMMON_CERTIFICATES_H_
#define CASEWORK_SERVER_COMMON_CERTIFICATES_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace casework {

// The end of the validity of the first certificate in `cert_pem` (the
// server's own, ahead of its chain).
absl::StatusOr<absl::Time> CertificateExpiry(absl::string_view cert_pem);

// OK when `key_pem` is the private key of the first certificate in
// `cert_pem`; otherwise INVALID_ARGUMENT saying what is wrong.
absl::Status CheckKeyPair(absl::string_view cert_pem, absl::string_view key_pem);

}  // namespace casework

#endif  // CASEWORK_SERVER_COMMON_CERTIFICATES_H_
