// Read-side pieces every case service shares: board columns and timelines.
#ifndef CASEWORK_SERVER_RPC_CASE_QUERIES_H_
#define CASEWORK_SERVER_RPC_CASE_QUERIES_H_

#include <string>

#include "absl/status/status.h"
#include "casework/v1/common.pb.h"
#include "google/protobuf/repeated_field.h"
#include "server/engine/engine.h"

namespace casework::rpc {

// The board of `kind`: every state in board order with its count.
absl::Status FillBoard(engine::Engine* engine, const std::string& kind,
                       google::protobuf::RepeatedPtrField<v1::StateCount>* columns);

// One page of the timeline of the case named `parent` ("{collection}/{id}").
absl::Status FillEvents(engine::Engine* engine, const std::string& kind,
                        const std::string& collection, const std::string& parent,
                        const std::string& page_token, int page_size,
                        google::protobuf::RepeatedPtrField<v1::TimelineEvent>* events,
                        std::string* next_page_token);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_CASE_QUERIES_H_
