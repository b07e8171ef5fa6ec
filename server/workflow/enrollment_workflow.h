// Device protection enrollments (seed 003), as a workflow declaration.
#ifndef CASEWORK_SERVER_WORKFLOW_ENROLLMENT_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_ENROLLMENT_WORKFLOW_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "casework/v1/protection.pb.h"
#include "server/workflow/workflow.h"

namespace casework::workflow {

inline constexpr char kEnrollmentKind[] = "enrollment";
// Resource collection of its cases in the API: "enrollments/{id}".
inline constexpr char kEnrollmentCollection[] = "enrollments";
// The state of an enrollment in force (the other is CANCELLED).
inline constexpr char kEnrollmentActive[] = "ACTIVE";
inline constexpr char kEnrollmentCreate[] = "create";
inline constexpr char kEnrollmentUpdateContact[] = "update_contact";
inline constexpr char kEnrollmentUpdatePayment[] = "update_payment";
inline constexpr char kEnrollmentAddDevice[] = "add_device";
inline constexpr char kEnrollmentRemoveDevice[] = "remove_device";
inline constexpr char kEnrollmentChangePlan[] = "change_plan";
inline constexpr char kEnrollmentVerifyContact[] = "verify_contact";
inline constexpr char kEnrollmentCancel[] = "cancel";
inline constexpr char kEnrollmentContactBounced[] = "contact_bounced";

// Commands take a casework.internal.EnrollmentInput.
std::unique_ptr<Workflow> NewEnrollmentWorkflow();

// A protection plan number from 8 random digits: "DP-dddd-dddd-c", c the
// Luhn check digit of the eight.
std::string FormatPlanNumber(absl::string_view eight_digits);
bool IsPlanNumber(absl::string_view s);
// True for what looks like a raw payment card number: 13 to 19 digits
// (spaces and dashes ignored) with a valid Luhn check digit.
bool LooksLikeCardNumber(absl::string_view s);
// How enrollments know a device: its IMEI, or its serial number without one,
// in capitals (serial numbers are read out and typed in either case).
std::string DeviceKey(const v1::ProtectedDevice& d);
// The same for a device a caller names by IMEI or serial number.
std::string DeviceKey(absl::string_view imei_or_serial);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_ENROLLMENT_WORKFLOW_H_
