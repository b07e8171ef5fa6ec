// Pieces every case service shares: board columns, timelines, and running
// an action whose input needs the current case (e.g. to look up its
// account in a directory).
#ifndef CASEWORK_SERVER_RPC_CASE_QUERIES_H_
#define CASEWORK_SERVER_RPC_CASE_QUERIES_H_

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/generated_enum_reflection.h"
#include "casework/v1/common.pb.h"
#include "google/protobuf/repeated_field.h"
#include "server/engine/engine.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// State enums are named "<PREFIX>_UNSPECIFIED", "<PREFIX>_<STATE>"; cases
// store "<STATE>". The prefix is taken from the zero value's name.
std::string EnumPrefix(const google::protobuf::EnumDescriptor* descriptor);

// The stored state name of an API state value ("" for the zero value).
template <typename Enum>
std::string StateKey(Enum value) {
  const auto* d = google::protobuf::GetEnumDescriptor<Enum>();
  const auto* v = d->FindValueByNumber(static_cast<int>(value));
  if (v == nullptr || v->number() == 0) return "";
  return v->name().substr(EnumPrefix(d).size());
}

// The API state value of a stored state name (the zero value if unknown).
template <typename Enum>
Enum StateValue(const std::string& key) {
  // Every list row needs one: the names are looked up once per enum.
  static const auto* const values = [] {
    const auto* d = google::protobuf::GetEnumDescriptor<Enum>();
    const size_t prefix = EnumPrefix(d).size();
    auto* by_key = new std::unordered_map<std::string, int>();
    for (int i = 0; i < d->value_count(); ++i) {
      const auto* v = d->value(i);
      if (v->number() != 0) (*by_key)[v->name().substr(prefix)] = v->number();
    }
    return by_key;
  }();
  auto it = values->find(key);
  return static_cast<Enum>(it == values->end() ? 0 : it->second);
}

// One page of cases of `kind` matching `filter`, converted with `convert`.
// Converters take a case by value and move its record's strings and
// messages into the answer instead of copying them; every case is handed
// over with std::move.
template <typename T, typename Convert>
absl::Status FillList(engine::Engine* engine, const std::string& kind,
                      const engine::ListFilter& filter, const std::string& page_token,
                      int page_size, google::protobuf::RepeatedPtrField<T>* out,
                      std::string* next_page_token, Convert convert) {
  auto page = engine->List(kind, filter, page_token, page_size);
  if (!page.ok()) return page.status();
  for (auto& c : page->cases) *out->Add() = convert(std::move(c));
  *next_page_token = page->next_page_token;
  return absl::OkStatus();
}

// The case named `name` ("{collection}/{id}") of `kind`.
absl::StatusOr<engine::CaseView> GetCase(engine::Engine* engine, const std::string& kind,
                                         const std::string& collection, const std::string& name);

// A list filter a request may set: the request field and the index it uses.
struct FilterChoice {
  std::string field;
  engine::ListFilter filter;  // an empty value means "not set"
};

// The one list filter a request set (none: list everything). INVALID_ARGUMENT
// naming the field when more than one is set or a value is too long.
absl::StatusOr<engine::ListFilter> OneFilter(const std::vector<FilterChoice>& choices);

// A request's sla_attention field as a list filter (the engine's sla_status
// index); INVALID_ARGUMENT naming the field for a value it does not know.
absl::StatusOr<FilterChoice> SlaAttentionFilter(v1::SlaAttention attention);

// The board of `kind` as stored (see Engine::Board).
absl::Status FillBoard(engine::Engine* engine, const std::string& kind,
                       google::protobuf::RepeatedPtrField<v1::StateCount>* columns,
                       google::protobuf::RepeatedPtrField<v1::SlaAttentionCount>* slas);
// The same from counts already read (the change feed's).
void FillBoard(const engine::BoardCounts& board,
               google::protobuf::RepeatedPtrField<v1::StateCount>* columns,
               google::protobuf::RepeatedPtrField<v1::SlaAttentionCount>* slas);

// One page of the timeline of the case named `parent` ("{collection}/{id}").
absl::Status FillEvents(engine::Engine* engine, const std::string& kind,
                        const std::string& collection, const std::string& parent,
                        const std::string& page_token, int page_size,
                        google::protobuf::RepeatedPtrField<v1::TimelineEvent>* events,
                        std::string* next_page_token);

// The engine's callback for a change answered with the case: `fill` puts
// the case into the response, then `reply` answers.
template <typename Fill>
engine::CaseCallback Respond(Reply reply, Fill fill) {
  return [reply = std::move(reply),
          fill = std::move(fill)](absl::StatusOr<engine::CaseView> view) mutable {
    if (view.ok()) fill(std::move(*view));
    reply(view.status());
  };
}

// `done`, holding on to `input` until it has run: the engine reads a
// change's input until the change is done.
engine::CaseCallback Holding(std::unique_ptr<google::protobuf::Message> input,
                             engine::CaseCallback done);

// Parses `name` ("{collection}/{id}") and `etag`, loads the case, builds the
// command input from it with `make_input`, and runs `action` unless
// `deadline` passes before it is written; `done` gets the result.
void ActOnCase(engine::Engine* engine, const std::string& kind, const std::string& collection,
               const std::string& name, const std::string& etag, const std::string& action,
               const workflow::Actor& who, absl::Time deadline,
               const std::function<absl::StatusOr<std::unique_ptr<google::protobuf::Message>>(
                   const engine::CaseView&)>& make_input,
               engine::CaseCallback done);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_CASE_QUERIES_H_
