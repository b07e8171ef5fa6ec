// Device protection claims (seed 003), as a workflow declaration.
#ifndef CASEWORK_SERVER_WORKFLOW_CLAIM_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_CLAIM_WORKFLOW_H_

#include <memory>

#include "server/workflow/workflow.h"

namespace casework::workflow {

inline constexpr char kClaimKind[] = "claim";
// Resource collection of its cases in the API: "claims/{id}".
inline constexpr char kClaimCollection[] = "claims";
inline constexpr char kClaimReport[] = "create";
inline constexpr char kClaimRequestDocuments[] = "request_documents";
inline constexpr char kClaimAttachDocument[] = "attach_document";
inline constexpr char kClaimStartReview[] = "start_review";
inline constexpr char kClaimAwaitDocuments[] = "await_documents";
inline constexpr char kClaimResumeReview[] = "resume_review";
inline constexpr char kClaimResolve[] = "resolve";
inline constexpr char kClaimDeny[] = "deny";

// Commands take a casework.internal.ClaimInput.
std::unique_ptr<Workflow> NewClaimWorkflow();

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_CLAIM_WORKFLOW_H_
