#include "server/rpc/case_queries.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/errors.h"
#include "server/workflow/validation.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

std::string EnumPrefix(const google::protobuf::EnumDescriptor* descriptor) {
  const std::string zero = descriptor->FindValueByNumber(0)->name();
  return zero.substr(0, zero.size() - std::string("UNSPECIFIED").size());
}

absl::StatusOr<engine::CaseView> GetCase(engine::Engine* engine, const std::string& kind,
                                         const std::string& collection, const std::string& name) {
  auto id = ParseName(name, collection);
  if (!id.ok()) return id.status();
  return engine->Get(kind, *id);
}

absl::StatusOr<engine::ListFilter> OneFilter(const std::vector<FilterChoice>& choices) {
  const FilterChoice* chosen = nullptr;
  for (const auto& c : choices) {
    if (c.filter.value.empty()) continue;
    FieldErrors errors;
    workflow::CheckLine(errors, c.field, c.filter.value, 200, /*required=*/false);
    if (!errors.empty()) return errors.ToStatus();
    if (chosen != nullptr) {
      std::vector<std::string> fields;
      for (const auto& x : choices) fields.push_back(x.field);
      return InvalidField(c.field, absl::StrCat("set at most one of ", absl::StrJoin(fields, ", ")));
    }
    chosen = &c;
  }
  return chosen != nullptr ? chosen->filter : engine::ListFilter{};
}

absl::StatusOr<FilterChoice> SlaAttentionFilter(v1::SlaAttention attention) {
  switch (attention) {
    case v1::SLA_ATTENTION_UNSPECIFIED:
      return FilterChoice{"sla_attention", {engine::kSlaStatusIndex, ""}};
    case v1::SLA_ATTENTION_AT_RISK:
      return FilterChoice{"sla_attention", {engine::kSlaStatusIndex, engine::kSlaAtRisk}};
    case v1::SLA_ATTENTION_BREACHED:
      return FilterChoice{"sla_attention", {engine::kSlaStatusIndex, engine::kSlaBreached}};
    default:
      return InvalidField("sla_attention", "unknown value");
  }
}

absl::Status FillBoard(engine::Engine* engine, const std::string& kind,
                       google::protobuf::RepeatedPtrField<v1::StateCount>* columns,
                       google::protobuf::RepeatedPtrField<v1::SlaAttentionCount>* slas) {
  auto board = engine->Board(kind);
  if (!board.ok()) return board.status();
  FillBoard(*board, columns, slas);
  return absl::OkStatus();
}

void FillBoard(const engine::BoardCounts& board,
               google::protobuf::RepeatedPtrField<v1::StateCount>* columns,
               google::protobuf::RepeatedPtrField<v1::SlaAttentionCount>* slas) {
  for (const auto& [state, count] : board.columns) {
    auto* column = columns->Add();
    column->set_state(state);
    column->set_count(count);
  }
  for (const auto& a : board.slas) {
    auto* sla = slas->Add();
    sla->set_sla(a.sla);
    sla->set_at_risk(a.at_risk);
    sla->set_breached(a.breached);
  }
}

absl::Status FillEvents(engine::Engine* engine, const std::string& kind,
                        const std::string& collection, const std::string& parent,
                        const std::string& page_token, int page_size,
                        google::protobuf::RepeatedPtrField<v1::TimelineEvent>* events,
                        std::string* next_page_token) {
  auto id = ParseName(parent, collection, "parent");
  if (!id.ok()) return id.status();
  auto page = engine->Events(kind, *id, page_token, page_size);
  if (!page.ok()) return page.status();
  for (auto& e : page->events) *events->Add() = std::move(e);
  *next_page_token = page->next_page_token;
  return absl::OkStatus();
}

void ActOnCase(engine::Engine* engine, const std::string& kind, const std::string& collection,
               const std::string& name, const std::string& etag, const std::string& action,
               const workflow::Actor& who, absl::Time deadline,
               const std::function<absl::StatusOr<std::unique_ptr<google::protobuf::Message>>(
                   const engine::CaseView&)>& make_input,
               engine::CaseCallback done) {
  auto id = ParseName(name, collection);
  if (!id.ok()) return done(id.status());
  auto version = ParseEtag(etag);
  if (!version.ok()) return done(version.status());
  auto current = engine->Load(kind, *id);
  if (!current.ok()) return done(current.status());
  auto input = make_input(*current);
  if (!input.ok()) return done(input.status());
  const google::protobuf::Message& message = **input;
  engine->Act(kind, *id, *version, action, who, message, deadline,
              Holding(*std::move(input), std::move(done)));
}

engine::CaseCallback Holding(std::unique_ptr<google::protobuf::Message> input,
                             engine::CaseCallback done) {
  return [input = std::move(input),
          done = std::move(done)](absl::StatusOr<engine::CaseView> view) mutable {
    done(std::move(view));
  };
}

}  // namespace casework::rpc
