#include "server/sla/ledger.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/duration.pb.h"
#include "server/common/proto_time.h"

namespace casework::sla {
namespace {

absl::Duration Elapsed(absl::Time a, absl::Time b, const Calendar* cal) {
  if (b <= a) return absl::ZeroDuration();
  return cal != nullptr ? cal->BusinessTimeBetween(a, b) : b - a;
}

absl::Time Advance(absl::Time t, absl::Duration d, const Calendar* cal) {
  return cal != nullptr ? cal->AddBusinessTime(t, d) : t + d;
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::IDivDuration(d, absl::Seconds(1), &d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

}  // namespace

std::string RungTimerName(const std::string& sla, const std::string& rung) {
  return absl::StrCat("sla/", sla, "/", rung);
}

bool ParseRungTimerName(const std::string& timer, std::string* sla, std::string* rung) {
  if (timer.rfind("sla/", 0) != 0) return false;
  const size_t slash = timer.find('/', 4);
  if (slash == std::string::npos) return false;
  *sla = timer.substr(4, slash - 4);
  *rung = timer.substr(slash + 1);
  return !sla->empty() && !rung->empty();
}

std::string PolicyFingerprint(const SlaPolicy& policy) {
  std::string out = absl::StrCat(policy.sla, "|", policy.calendar, "|",
                                 absl::ToInt64Seconds(policy.budget));
  for (const auto& r : policy.rungs) {
    absl::StrAppend(&out, "|", r.name, "@", absl::ToInt64Seconds(r.at), "#",
                    static_cast<int>(r.kind));
  }
  return out;
}

namespace {
void SetTerms(SlaLedger* l, const SlaPolicy& policy) {
  std::map<std::string, bool> fired;
  for (const auto& r : l->rungs()) fired[r.name()] = r.fired();
  l->set_policy(PolicyFingerprint(policy));
  l->set_calendar(policy.calendar);
  l->set_budget_seconds(absl::ToInt64Seconds(policy.budget));
  l->clear_rungs();
  for (const auto& r : policy.rungs) {
    auto* rung = l->add_rungs();
    rung->set_name(r.name);
    rung->set_at_seconds(absl::ToInt64Seconds(r.at));
    rung->set_kind(static_cast<int>(r.kind));
    rung->set_fired(fired[r.name]);
  }
}
}  // namespace

void ApplyPolicy(SlaLedger* l, const SlaPolicy& policy, absl::Time now,
                 const Calendar* old_calendar, const Calendar* new_calendar) {
  if (l->status() == v1::SLA_STATUS_RUNNING && l->calendar() != policy.calendar) {
    // Bank what was consumed on the old calendar, continue on the new one.
    l->set_consumed_seconds(absl::ToInt64Seconds(Consumed(*l, now, old_calendar)));
    *l->mutable_running_since() = ToProto(now);
  }
  SetTerms(l, policy);
}

SlaLedger Start(const SlaPolicy& policy, absl::Time now) {
  SlaLedger l;
  l.set_name(policy.sla);
  SetTerms(&l, policy);
  l.set_status(v1::SLA_STATUS_RUNNING);
  *l.mutable_running_since() = ToProto(now);
  *l.mutable_start_time() = ToProto(now);
  return l;
}

absl::Duration Consumed(const SlaLedger& l, absl::Time now, const Calendar* cal) {
  absl::Duration consumed = absl::Seconds(l.consumed_seconds());
  if (l.status() == v1::SLA_STATUS_RUNNING) {
    consumed += Elapsed(FromProto(l.running_since()), now, cal);
  }
  return consumed;
}

absl::Duration PausedTime(const SlaLedger& l, absl::Time now) {
  absl::Duration total;
  for (const auto& p : l.pauses()) {
    const absl::Time end = p.has_end_time() ? FromProto(p.end_time()) : now;
    total += std::max(absl::ZeroDuration(), end - FromProto(p.start_time()));
  }
  return total;
}

absl::Status Pause(SlaLedger* l, const std::string& reason, const v1::Actor& actor,
                   absl::Time now, const Calendar* cal) {
  if (l->status() != v1::SLA_STATUS_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("SLA ", l->name(), " is not running"));
  }
  l->set_consumed_seconds(absl::ToInt64Seconds(Consumed(*l, now, cal)));
  l->clear_running_since();
  l->set_status(v1::SLA_STATUS_PAUSED);
  auto* p = l->add_pauses();
  p->set_reason(reason);
  *p->mutable_actor() = actor;
  *p->mutable_start_time() = ToProto(now);
  return absl::OkStatus();
}

absl::Status Resume(SlaLedger* l, absl::Time now) {
  if (l->status() != v1::SLA_STATUS_PAUSED) {
    return absl::FailedPreconditionError(absl::StrCat("SLA ", l->name(), " is not paused"));
  }
  if (l->pauses_size() > 0) *l->mutable_pauses()->rbegin()->mutable_end_time() = ToProto(now);
  l->set_status(v1::SLA_STATUS_RUNNING);
  *l->mutable_running_since() = ToProto(now);
  return absl::OkStatus();
}

void Stop(SlaLedger* l, absl::Time now, const Calendar* cal) {
  if (l->status() == v1::SLA_STATUS_STOPPED) return;
  if (l->status() == v1::SLA_STATUS_PAUSED && l->pauses_size() > 0) {
    *l->mutable_pauses()->rbegin()->mutable_end_time() = ToProto(now);
  }
  l->set_consumed_seconds(absl::ToInt64Seconds(Consumed(*l, now, cal)));
  l->clear_running_since();
  l->set_status(v1::SLA_STATUS_STOPPED);
  *l->mutable_stop_time() = ToProto(now);
}

void Derive(SlaLedger* l, const Calendar* cal) {
  for (auto& rung : *l->mutable_rungs()) {
    if (l->status() != v1::SLA_STATUS_RUNNING || rung.fired()) {
      rung.clear_due_time();
      continue;
    }
    const int64_t left = std::max<int64_t>(0, rung.at_seconds() - l->consumed_seconds());
    *rung.mutable_due_time() =
        ToProto(Advance(FromProto(l->running_since()), absl::Seconds(left), cal));
  }
}

v1::Sla ToApi(const SlaLedger& l, absl::Time now, const Calendar* cal) {
  v1::Sla out;
  out.set_name(l.name());
  out.set_status(l.status());
  out.set_calendar(l.calendar());
  *out.mutable_budget() = ToProtoDuration(absl::Seconds(l.budget_seconds()));
  *out.mutable_consumed() = ToProtoDuration(Consumed(l, now, cal));
  if (l.has_running_since()) *out.mutable_running_since() = l.running_since();
  if (l.status() == v1::SLA_STATUS_PAUSED && l.pauses_size() > 0) {
    out.set_pause_reason(l.pauses(l.pauses_size() - 1).reason());
  }
  out.set_pause_count(l.pauses_size());
  *out.mutable_paused() = ToProtoDuration(PausedTime(l, now));
  for (const auto& r : l.rungs()) {
    auto* d = out.add_deadlines();
    d->set_rung(r.name());
    d->set_fired(r.fired());
    if (r.has_due_time()) *d->mutable_due_time() = r.due_time();
  }
  out.set_breached(l.breached());
  return out;
}

}  // namespace casework::sla
