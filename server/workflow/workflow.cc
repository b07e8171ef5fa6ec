#include "server/workflow/workflow.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"

namespace casework::workflow {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void RemoveName(google::protobuf::RepeatedPtrField<std::string>* names,
                const std::string& name) {
  for (int i = 0; i < names->size(); ++i) {
    if (names->Get(i) == name) {
      names->DeleteSubrange(i, 1);
      return;
    }
  }
}

// Fills {field} parts of a template id from the case's template values.
std::string ResolveTemplateId(const std::string& pattern,
                              const std::map<std::string, std::string>& values) {
  if (pattern.find('{') == std::string::npos) return pattern;
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const auto& [k, v] : values) replacements.emplace_back("{" + k + "}", v);
  return absl::StrReplaceAll(pattern, replacements);
}

}  // namespace

const std::vector<std::string>& AllRoles() {
  static const std::vector<std::string> roles = {kCsAgent, kOps,     kApprover,
                                                 kTeamLead, kAdmin, kService};
  return roles;
}

void ActionContext::AddEvent(v1::EventType type, std::string message,
                             std::map<std::string, std::string> attributes) {
  v1::TimelineEvent event;
  event.set_type(type);
  event.set_message(std::move(message));
  for (auto& [k, v] : attributes) (*event.mutable_attributes())[k] = std::move(v);
  decision.events.push_back(std::move(event));
}

void ActionContext::Notify(const std::string& template_id, v1::Channel channel,
                           Audience audience, v1::EventType event_type,
                           std::string message,
                           const std::map<std::string, std::string>& extra_values) {
  NotificationRequest request;
  request.values = workflow.TemplateValues(record);
  for (const auto& [k, v] : extra_values) request.values[k] = v;
  request.template_id = ResolveTemplateId(template_id, request.values);
  request.channel = channel;
  request.recipient = workflow.Recipient(record, audience);
  request.language_code = workflow.LanguageCode(record);
  request.event_type = event_type;
  request.event_message = std::move(message);
  decision.notifications.push_back(std::move(request));
}

const Transition* WorkflowSpec::Find(const std::string& action) const {
  for (const auto& t : transitions) {
    if (t.action == action) return &t;
  }
  return nullptr;
}

bool WorkflowSpec::IsFinal(const std::string& state) const {
  return Contains(final_states, state);
}

void MoveTo(ActionContext& ctx, const std::string& state) {
  const std::string from = ctx.record.state();
  if (from == state) return;
  ctx.record.set_state(state);
  *ctx.record.mutable_state_change_time() = ToProto(ctx.now);
  v1::TimelineEvent event;
  event.set_type(v1::EVENT_TYPE_STATE_CHANGED);
  event.set_from_state(from);
  event.set_to_state(state);
  event.set_message(absl::StrCat("Moved from ", from, " to ", state));
  ctx.decision.events.push_back(std::move(event));
}

absl::StatusOr<Decision> Decide(const Workflow& workflow,
                                const CaseRecord& before,
                                const std::string& action, const Actor& actor,
                                const google::protobuf::Message* input,
                                const std::string& timer_name, absl::Time now) {
  const WorkflowSpec& spec = workflow.spec();
  const Transition* t = spec.Find(action);
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.kind, " has no action ", action));
  }
  if (!Contains(t->roles, actor.role)) {
    return WithErrorInfo(
        absl::PermissionDeniedError(absl::StrCat(
            action, " requires role ", absl::StrJoin(t->roles, " or "),
            "; the caller acts as '", actor.role, "'")),
        "ROLE_NOT_ALLOWED",
        {{"action", action}, {"required_roles", absl::StrJoin(t->roles, ",")}});
  }
  const bool creating = t->from.empty();
  if (!creating && !Contains(t->from, before.state())) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(
            "cannot ", action, " a ", spec.kind, " in state ", before.state(),
            "; allowed from ", absl::StrJoin(t->from, ", "))),
        "ILLEGAL_TRANSITION", {{"action", action}, {"state", before.state()}});
  }

  Decision decision;
  decision.record = before;
  ActionContext ctx{workflow, before, decision.record, input, timer_name,
                    actor,    now,    decision};
  if (!timer_name.empty()) RemoveName(decision.record.mutable_armed_timers(), timer_name);

  if (creating) {
    decision.record.set_state(t->to);
    *decision.record.mutable_create_time() = ToProto(now);
    *decision.record.mutable_state_change_time() = ToProto(now);
    ctx.AddEvent(v1::EVENT_TYPE_CASE_CREATED, absl::StrCat("Opened in ", t->to));
  }
  if (t->apply) {
    if (absl::Status s = t->apply(ctx); !s.ok()) return s;
  }
  if (!decision.changed) return decision;
  if (!creating && !t->to.empty()) MoveTo(ctx, t->to);

  const bool state_changed = decision.record.state() != before.state();
  if (state_changed && !creating) {
    // Timers belong to the state that armed them.
    for (const auto& name : before.armed_timers()) {
      if (name == timer_name) continue;
      decision.timers_cancel.push_back(name);
      RemoveName(decision.record.mutable_armed_timers(), name);
    }
  }
  if (decision.record.secrets_size() > 0 &&
      !Contains(spec.secret_states, decision.record.state())) {
    decision.record.clear_secrets();
    ctx.AddEvent(v1::EVENT_TYPE_SECRET_WIPED, "Stored secrets erased");
  }

  for (const auto& arm : t->arm) {
    decision.timers_arm.push_back(TimerArm{arm.name, now + arm.delay});
  }
  for (const auto& a : decision.timers_arm) {
    RemoveName(decision.record.mutable_armed_timers(), a.name);
    decision.record.add_armed_timers(a.name);
    decision.timers_cancel.erase(
        std::remove(decision.timers_cancel.begin(), decision.timers_cancel.end(), a.name),
        decision.timers_cancel.end());
  }

  for (const auto& n : t->notify) {
    ctx.Notify(n.template_id, n.channel, n.audience,
               v1::EVENT_TYPE_NOTIFICATION_QUEUED, n.event_message);
  }
  *decision.record.mutable_update_time() = ToProto(now);
  return decision;
}

std::string ToDot(const WorkflowSpec& spec) {
  std::string out = absl::StrCat("digraph ", spec.kind, " {\n  rankdir=LR;\n");
  absl::StrAppend(&out, "  start [shape=point];\n");
  for (const auto& s : spec.states) {
    absl::StrAppend(&out, "  ", s, " [shape=",
                    spec.IsFinal(s) ? "doublecircle" : "box", "];\n");
  }
  for (const auto& t : spec.transitions) {
    const std::string label = absl::StrCat(t.action, "\\n[", absl::StrJoin(t.roles, ","), "]");
    if (t.from.empty()) {
      absl::StrAppend(&out, "  start -> ", t.to, " [label=\"", label, "\"];\n");
      continue;
    }
    for (const auto& f : t.from) {
      const std::string& to = t.to.empty() ? f : t.to;
      absl::StrAppend(&out, "  ", f, " -> ", to, " [label=\"", label, "\"",
                      t.to.empty() ? ", style=dashed" : "", "];\n");
    }
  }
  out += "}\n";
  return out;
}

}  // namespace casework::workflow
