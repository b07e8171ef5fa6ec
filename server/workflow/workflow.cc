#include "server/workflow/workflow.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "server/common/errors.h"
#include "server/common/proto_time.h"
#include "server/workflow/validation.h"

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
                           const std::map<std::string, std::string>& extra_values,
                           absl::Time not_before) {
  NotificationRequest request;
  request.not_before = not_before;
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

Transition CommentTransition(const std::vector<std::string>& states,
                             std::function<std::string(const ActionContext&)> text) {
  return {kComment, states, "", AllRoles(), "Add a note", {}, {},
          [text = std::move(text)](ActionContext& ctx) {
            const std::string note = text(ctx);
            FieldErrors errors;
            CheckNote(errors, "text", note, /*required=*/true);
            if (!errors.empty()) return errors.ToStatus();
            ctx.AddEvent(v1::EVENT_TYPE_COMMENT, note);
            return absl::OkStatus();
          }};
}

Transition AssignTransition(const WorkflowSpec& spec,
                            std::function<std::string(const ActionContext&)> assignee) {
  std::vector<std::string> open;
  for (const auto& s : spec.states) {
    if (!spec.IsFinal(s)) open.push_back(s);
  }
  return {kAssign, open, "", {kCsAgent, kOps, kApprover, kTeamLead, kAdmin}, "Give to someone", {}, {},
          [assignee = std::move(assignee)](ActionContext& ctx) {
            const std::string who = assignee(ctx);
            FieldErrors errors;
            CheckLine(errors, "assignee", who, kMaxAssignee, /*required=*/false);
            if (!errors.empty()) return errors.ToStatus();
            const std::string before = ctx.record.assignee();
            if (who == before) {
              // Already theirs (or already on the board): nothing to record.
              ctx.decision.changed = false;
              return absl::OkStatus();
            }
            ctx.record.set_assignee(who);
            ctx.AddEvent(v1::EVENT_TYPE_ASSIGNED,
                         who.empty()      ? absl::StrCat("Back on the board (was ", before, ")")
                         : before.empty() ? absl::StrCat("Assigned to ", who)
                                          : absl::StrCat("Reassigned from ", before, " to ", who),
                         {{"assignee", who}, {"previous_assignee", before}});
            return absl::OkStatus();
          }};
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

std::string TimerAction(const std::string& timer_name) {
  std::string sla_name, rung;
  if (sla::ParseRungTimerName(timer_name, &sla_name, &rung)) {
    const size_t dot = rung.find('.');
    return absl::StrCat("sla:", sla_name, "/", rung.substr(0, dot));
  }
  return absl::StrCat("timer:", timer_name.substr(0, timer_name.find('/')));
}

const sla::Calendar* CalendarToStartOn(const CalendarLookup& calendars, const std::string& name) {
  const sla::Calendar* cal = calendars(name);
  return cal != nullptr && !cal->retired() ? cal : nullptr;
}

namespace {

const sla::Calendar* CalendarOf(const CalendarLookup& calendars, const sla::SlaLedger& l) {
  return l.calendar().empty() ? nullptr : calendars(l.calendar());
}

bool SameTime(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}

const internal::SlaRungRecord* FindRung(const CaseRecord& r, const std::string& sla_name,
                                        const std::string& rung) {
  for (const auto& l : r.slas()) {
    if (l.name() != sla_name) continue;
    for (const auto& x : l.rungs()) {
      if (x.name() == rung) return &x;
    }
  }
  return nullptr;
}

// How the timeline names a message of `channel`.
std::string ChannelWord(v1::Channel channel) {
  switch (channel) {
    case v1::CHANNEL_EMAIL: return "Email";
    case v1::CHANNEL_CHAT: return "Chat message";
    case v1::CHANNEL_SMS: return "SMS";
    case v1::CHANNEL_WEBHOOK: return "Webhook call";
    default: return "Notification";
  }
}

bool IsArmed(const CaseRecord& r, const std::string& name) {
  return std::find(r.armed_timers().begin(), r.armed_timers().end(), name) != r.armed_timers().end();
}

// Derives every rung's due time, and keeps one timer armed per running
// clock: its next rung's (the earliest due that has not fired). Firing a
// rung arms the one after it, in the same commit; other rungs' timers are
// cancelled.
absl::Status RearmSlaTimers(ActionContext& ctx) {
  for (auto& ledger : *ctx.record.mutable_slas()) {
    const sla::Calendar* cal = CalendarOf(ctx.calendars, ledger);
    if (!ledger.calendar().empty() && cal == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("SLA ", ledger.name(), " uses unknown calendar ", ledger.calendar()));
    }
    sla::Derive(&ledger, cal);
    const internal::SlaRungRecord* next = nullptr;
    for (const auto& rung : ledger.rungs()) {
      if (rung.has_due_time() && (next == nullptr || rung.at_seconds() < next->at_seconds())) next = &rung;
    }
    for (const auto& rung : ledger.rungs()) {
      const std::string name = sla::RungTimerName(ledger.name(), rung.name());
      if (&rung == next) {
        const auto* old = FindRung(ctx.before, ledger.name(), rung.name());
        const bool unchanged = old != nullptr && old->has_due_time() &&
                               SameTime(old->due_time(), rung.due_time()) &&
                               IsArmed(ctx.before, name) && name != ctx.timer_name;
        if (!unchanged) ctx.decision.timers_arm.push_back({name, FromProto(rung.due_time())});
      } else if (IsArmed(ctx.record, name)) {
        ctx.decision.timers_cancel.push_back(name);
        RemoveName(ctx.record.mutable_armed_timers(), name);
      }
    }
  }
  return absl::OkStatus();
}

// Marks a fired rung; false when the rung no longer applies.
bool MarkRung(ActionContext& ctx, const std::string& sla_name, const std::string& rung_name) {
  sla::SlaLedger* ledger = ctx.FindSla(sla_name);
  if (ledger == nullptr || ledger->status() != v1::SLA_STATUS_RUNNING) return false;
  for (auto& rung : *ledger->mutable_rungs()) {
    if (rung.name() != rung_name) continue;
    if (rung.fired()) return false;
    rung.set_fired(true);
    const std::map<std::string, std::string> attrs = {{"sla", sla_name}, {"rung", rung_name}};
    if (rung.kind() == static_cast<int>(sla::RungKind::kWarning)) {
      ledger->set_warned(true);
      ctx.AddEvent(v1::EVENT_TYPE_SLA_WARNING,
                   absl::StrCat("SLA ", sla_name, " reached its warning point"), attrs);
    } else if (rung.kind() == static_cast<int>(sla::RungKind::kBreach)) {
      ledger->set_breached(true);
      ctx.AddEvent(v1::EVENT_TYPE_SLA_BREACHED, absl::StrCat("SLA ", sla_name, " breached"),
                   attrs);
    }
    return true;
  }
  return false;
}

}  // namespace

sla::SlaPolicy EffectivePolicy(const Workflow& workflow, const CaseRecord& record,
                               const sla::SlaPolicy& policy, const CalendarLookup& calendars) {
  sla::SlaPolicy out = workflow.AdjustSlaPolicy(record, policy);
  if (!out.calendar.empty() && CalendarToStartOn(calendars, out.calendar) == nullptr) {
    out.calendar = policy.calendar;
  }
  return out;
}

sla::SlaLedger* ActionContext::FindSla(const std::string& name) {
  for (auto& l : *record.mutable_slas()) {
    if (l.name() == name) return &l;
  }
  return nullptr;
}

absl::Time ActionContext::NextBusinessHour() const {
  const sla::Calendar* cal = CalendarToStartOn(calendars, workflow.NotificationCalendar(record));
  return cal != nullptr ? cal->NextBusinessMoment(now) : now;
}

absl::Status ActionContext::ApplySla(const SlaEffect& effect) {
  const std::map<std::string, std::string> attrs = {{"sla", effect.sla}};
  sla::SlaLedger* ledger = FindSla(effect.sla);
  const sla::Calendar* cal = ledger != nullptr ? CalendarOf(calendars, *ledger) : nullptr;
  v1::Actor who;
  who.set_principal(actor.principal);
  who.set_role(actor.role);
  switch (effect.op) {
    case SlaEffect::kStart: {
      const sla::SlaPolicy* policy = nullptr;
      for (const auto& p : workflow.spec().slas) {
        if (p.sla == effect.sla) policy = &p;
      }
      if (policy == nullptr) return absl::InternalError(absl::StrCat("no SLA policy ", effect.sla));
      if (ledger == nullptr) ledger = record.add_slas();
      const sla::SlaPolicy effective = EffectivePolicy(workflow, record, *policy, calendars);
      *ledger = sla::Start(effective, now);
      // A case's own calendar (its region's, say) that does not exist is
      // said where agents and team leads look, not only in the SLA view.
      const std::string wanted = workflow.AdjustSlaPolicy(record, *policy).calendar;
      AddEvent(v1::EVENT_TYPE_SLA_STARTED,
               wanted == effective.calendar
                   ? absl::StrCat("SLA ", effect.sla, " started")
                   : absl::StrCat("SLA ", effect.sla, " started on ", effective.calendar, ": ", wanted,
                                  " does not exist"),
               attrs);
      return absl::OkStatus();
    }
    case SlaEffect::kPause:
      if (ledger == nullptr || ledger->status() != v1::SLA_STATUS_RUNNING) return absl::OkStatus();
      if (auto s = sla::Pause(ledger, effect.reason, who, now, cal); !s.ok()) return s;
      AddEvent(v1::EVENT_TYPE_SLA_PAUSED,
               absl::StrCat("SLA ", effect.sla, " paused: ", effect.reason), attrs);
      return absl::OkStatus();
    case SlaEffect::kResume:
      if (ledger == nullptr || ledger->status() != v1::SLA_STATUS_PAUSED) return absl::OkStatus();
      if (auto s = sla::Resume(ledger, now); !s.ok()) return s;
      AddEvent(v1::EVENT_TYPE_SLA_RESUMED, absl::StrCat("SLA ", effect.sla, " resumed"), attrs);
      return absl::OkStatus();
    case SlaEffect::kStop:
      if (ledger == nullptr || ledger->status() == v1::SLA_STATUS_STOPPED) return absl::OkStatus();
      sla::Stop(ledger, now, cal);
      AddEvent(v1::EVENT_TYPE_SLA_STOPPED, absl::StrCat("SLA ", effect.sla, " stopped"), attrs);
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<Decision> Decide(const Workflow& workflow,
                                const CaseRecord& before,
                                const std::string& action, const Actor& actor,
                                const google::protobuf::Message* input,
                                const std::string& timer_name, absl::Time now,
                                const CalendarLookup& calendars) {
  const WorkflowSpec& spec = workflow.spec();
  Decision decision;
  decision.record = before;
  ActionContext ctx{workflow, before, decision.record, input, timer_name,
                    actor,    now,    decision,        calendars};

  if (action == kRecomputeSlaAction) {
    if (actor.role != kSystem) {
      return absl::PermissionDeniedError("only the server recomputes SLA deadlines");
    }
    // Clocks started under an older version of their policy take the new one.
    bool policy_changed = false;
    // Clocks that changed calendar, said on the timeline: "unlock now on
    // calendars/default (was calendars/us)".
    std::vector<std::string> moves;
    for (auto& ledger : *decision.record.mutable_slas()) {
      if (ledger.status() == v1::SLA_STATUS_STOPPED) continue;
      for (const auto& declared : spec.slas) {
        if (declared.sla != ledger.name()) continue;
        const sla::SlaPolicy policy = EffectivePolicy(workflow, before, declared, calendars);
        if (sla::PolicyFingerprint(policy) == ledger.policy()) continue;
        if (policy.calendar != ledger.calendar()) {
          moves.push_back(absl::StrCat(ledger.name(), " now on ", policy.calendar, " (was ", ledger.calendar(), ")"));
        }
        sla::ApplyPolicy(&ledger, policy, now, CalendarOf(calendars, ledger),
                         policy.calendar.empty() ? nullptr : calendars(policy.calendar));
        policy_changed = true;
      }
    }
    if (auto s = RearmSlaTimers(ctx); !s.ok()) return s;
    decision.changed = policy_changed || !decision.timers_arm.empty() ||
                       !decision.timers_cancel.empty();
    if (decision.changed) {
      ctx.AddEvent(v1::EVENT_TYPE_SLA_RECOMPUTED,
                   moves.empty() ? "SLA deadlines recomputed"
                                 : absl::StrCat("SLA deadlines recomputed: ", absl::StrJoin(moves, "; ")));
      for (const auto& a : decision.timers_arm) {
        RemoveName(decision.record.mutable_armed_timers(), a.name);
        decision.record.add_armed_timers(a.name);
      }
      *decision.record.mutable_update_time() = ToProto(now);
    }
    return decision;
  }

  if (action == kNotificationFailedAction || action == kNotificationRequeuedAction) {
    // What became of a notification: it went to the dead letters (told by
    // the server), or an admin sent it again from there.
    const bool failed = action == kNotificationFailedAction;
    const auto* message = dynamic_cast<const internal::OutboxMessage*>(input);
    if (actor.role != (failed ? kSystem : kAdmin) || message == nullptr) {
      return absl::PermissionDeniedError(failed ? "only the server records undelivered notifications"
                                                : "only an admin sends a dead letter again");
    }
    // The receiver's error stays in the dead letter: it may quote the address.
    const std::string what = ChannelWord(message->channel());
    ctx.AddEvent(failed ? v1::EVENT_TYPE_NOTIFICATION_FAILED : v1::EVENT_TYPE_NOTIFICATION_QUEUED,
                 failed ? absl::StrCat(what, " not delivered after ", message->attempts(),
                                       message->attempts() == 1 ? " attempt" : " attempts",
                                       "; it waits in the dead letters for an admin to send it again")
                        : absl::StrCat(what, " sent again from the dead letters"),
                 {{"template", message->template_id()},
                  {"channel", v1::Channel_Name(message->channel())},
                  {"dedupe_key", message->dedupe_key()}});
    *decision.record.mutable_update_time() = ToProto(now);
    return decision;
  }

  std::string rung_sla, rung_name;
  const bool rung_timer = sla::ParseRungTimerName(timer_name, &rung_sla, &rung_name);
  const Transition* t = spec.Find(action);
  if (t == nullptr && !rung_timer) {
    return absl::InvalidArgumentError(absl::StrCat(spec.kind, " has no action ", action));
  }
  if (t != nullptr && !Contains(t->roles, actor.role)) {
    return WithErrorInfo(
        absl::PermissionDeniedError(absl::StrCat(
            action, " requires role ", absl::StrJoin(t->roles, " or "),
            "; the caller acts as '", actor.role, "'")),
        "ROLE_NOT_ALLOWED",
        {{"action", action}, {"required_roles", absl::StrJoin(t->roles, ",")}});
  }
  const bool creating = t != nullptr && t->from.empty();
  const bool applies = t != nullptr && (creating || Contains(t->from, before.state()));
  if (t != nullptr && !applies && !rung_timer) {
    auto hint = spec.state_hints.find(before.state());
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(
            "cannot ", action, ": the ", spec.kind, " case is in state ", before.state(),
            hint != spec.state_hints.end() ? absl::StrCat(": ", hint->second) : "",
            "; allowed from ", absl::StrJoin(t->from, ", "))),
        "ILLEGAL_TRANSITION", {{"action", action}, {"state", before.state()}});
  }

  if (!timer_name.empty()) RemoveName(decision.record.mutable_armed_timers(), timer_name);
  if (rung_timer && !MarkRung(ctx, rung_sla, rung_name)) {
    decision.changed = false;
    return decision;
  }

  if (creating) {
    decision.record.set_state(t->to);
    *decision.record.mutable_create_time() = ToProto(now);
    *decision.record.mutable_state_change_time() = ToProto(now);
    ctx.AddEvent(v1::EVENT_TYPE_CASE_CREATED, absl::StrCat("Opened in ", t->to));
  }
  if (applies) {
    if (t->apply) {
      if (absl::Status s = t->apply(ctx); !s.ok()) return s;
    }
    if (!decision.changed) return decision;
    if (!creating && !t->to.empty()) MoveTo(ctx, t->to);
    for (const auto& effect : t->sla) {
      if (absl::Status s = ctx.ApplySla(effect); !s.ok()) return s;
    }
  }

  const bool state_changed = decision.record.state() != before.state();
  if (state_changed && !creating) {
    // Workflow timers belong to the state that armed them; SLA rungs follow
    // their clocks instead.
    for (const auto& name : before.armed_timers()) {
      if (name == timer_name || name.rfind("sla/", 0) == 0) continue;
      decision.timers_cancel.push_back(name);
      RemoveName(decision.record.mutable_armed_timers(), name);
    }
  }
  if (decision.record.secrets_size() > 0 &&
      !Contains(spec.secret_states, decision.record.state())) {
    decision.record.clear_secrets();
    ctx.AddEvent(v1::EVENT_TYPE_SECRET_WIPED, "Stored secrets erased");
  }

  if (applies) {
    for (const auto& arm : t->arm) {
      decision.timers_arm.push_back(TimerArm{arm.name, now + arm.delay});
    }
  }
  if (absl::Status s = RearmSlaTimers(ctx); !s.ok()) return s;
  for (const auto& a : decision.timers_arm) {
    RemoveName(decision.record.mutable_armed_timers(), a.name);
    decision.record.add_armed_timers(a.name);
    decision.timers_cancel.erase(
        std::remove(decision.timers_cancel.begin(), decision.timers_cancel.end(), a.name),
        decision.timers_cancel.end());
  }

  if (applies) {
    for (const auto& n : t->notify) {
      ctx.Notify(n.template_id, n.channel, n.audience, v1::EVENT_TYPE_NOTIFICATION_QUEUED,
                 n.event_message, {},
                 n.business_hours ? ctx.NextBusinessHour() : absl::InfinitePast());
    }
  }
  *decision.record.mutable_update_time() = ToProto(now);
  return decision;
}

std::string CustomerDate(absl::Time t, const std::string& zone_name) {
  absl::TimeZone zone = absl::UTCTimeZone();
  if (!zone_name.empty()) absl::LoadTimeZone(zone_name, &zone);
  static constexpr const char* kMonths[] = {"January", "February", "March",     "April",
                                            "May",     "June",     "July",      "August",
                                            "September", "October", "November", "December"};
  const absl::CivilDay day = absl::ToCivilDay(t, zone);
  return absl::StrCat(day.day(), " ", kMonths[day.month() - 1], " ", day.year());
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
