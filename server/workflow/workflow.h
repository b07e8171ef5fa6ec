// Workflows as data: each case kind declares its states, the transitions
// between them, the roles allowed to perform each, guards and effects.
// Decide() turns (case, command) into a Decision without any I/O; the engine
// commits the decision atomically. This file links neither gRPC nor RocksDB.
#ifndef CASEWORK_SERVER_WORKFLOW_WORKFLOW_H_
#define CASEWORK_SERVER_WORKFLOW_WORKFLOW_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "casework/internal/records.pb.h"
#include "casework/v1/admin.pb.h"
#include "casework/v1/common.pb.h"
#include "google/protobuf/message.h"
#include "server/sla/ledger.h"

namespace casework::workflow {

using internal::CaseRecord;

// Roles (SPEC section 4.2). "system" is the server itself (timers).
inline constexpr char kCsAgent[] = "cs_agent";
inline constexpr char kOps[] = "ops";
inline constexpr char kApprover[] = "approver";
inline constexpr char kTeamLead[] = "team_lead";
inline constexpr char kAdmin[] = "admin";
inline constexpr char kService[] = "service";
inline constexpr char kSystem[] = "system";
const std::vector<std::string>& AllRoles();

struct Actor {
  std::string principal;
  std::string role;
};

// Business calendars by resource name ("calendars/default"); null when
// unknown. Supplied by the engine so that Decide() stays free of I/O.
using CalendarLookup = std::function<const sla::Calendar*(const std::string&)>;
// The calendar `name` for a clock to start on or a message to wait for:
// null when unknown or deleted (a deleted one only measures the clocks that
// ran on it).
const sla::Calendar* CalendarToStartOn(const CalendarLookup& calendars, const std::string& name);

// The built-in action that re-derives SLA deadlines after a calendar edit.
inline constexpr char kRecomputeSlaAction[] = "sla:recompute";
// The built-in action that records on the timeline a notification that went
// to the dead letters; its input is the internal::OutboxMessage.
inline constexpr char kNotificationFailedAction[] = "notify:failed";
// And the one that records an admin sending a dead letter again (same input).
inline constexpr char kNotificationRequeuedAction[] = "notify:requeued";

// Who a notification goes to; the workflow resolves the address.
enum class Audience { kCustomer, kOps };

// "Send template T to audience A", declared on a transition. The template
// id may contain {field} parts filled from the case's template values, e.g.
// "trade_in.contact.{problem}".
struct NotifySpec {
  std::string template_id;
  v1::Channel channel;
  Audience audience;
  // Timeline message recorded with the notification, e.g. "Email sent".
  std::string event_message;
  // Hold delivery until the next business hour of the workflow's
  // notification calendar.
  bool business_hours = false;
};

// An SLA clock operation declared on a transition.
struct SlaEffect {
  enum Op { kStart, kPause, kResume, kStop };
  Op op;
  std::string sla;
  // Why, for pauses (e.g. "waiting for the customer's documents").
  std::string reason;
};

// "Arm timer `name` to fire after `delay`", declared on a transition.
struct TimerSpec {
  std::string name;
  absl::Duration delay;
};

// A notification a decision asks for, before rendering.
struct NotificationRequest {
  std::string template_id;
  v1::Channel channel;
  std::string recipient;
  std::string language_code;
  std::map<std::string, std::string> values;
  std::string event_message;
  v1::EventType event_type = v1::EVENT_TYPE_NOTIFICATION_QUEUED;
  // Not delivered before this instant (business-hours hold).
  absl::Time not_before = absl::InfinitePast();
};

struct TimerArm {
  std::string name;
  absl::Time due;
};

// Everything a command changes. Events carry type, message and attributes;
// the engine numbers them and stamps time and actor.
struct Decision {
  CaseRecord record;
  std::vector<v1::TimelineEvent> events;
  std::vector<NotificationRequest> notifications;
  std::vector<TimerArm> timers_arm;
  std::vector<std::string> timers_cancel;
  std::map<std::string, std::string> attachments_put;
  std::vector<std::string> attachments_delete;
  // Directory records changed with the case, as (space, key, value): e.g.
  // a corrected profile. Committed in the same atomic write.
  std::vector<std::tuple<std::string, std::string, std::string>> directory_writes;
  // A value returned to the caller only (e.g. a revealed secret).
  std::string reveal;
  // False when the command changed nothing worth committing (e.g. a stale
  // timer, or a case given to whom it is already given): nothing is
  // written but a fired timer's consumption, and a caller gets the case as
  // it is.
  bool changed = true;
};

class Workflow;

// What an action's code sees.
struct ActionContext {
  const Workflow& workflow;
  const CaseRecord& before;
  CaseRecord& record;  // the new record, already a copy of `before`
  const google::protobuf::Message* input;  // the request; null for timers
  std::string timer_name;                  // set when a timer fired
  Actor actor;
  absl::Time now;
  Decision& decision;
  const CalendarLookup& calendars;

  void AddEvent(v1::EventType type, std::string message,
                std::map<std::string, std::string> attributes = {});
  // Queues a notification rendered from the new record's template values
  // plus `extra_values`; the engine records it with `event_type`/`message`.
  void Notify(const std::string& template_id, v1::Channel channel,
              Audience audience, v1::EventType event_type, std::string message,
              const std::map<std::string, std::string>& extra_values = {},
              absl::Time not_before = absl::InfinitePast());
  // When a notification held for business hours would go out.
  absl::Time NextBusinessHour() const;
  // SLA clock operations on the new record; each is recorded in the
  // timeline. Start (re)starts the clock from the spec's policy; pause,
  // resume and stop do nothing when the clock is not in a fitting state.
  absl::Status ApplySla(const SlaEffect& effect);
  sla::SlaLedger* FindSla(const std::string& name);
};

using ActionFn = std::function<absl::Status(ActionContext&)>;

struct Transition {
  // Command name, e.g. "contact_customer"; timers use "timer:<prefix>".
  std::string action;
  // States the case may be in. Empty for the creating transition.
  std::vector<std::string> from;
  // Target state; empty keeps the current one.
  std::string to;
  std::vector<std::string> roles;
  std::string description;
  std::vector<NotifySpec> notify;
  std::vector<TimerSpec> arm;
  // Guards and field changes; may add events, notifications and timers.
  ActionFn apply;
  // SLA clock operations, applied after `apply` and the state change.
  std::vector<SlaEffect> sla = {};
};

struct WorkflowSpec {
  std::string kind;  // "trade_in"
  std::string collection;  // "tradeIns", as in resource names
  std::vector<std::string> states;  // board order
  std::vector<std::string> final_states;
  // States in which stored secrets may exist; leaving them wipes secrets.
  std::vector<std::string> secret_states;
  std::vector<Transition> transitions;
  // SLA policies by ledger name. A rung "R" (or series "R.N") of SLA "S"
  // fires the transition named "sla:S/R" if there is one.
  std::vector<sla::SlaPolicy> slas;
  // What to tell a caller whose action is not allowed in a state, e.g.
  // {"OPEN", "verify the customer's identity first"}.
  std::map<std::string, std::string> state_hints;
  // Whether Workflow::FormerIndexKeys gives entries for some of its cases:
  // the former_index_keys upgrade reads only the cases of kinds that do.
  bool has_former_index_keys = false;

  const Transition* Find(const std::string& action) const;
  bool IsFinal(const std::string& state) const;
};

// Every case kind takes notes: a person's text on the timeline, in any
// state, from any role. `text` reads it from the kind's request.
inline constexpr char kComment[] = "comment";
Transition CommentTransition(const std::vector<std::string>& states,
                             std::function<std::string(const ActionContext&)> text);
// And every case kind is given to someone, or back to the board, while it
// is open: `assignee` reads who from the kind's request ("" hands it back).
inline constexpr char kAssign[] = "assign";
Transition AssignTransition(const WorkflowSpec& spec,
                            std::function<std::string(const ActionContext&)> assignee);

class Workflow {
 public:
  virtual ~Workflow() = default;
  virtual const WorkflowSpec& spec() const = 0;
  // Kind-specific (index, key) pairs of a record, e.g. ("v_number", "V123").
  virtual std::vector<std::pair<std::string, std::string>> IndexKeys(
      const CaseRecord& record) const = 0;
  // Values that templates of this procedure may use.
  virtual std::map<std::string, std::string> TemplateValues(
      const CaseRecord& record) const = 0;
  // Placeholders templates of this procedure may use (for validation).
  virtual std::vector<std::string> TemplateFields() const = 0;
  virtual std::string Recipient(const CaseRecord& record,
                                Audience audience) const = 0;
  virtual std::string LanguageCode(const CaseRecord& record) const = 0;
  // The reference customers quote (shown in email subjects): the case id
  // unless the procedure has its own number.
  virtual std::string Reference(const CaseRecord& record) const { return record.id(); }
  // Unique keys a record holds, e.g. ("open_unlock_imei", imei): another
  // case holding the same key makes a commit fail with ALREADY_EXISTS.
  virtual std::vector<std::pair<std::string, std::string>> UniqueKeys(
      const CaseRecord& record) const {
    return {};
  }
  // Index entries (index, key) an older version wrote for `record` that
  // IndexKeys no longer gives, e.g. a key now spelt otherwise. The store
  // upgrade former_index_keys replaces them with the current ones; what
  // this returns changes only together with a new upgrade.
  virtual std::vector<std::pair<std::string, std::string>> FormerIndexKeys(
      const CaseRecord& record) const {
    return {};
  }
  // The policy a clock uses for this case: e.g. the account region's
  // calendar, or the plan's review time. A calendar that does not exist
  // falls back to the declared one.
  virtual sla::SlaPolicy AdjustSlaPolicy(const CaseRecord& record,
                                         sla::SlaPolicy policy) const {
    return policy;
  }
  // Calendar that business-hours holds of this procedure use.
  virtual std::string NotificationCalendar(const CaseRecord& record) const {
    return "calendars/default";
  }
};

// The message an action was called with, as the type its workflow takes:
// the RPC request itself (trade-ins) or the workflow's internal input that
// packs the request with what the RPC layer looked up for it (an account,
// a profile, a plan). An empty message when it is not of that type, a
// programming error that the action's own checks then report.
template <typename T>
const T& InputAs(const ActionContext& ctx) {
  static const T kEmpty;
  const auto* typed = dynamic_cast<const T*>(ctx.input);
  return typed != nullptr ? *typed : kEmpty;
}

// The RPC request `T` packed in the workflow's input `In`.
template <typename T, typename In>
absl::StatusOr<T> RequestIn(const ActionContext& ctx) {
  T out;
  if (!InputAs<In>(ctx).request().UnpackTo(&out)) {
    return absl::InternalError(absl::StrCat(ctx.workflow.spec().kind, " action without its ",
                                            T::descriptor()->name()));
  }
  return out;
}

// Reads one text field of the request packed in `In`, "" when it is
// missing: for CommentTransition and AssignTransition, e.g.
// RequestText<internal::ClaimInput>(&v1::AddClaimCommentRequest::text).
template <typename In, typename T>
std::function<std::string(const ActionContext&)> RequestText(const std::string& (T::*field)() const) {
  return [field](const ActionContext& ctx) {
    auto req = RequestIn<T, In>(ctx);
    return req.ok() ? ((*req).*field)() : std::string();
  };
}

// Applies `action` to `before` (for the creating transition `before` is a
// record holding only id, kind and times). Errors, with nothing decided:
//   NOT_FOUND-like misuse: INVALID_ARGUMENT for an unknown action;
//   PERMISSION_DENIED: the actor's role may not perform the action;
//   FAILED_PRECONDITION: the case is not in a state the action starts from,
//     or a guard failed (google.rpc.ErrorInfo reason says which);
//   INVALID_ARGUMENT: the input was refused by the action.
//
// SLA rung timers ("sla/S/R") are handled here for every workflow: a rung
// of a clock that is not running, or already fired, changes nothing
// (Decision.changed is false); otherwise the rung is marked fired, warning
// and breach rungs are recorded, and the transition "sla:S/R" (without a
// ".N" suffix) runs if the case is in one of its states. After every
// decision the due times of all SLA rungs are derived again and their
// timers armed or cancelled to match.
absl::StatusOr<Decision> Decide(const Workflow& workflow,
                                const CaseRecord& before,
                                const std::string& action, const Actor& actor,
                                const google::protobuf::Message* input,
                                const std::string& timer_name, absl::Time now,
                                const CalendarLookup& calendars);

// The action a timer fires: "timer:<prefix>" for workflow timers
// ("reminder/2" -> "timer:reminder"), "sla:S/R" for rung timers
// ("sla/response/reminder.2" -> "sla:response/reminder").
std::string TimerAction(const std::string& timer_name);

// `policy` with the calendar the workflow picks for this case, when that
// calendar exists.
sla::SlaPolicy EffectivePolicy(const Workflow& workflow, const CaseRecord& record,
                               const sla::SlaPolicy& policy, const CalendarLookup& calendars);

// A day as customers' emails give it, unambiguous wherever they read it:
// "9 December 2026", the day `t` falls on in `zone_name` (UTC when empty or
// unknown).
std::string CustomerDate(absl::Time t, const std::string& zone_name);

// Renders the workflow as a Graphviz digraph.
std::string ToDot(const WorkflowSpec& spec);

// Sets the state, stamps state_change_time and records the event. Used by
// Decide; exposed for actions that choose their target at run time.
void MoveTo(ActionContext& ctx, const std::string& state);

}  // namespace casework::workflow

#endif  // CASEWORK_SERVER_WORKFLOW_WORKFLOW_H_
