// casectl: casework from the command line. Run `casectl help`.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "casework/client.h"
#include "casework/v1/admin.grpc.pb.h"
#include "casework/v1/boards.grpc.pb.h"
#include "casework/v1/otp_support.grpc.pb.h"
#include "casework/v1/protection.grpc.pb.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "casework/v1/unlock.grpc.pb.h"
#include "google/api/field_behavior.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/common/enum_names.h"
#include "server/common/files.h"
#include "server/common/version.h"
#include "server/rpc/access.h"
#include "server/workflow/claim_workflow.h"
#include "server/workflow/enrollment_workflow.h"
#include "server/workflow/otp_workflow.h"
#include "server/workflow/trade_in_workflow.h"
#include "server/workflow/unlock_workflow.h"
#include "server/workflow/validation.h"

namespace casework::casectl {
namespace {

using google::protobuf::Message;

// Exit codes scripts can rely on.
enum Exit {
  kOk = 0,
  kFailed = 1,
  kUsage = 2,
  kNotFound = 3,
  kInvalid = 4,
  kDenied = 5,
  kConflict = 6,
  kUnavailable = 7,
};

constexpr char kHelp[] = R"(casectl: casework from the command line.

usage: casectl [flags] COMMAND [ARGS]

Commands:
  boards                          every procedure's board: cases per state, and open
                                  SLA clocks past their warning (at risk) or breach
  board PROCEDURE                 one board: trade-in, unlock, otp, claim
                                  (--watch: kept current from the live stream and
                                  printed again as counts move; --count=N stops
                                  after N changes)
  list PROCEDURE [STATE]          its cases, of one state or all, 50 at a time
                                  (--count=N for more, --cursor=C goes on); STATE
                                  at_risk or breached: open SLA clocks past their
                                  warning or breach; --assignee=NAME: the open
                                  cases given to NAME instead
  list PROCEDURE FIELD=VALUE      the cases a filter of the list request picks, e.g.
                                  list trade-in v_number=V1234567
                                  list unlock imei=353911100000018
  create PROCEDURE [FIELD=VALUE]  open a case (trade-in, unlock, otp, claim, enrollment);
                                  the case's own fields need no prefix, e.g.
                                  create trade-in v_number=V1234567 s_number=S7654321
                                      problem=DEVICE_LOCKED product_name="iPhone 13"
                                      customer.email=jan@example.nl customer.display_name=Jan
                                  create unlock phone_number=+12125550100
                                  (a request_id is made up unless given: retried safely)
  show NAME                       a case and its timeline (tradeIns/ID, unlockRequests/ID,
                                  otpTickets/ID, claims/ID, enrollments/ID)
  act NAME ACTION [FIELD=VALUE]   perform an action on a case (act NAME alone: the
                                  actions open in its state to your role, with the
                                  fields each takes), e.g.
                                  act tradeIns/01J.. ContactCustomer
                                  act tradeIns/01J.. FlagProblem problem=DEVICE_LOCKED note=PIN
                                  act tradeIns/01J.. AttachProofOfPurchase content=@receipt.pdf
                                  act claims/01J.. ResolveClaim resolution=REIMBURSEMENT
                                      reimbursement.currency_code=USD reimbursement.minor_units=4500
                                  (FIELD=@FILE: a document's content from FILE; its type and
                                  file name come with it unless given; FIELD.SUB=VALUE: a
                                  field of a message field; a repeated FIELD: give it again;
                                  a choice by its short name, as above, or its full one)
  document tradeIns/ID FILE       save a trade-in's proof of purchase to FILE
  document claims/ID DOC FILE     save the claim document DOC (e.g. doc-1) to FILE
  call SERVICE/METHOD [JSON]      any RPC, request as JSON (default {}), e.g.
                                  call TradeInService/CreateTradeIn '{"tradeIn":{...}}'
  import accounts|profiles FILE   import JSON lines in batches (--batch=N rows a call,
                                  default 500), with progress and a report of every
                                  rejected row (a batch refused for a moment is sent
                                  again: rows replace what they name)
  templates list|get ID|render ID [LANG] [FIELD=VALUE...]|create ID FILE|update ID FILE
                                  |reset ID (back to the wording casework ships)
                                  |delete ID (one an admin created)
  calendars list|get ID|create ID FILE|update ID FILE
                                  |delete ID (a region's; its running clocks go on
                                  on the default calendar)
  plans list|get ID|create ID FILE|update ID FILE
                                  business calendars and device protection plans;
                                  FILE: JSON as `get` prints it; create refuses an
                                  ID that exists, update a FILE whose etag is stale
  dead-letters list|retry NAME
  erase FIELD=VALUE...            a privacy request: erase a customer's personal data,
                                  e.g. erase email=jan@example.nl reason=PR-114
                                  (validate_only=true: only list what would be erased)
  audit                           the audit log, newest first
  backups list|create             copies of the store in the server's backup folder
                                  (create is retried safely: a retry answers with the
                                  backup the first attempt took; restore:
                                  caseworkd --restore-backup=ID, stopped)
  watch [PROCEDURE...]            live boards: a snapshot, then every case change
                                  (--cursor=C resumes, --count=N stops after N changes)
  workflows [--dot]               the workflows' states and actions (--dot: Graphviz)
  help                            this text

Flags (environment variable in brackets):
  --server=HOST:PORT   [CASEWORK_SERVER] default 127.0.0.1:7400
  --token=TOKEN        [CASEWORK_TOKEN] bearer token
  --role=ROLE          [CASEWORK_ROLE] role to act in (a token may hold several)
  --principal=NAME     [CASEWORK_PRINCIPAL] development servers only
  --ca=FILE            [CASEWORK_CA] TLS with this CA (--tls: system CAs)
  --cert=FILE --key=FILE   client certificate (mutual TLS)
  --timeout=SECONDS    per call, default 10
  --json               print JSON instead of tables
  --version            print casectl's version and exit

Exit codes: 0 ok, 1 other failure, 2 usage, 3 not found, 4 invalid input
(each bad field is printed), 5 not authenticated or not allowed, 6 conflict
(wrong state, stale etag, already exists), 7 unavailable (retry later).
)";

struct Flags {
  client::Options options;
  bool json = false;
  bool dot = false;
  bool watch = false;  // boards: keep them current from the live stream
  int batch = 500;
  std::string cursor;
  std::string assignee;  // list: the open cases given to this person
  bool timeout_given = false;  // --timeout given: it bounds watch and backups too
  int64_t count = 0;  // watch: stop after this many changes (0: never)
};

int ExitFor(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return kOk;
    case grpc::StatusCode::NOT_FOUND: return kNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return kInvalid;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return kDenied;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::ALREADY_EXISTS: return kConflict;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::DEADLINE_EXCEEDED: return kUnavailable;
    default: return kFailed;
  }
}

const char* CodeName(grpc::StatusCode code) {
  static const char* names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? names[i] : "UNKNOWN";
}

// Prints the error and every field violation or failed precondition.
int Fail(const grpc::Status& s) {
  google::rpc::Status details;
  (void)details.ParseFromString(s.error_details());
  std::vector<std::string> fields, preconditions;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    google::rpc::PreconditionFailure pre;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) fields.push_back(absl::StrCat(v.field(), ": ", v.description()));
    } else if (any.UnpackTo(&pre)) {
      for (const auto& v : pre.violations()) {  // the subject says which case or record
        preconditions.push_back(absl::StrCat(v.type(), v.subject().empty() ? "" : " ", v.subject(), ": ",
                                             v.description()));
      }
    }
  }
  // The message says one bad field itself, and strings several together:
  // those are said on lines of their own instead.
  if (fields.size() == 1 && fields[0] == s.error_message()) fields.clear();
  if (fields.size() > 1 && s.error_message() == absl::StrJoin(fields, "; ")) {
    std::fprintf(stderr, "error: %s: %zu bad fields\n", CodeName(s.error_code()), fields.size());
  } else {
    std::fprintf(stderr, "error: %s: %s\n", CodeName(s.error_code()), s.error_message().c_str());
  }
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::fputs("  casectl: --token (CASEWORK_TOKEN) says who you are; on a development server,\n"
               "  --principal and --role (CASEWORK_PRINCIPAL, CASEWORK_ROLE) do\n",
               stderr);
  }
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && absl::StrContains(s.error_message(), "failed to connect")) {
    std::fputs("  casectl: --server (CASEWORK_SERVER) says where caseworkd listens; a server with TLS\n"
               "  needs --ca (CASEWORK_CA) or --tls, a development server neither\n",
               stderr);
  }
  for (const auto& line : fields) std::fprintf(stderr, "  %s\n", line.c_str());
  for (const auto& line : preconditions) std::fprintf(stderr, "  %s\n", line.c_str());
  return ExitFor(s);
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "casectl: %s (see `casectl help`)\n", why.c_str());
  return kUsage;
}

// FILE's JSON object.
absl::StatusOr<google::protobuf::Struct> ReadObject(const std::string& file) {
  auto text = ReadWholeFile(file);
  if (!text) return absl::NotFoundError("cannot read " + file);
  google::protobuf::Struct object;
  if (!google::protobuf::util::JsonStringToMessage(*text, &object).ok()) {
    return absl::InvalidArgumentError(file + " is not a JSON object");
  }
  return object;
}

std::string CompactJson(const Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

std::string ToJson(const Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

// Aligned columns.
void PrintTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out.erase(out.find_last_not_of(' ') + 1);  // an empty last cell leaves no trailing blanks
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& r : rows) line(r);
}

struct Procedure {
  const char* name;        // as typed: "trade-in"
  const char* service;     // "casework.v1.TradeInService"
  const char* collection;  // "tradeIns", also the list answer's field in JSON
  const char* board;       // board RPC, or nullptr
  const char* get;
  const char* events;
  const char* list;
  const char* key;         // the field people know a case by, shown in lists
  const char* create;      // the RPC that opens a case
};

const std::vector<Procedure>& Procedures() {
  static const auto* p = new std::vector<Procedure>{
      {"trade-in", "casework.v1.TradeInService", "tradeIns", "GetTradeInBoard", "GetTradeIn",
       "ListTradeInEvents", "ListTradeIns", "vNumber", "CreateTradeIn"},
      {"unlock", "casework.v1.UnlockService", "unlockRequests", "GetUnlockBoard", "GetUnlockRequest",
       "ListUnlockRequestEvents", "ListUnlockRequests", "accountNumber", "CreateUnlockRequest"},
      {"otp", "casework.v1.OtpSupportService", "otpTickets", "GetOtpBoard", "GetOtpTicket",
       "ListOtpTicketEvents", "ListOtpTickets", "profileId", "CreateOtpTicket"},
      {"claim", "casework.v1.ProtectionClaimService", "claims", "GetClaimBoard", "GetClaim",
       "ListClaimEvents", "ListClaims", "planNumber", "ReportClaim"},
      {"enrollment", "casework.v1.ProtectionClaimService", "enrollments", nullptr, "GetEnrollment",
       "ListEnrollmentEvents", "ListEnrollments", "planNumber", "CreateEnrollment"},
  };
  return *p;
}

const Procedure* ProcedureOfName(const std::string& name) {
  for (const auto& p : Procedures()) {
    if (absl::StartsWith(name, absl::StrCat(p.collection, "/"))) return &p;
  }
  return nullptr;
}

// A procedure as typed: "trade-in", "unlock", ...
const Procedure* ProcedureNamed(const std::string& name) {
  for (const auto& p : Procedures()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

// The procedures' workflows with their default policies: their states,
// transitions and roles, which do not depend on the policies.
std::vector<std::unique_ptr<workflow::Workflow>> AllWorkflows() {
  std::vector<std::unique_ptr<workflow::Workflow>> all;
  all.push_back(workflow::NewTradeInWorkflow(workflow::TradeInPolicy{}));
  all.push_back(workflow::NewUnlockWorkflow(workflow::UnlockPolicy{}));
  all.push_back(workflow::NewOtpWorkflow(workflow::OtpPolicy{}));
  all.push_back(workflow::NewEnrollmentWorkflow());
  all.push_back(workflow::NewClaimWorkflow());
  return all;
}

class Cli {
 public:
  explicit Cli(Flags flags) : flags_(std::move(flags)), client_(flags_.options) {}

  // "TradeInService/ContactCustomer" (or with its package) as a method of
  // the API; null when there is none.
  static const google::protobuf::MethodDescriptor* FindMethod(const std::string& method) {
    const std::string full = FullMethod(method);
    const size_t slash = full.find('/');
    if (slash == std::string::npos) return nullptr;
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    const auto* service = pool->FindServiceByName(full.substr(0, slash));
    return service == nullptr ? nullptr : service->FindMethodByName(full.substr(slash + 1));
  }
  static std::string FullMethod(const std::string& method) {
    return absl::StartsWith(method, "casework.") ? method : "casework.v1." + method;
  }

  // Calls `method` ("casework.v1.X/Y", or "X/Y" within casework.v1) with a
  // request built from JSON; `response` receives a message of the right type.
  grpc::Status Invoke(const std::string& method, const std::string& json,
                      std::unique_ptr<Message>* response, client::Retry retry = client::Retry::kNever) {
    const std::string full = FullMethod(method);
    const auto* m = FindMethod(method);
    if (m == nullptr) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no such RPC: " + full);
    auto* factory = google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<Message> request(factory->GetPrototype(m->input_type())->New());
    response->reset(factory->GetPrototype(m->output_type())->New());
    const absl::Status parsed = JsonToMessage(json.empty() ? "{}" : json, request.get());
    if (!parsed.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("request for ", m->name(), ": ", parsed.message()));
    }
    return client_.CallMethod(full, *request, response->get(), retry);
  }

  int Boards(const std::vector<std::string>& args) {
    if (flags_.watch) return WatchBoardTables(args);
    std::vector<std::vector<std::string>> rows, slas;
    google::protobuf::Struct all;
    for (const auto& p : Procedures()) {
      if (p.board == nullptr || (!args.empty() && args[0] != p.name)) continue;
      std::unique_ptr<Message> board;
      grpc::Status s = Invoke(absl::StrCat(p.service, "/", p.board), "{}", &board, client::Retry::kSafe);
      if (!s.ok()) return Fail(s);
      if (flags_.json) {
        std::printf("%s", ToJson(*board).c_str());
        continue;
      }
      google::protobuf::Struct columns;
      (void)google::protobuf::util::JsonStringToMessage(CompactJson(*board), &columns);
      for (const auto& c : columns.fields().at("columns").list_value().values()) {
        const auto& f = c.struct_value().fields();
        const auto count = f.find("count");
        rows.push_back({p.name, f.at("state").string_value(),
                        count == f.end() ? "0" : count->second.string_value()});
      }
      if (auto s = columns.fields().find("slas"); s != columns.fields().end()) {
        for (const auto& sla : s->second.list_value().values()) {
          const auto& f = sla.struct_value().fields();
          auto number = [&f](const char* name) {
            const auto it = f.find(name);
            return it == f.end() ? std::string("0") : it->second.string_value();
          };
          slas.push_back({p.name, f.at("sla").string_value(), number("atRisk"), number("breached")});
        }
      }
    }
    if (!args.empty() && rows.empty() && !flags_.json) return Usage("unknown procedure " + args[0]);
    if (flags_.json) return kOk;
    PrintBoardTables(rows, slas);
    return kOk;
  }

  static void PrintBoardTables(const std::vector<std::vector<std::string>>& rows,
                               const std::vector<std::vector<std::string>>& slas) {
    PrintTable({"PROCEDURE", "STATE", "CASES"}, rows);
    if (!slas.empty()) {
      // Open SLA clocks that need attention: `list PROCEDURE at_risk|breached` names them.
      std::printf("\n");
      PrintTable({"PROCEDURE", "SLA", "AT RISK", "BREACHED"}, slas);
    }
  }

  // boards --watch: the same tables, kept from WatchBoards (its snapshot,
  // then each change applied to it) and printed again whenever a count
  // moves; on a terminal in place, otherwise one after another.
  int WatchBoardTables(const std::vector<std::string>& args) {
    v1::WatchBoardsRequest req;
    std::map<std::string, std::string> shown;  // "trade_in" -> "trade-in"
    for (const auto& p : Procedures()) {
      if (p.board == nullptr || (!args.empty() && args[0] != p.name)) continue;
      const std::string kind = absl::StrReplaceAll(p.name, {{"-", "_"}});
      req.add_procedures(kind);
      shown[kind] = p.name;
    }
    if (req.procedures().empty()) return Usage("unknown procedure " + args[0]);
    const bool terminal = isatty(fileno(stdout)) != 0;
    std::vector<v1::ProcedureBoard> boards;  // in the request's order
    auto print = [&]() {
      if (flags_.json) {
        v1::BoardSnapshot all;
        for (const auto& b : boards) *all.add_boards() = b;
        std::printf("%s\n", CompactJson(all).c_str());
      } else {
        std::vector<std::vector<std::string>> rows, slas;
        for (const auto& b : boards) {
          for (const auto& c : b.columns()) rows.push_back({shown[b.procedure()], c.state(), absl::StrCat(c.count())});
          for (const auto& a : b.slas()) {
            slas.push_back({shown[b.procedure()], a.sla(), absl::StrCat(a.at_risk()), absl::StrCat(a.breached())});
          }
        }
        if (terminal) std::printf("\033[H\033[2J");  // clear the screen: the board stays in place
        PrintBoardTables(rows, slas);
        std::printf("\n");
      }
      std::fflush(stdout);
    };
    return ReadBoards(req, [&](const v1::BoardUpdate& u) {
      bool moved = false;
      if (u.has_snapshot()) {
        boards.clear();
        for (const auto& kind : req.procedures()) {
          for (const auto& b : u.snapshot().boards()) {
            if (b.procedure() == kind) boards.push_back(b);
          }
        }
        moved = true;
      }
      for (auto& b : boards) {
        const auto& c = u.change();
        if (!u.has_change() || b.procedure() != c.procedure()) continue;
        for (auto& column : *b.mutable_columns()) {
          // Into the new state, out of the one before (none for a new case).
          const int64_t delta = (column.state() == c.state()) - (column.state() == c.previous_state());
          if (delta != 0) {
            column.set_count(column.count() + delta);
            moved = true;
          }
        }
        for (const auto& a : c.sla_changes()) {
          for (auto& sla : *b.mutable_slas()) {
            if (sla.sla() != a.sla()) continue;
            sla.set_at_risk(sla.at_risk() + a.at_risk());
            sla.set_breached(sla.breached() + a.breached());
            moved = true;
          }
        }
      }
      if (moved) print();
    });
  }

  int Show(const std::string& name) {
    const Procedure* p = ProcedureOfName(name);
    if (p == nullptr) return Usage("not a case name: " + name);
    std::unique_ptr<Message> item, events;
    grpc::Status s = Invoke(absl::StrCat(p->service, "/", p->get),
                            absl::StrCat("{\"name\":\"", name, "\"}"), &item, client::Retry::kSafe);
    if (!s.ok()) return Fail(s);
    s = Invoke(absl::StrCat(p->service, "/", p->events),
               absl::StrCat("{\"parent\":\"", name, "\",\"pageSize\":500}"), &events, client::Retry::kSafe);
    if (!s.ok()) return Fail(s);
    if (flags_.json) {
      std::printf("{\"case\": %s, \"events\": %s}\n", ToJson(*item).c_str(), ToJson(*events).c_str());
      return kOk;
    }
    std::printf("%s", ToJson(*item).c_str());
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : dynamic_cast<const Message&>(*events).GetReflection()->GetRepeatedFieldRef<Message>(
             *events, events->GetDescriptor()->FindFieldByName("events"))) {
      const auto& ev = dynamic_cast<const v1::TimelineEvent&>(e);
      std::string when;
      google::protobuf::util::JsonPrintOptions o;
      (void)google::protobuf::util::MessageToJsonString(ev.create_time(), &when, o);
      rows.push_back({absl::StrCat(ev.sequence()), when.substr(1, std::min<size_t>(19, when.size() - 2)),
                      absl::StrCat(ev.actor().principal(), " (", ev.actor().role(), ")"),
                      v1::EventType_Name(ev.type()).substr(11), ev.message()});
    }
    std::printf("\n");
    PrintTable({"#", "TIME (UTC)", "ACTOR", "EVENT", "MESSAGE"}, rows);
    return kOk;
  }

  int Act(const std::string& name, const std::string& action, const std::vector<std::string>& fields) {
    const Procedure* p = ProcedureOfName(name);
    if (p == nullptr) return Usage("not a case name: " + name);
    const std::string method = absl::StrCat(p->service, "/", action);
    const auto* m = FindMethod(method);
    if (action.empty()) return ActionsNow(*p, name);
    if (m == nullptr) return Usage(absl::StrCat("no action ", action, " on ", name, "; one of: ", absl::StrJoin(ActionsOn(*p), ", ")));
    google::protobuf::Struct request;
    (*request.mutable_fields())["name"].set_string_value(name);
    if (auto s = FillRequest(*m, fields, nullptr, &request); !s.ok()) return Usage(std::string(s.message()));
    return Call(method, CompactJson(request));
  }

  // Opens a case of a procedure from FIELD=VALUE pairs. Fields of the case
  // itself need no prefix (v_number=V1234567 for trade_in.v_number). A
  // request_id is made up unless given, so the call is retried safely: the
  // server answers a retry with the case the first attempt opened.
  int Create(const std::vector<std::string>& args) {
    const Procedure* p = args.empty() ? nullptr : ProcedureNamed(args[0]);
    if (p == nullptr) {
      std::vector<std::string> names;
      for (const auto& q : Procedures()) names.push_back(q.name);
      return Usage(absl::StrCat("create PROCEDURE [FIELD=VALUE...]; PROCEDURE one of: ", absl::StrJoin(names, ", ")));
    }
    const std::string method = absl::StrCat(p->service, "/", p->create);
    const auto* m = FindMethod(method);
    const auto* case_type = FindMethod(absl::StrCat(p->service, "/", p->get))->output_type();
    const google::protobuf::FieldDescriptor* resource = nullptr;
    for (int i = 0; i < m->input_type()->field_count(); ++i) {
      if (m->input_type()->field(i)->message_type() == case_type) resource = m->input_type()->field(i);
    }
    google::protobuf::Struct request;
    if (auto s = FillRequest(*m, {args.begin() + 1, args.end()}, resource, &request); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (!request.fields().count("request_id")) {
      (*request.mutable_fields())["request_id"].set_string_value(NewRequestId());
    }
    return Call(method, CompactJson(request), client::Retry::kSafe);
  }

  // A request_id of this invocation, for a create retried safely.
  static std::string NewRequestId() {
    std::random_device random;
    return absl::StrCat("casectl-", absl::Hex(random(), absl::kZeroPad8), absl::Hex(random(), absl::kZeroPad8));
  }

  // Sets the fields of `m`'s request from FIELD=VALUE arguments, in
  // `request` as JSON. FIELD.SUB=VALUE reaches into a message field (e.g.
  // reimbursement.minor_units=4500); a FIELD the request lacks is looked up
  // in `resource`, when given; FIELD=@PATH reads a document from a file,
  // which brings its type and file name unless they are given. The error
  // says what is wrong, for a usage line.
  static absl::Status FillRequest(const google::protobuf::MethodDescriptor& m, const std::vector<std::string>& fields,
                                  const google::protobuf::FieldDescriptor* resource,
                                  google::protobuf::Struct* request) {
    std::set<std::string> given;
    std::string document, document_path;
    for (const auto& f : fields) {
      const size_t eq = f.find('=');
      if (eq == std::string::npos) return absl::InvalidArgumentError("expected FIELD=VALUE, got " + f);
      std::vector<std::string> path = absl::StrSplit(f.substr(0, eq), '.');
      std::string value = f.substr(eq + 1);
      // The step of `path` that the user's FIELD starts at.
      size_t top = 0;
      if (resource != nullptr && FieldOf(*m.input_type(), path[0]) == nullptr &&
          FieldOf(*resource->message_type(), path[0]) != nullptr) {
        path.insert(path.begin(), resource->name());
        top = 1;
      }
      const google::protobuf::Descriptor* type = m.input_type();
      google::protobuf::Struct* into = request;
      const google::protobuf::FieldDescriptor* field = nullptr;
      for (size_t i = 0; i < path.size(); ++i) {
        if (path[i].empty()) return absl::InvalidArgumentError("expected FIELD=VALUE, got " + f);
        field = FieldOf(*type, path[i]);
        if (field == nullptr || OutputOnly(*field)) {
          // What may be set here; at the top, the request's fields with the
          // resource's in its place.
          const auto* level = i == top ? m.input_type() : type;
          std::vector<std::string> names;
          for (int k = 0; k < level->field_count(); ++k) {
            const auto* t = (i == top && level->field(k) == resource) ? resource->message_type() : nullptr;
            for (int r = 0; r < (t == nullptr ? 1 : t->field_count()); ++r) {
              const auto* named = t == nullptr ? level->field(k) : t->field(r);
              if (!OutputOnly(*named)) names.push_back(named->name());
            }
          }
          const std::string& owner = i == top ? m.name() : path[i - 1];
          return absl::InvalidArgumentError(
              field == nullptr ? absl::StrCat(owner, " has no field ", path[i], "; it takes ", absl::StrJoin(names, ", "))
                               : absl::StrCat(path[i], " is set by the server; ", owner, " takes ",
                                              absl::StrJoin(names, ", ")));
        }
        if (i == 0) given.insert(field->name());
        if (i + 1 == path.size()) break;
        if (field->message_type() == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(path[i], " has no fields of its own, in ", f));
        }
        type = field->message_type();
        into = (*into->mutable_fields())[field->name()].mutable_struct_value();
      }
      if (field->type() == google::protobuf::FieldDescriptor::TYPE_BYTES && absl::StartsWith(value, "@")) {
        document_path = value.substr(1);
        auto content = ReadWholeFile(document_path);
        if (!content) return absl::InvalidArgumentError("cannot read " + document_path);
        document = *std::move(content);
        value = absl::Base64Escape(document);
      }
      auto typed = ValueFor(*field, value);
      if (!typed.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(path.back(), " ", typed.status().message(), ", in ", f));
      }
      google::protobuf::Value& slot = (*into->mutable_fields())[field->name()];
      if (field->is_repeated() && !typed->has_list_value()) {
        *slot.mutable_list_value()->add_values() = *std::move(typed);  // FIELD=A FIELD=B
      } else {
        slot = *std::move(typed);
      }
    }
    if (!document_path.empty()) {
      const std::string type = workflow::SniffDocumentType(document);
      if (!type.empty() && m.input_type()->FindFieldByName("content_type") != nullptr &&
          !given.count("content_type")) {
        (*request->mutable_fields())["content_type"].set_string_value(type);
      }
      if (m.input_type()->FindFieldByName("file_name") != nullptr && !given.count("file_name")) {
        (*request->mutable_fields())["file_name"].set_string_value(
            document_path.substr(document_path.find_last_of('/') + 1));
      }
    }
    return absl::OkStatus();
  }

  // `act NAME` alone: the actions the case's state allows, to the caller's
  // role when one is given, each with the fields it takes besides the
  // case's name and etag.
  int ActionsNow(const Procedure& p, const std::string& name) {
    std::unique_ptr<Message> item;
    grpc::Status s = Invoke(absl::StrCat(p.service, "/", p.get), absl::StrCat("{\"name\":", Quote(name), "}"), &item,
                            client::Retry::kSafe);
    if (!s.ok()) return Fail(s);
    std::string state;
    if (const auto* field = item->GetDescriptor()->FindFieldByName("state"); field != nullptr) {
      state = item->GetReflection()->GetEnum(*item, field)->name();
      if (const size_t at = state.find("_STATE_"); at != std::string::npos) state = state.substr(at + 7);
    }
    const auto workflows = AllWorkflows();
    std::vector<const workflow::Workflow*> raw;
    for (const auto& w : workflows) raw.push_back(w.get());
    auto table = rpc::AccessTable::Build(raw);
    if (!table.ok()) return Fail(grpc::Status(grpc::StatusCode::INTERNAL, std::string(table.status().message())));
    const std::string& role = flags_.options.role;
    std::vector<std::pair<std::string, std::vector<std::string>>> open;  // an action and its fields
    for (const std::string& action : ActionsOn(p)) {
      const std::string method = absl::StrCat(p.service, "/", action);
      const workflow::Transition* t = table->TransitionOf(method);
      if (t != nullptr && !t->from.empty() && std::find(t->from.begin(), t->from.end(), state) == t->from.end()) {
        continue;
      }
      if (!role.empty() && !table->Check(method, role).ok()) continue;
      std::vector<std::string> fields;
      const auto* input = FindMethod(method)->input_type();
      for (int i = 0; i < input->field_count(); ++i) {
        const auto* f = input->field(i);
        if (f->name() != "name" && f->name() != "etag" && !OutputOnly(*f)) fields.push_back(f->name());
      }
      open.emplace_back(action, std::move(fields));
    }
    if (flags_.json) {
      std::string actions;
      for (const auto& [action, fields] : open) {
        std::vector<std::string> quoted;
        for (const auto& f : fields) quoted.push_back(Quote(f));
        absl::StrAppend(&actions, actions.empty() ? "" : ", ", "{\"action\": ", Quote(action), ", \"fields\": [",
                        absl::StrJoin(quoted, ", "), "]}");
      }
      std::printf("{\"name\": %s, \"state\": %s, \"role\": %s, \"actions\": [%s]}\n", Quote(name).c_str(),
                  Quote(state).c_str(), Quote(role).c_str(), actions.c_str());
      return kOk;
    }
    const std::string whose = absl::StrCat(state.empty() ? "" : " in " + state, role.empty() ? "" : ", to " + role);
    if (open.empty()) {
      std::fprintf(stderr, "casectl: no action is open%s; every action on %s cases: %s\n", whose.c_str(),
                   p.name, absl::StrJoin(ActionsOn(p), ", ").c_str());
      return kOk;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& [action, fields] : open) rows.push_back({action, absl::StrJoin(fields, " ")});
    std::printf("Open%s:\n", whose.c_str());
    PrintTable({"ACTION", "FIELDS"}, rows);
    return kOk;
  }

  // The RPCs that act on one case of `p`'s kind: those of its service that
  // take a case's name, other than reading it, and do not answer with a
  // case of another kind (a claim's service also serves enrollments).
  static std::vector<std::string> ActionsOn(const Procedure& p) {
    auto case_type = [](const Procedure& q) { return FindMethod(absl::StrCat(q.service, "/", q.get))->output_type(); };
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(p.service);
    std::vector<std::string> actions;
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      if (m->input_type()->FindFieldByName("name") == nullptr || absl::StartsWith(m->name(), "Get")) continue;
      bool other_kind = false;
      for (const auto& q : Procedures()) other_kind |= &q != &p && m->output_type() == case_type(q);
      if (!other_kind) actions.push_back(m->name());
    }
    return actions;
  }

  // VALUE as the JSON the request's `field` takes: text fields take it as
  // written, digits too (an IMEI, a code); yes/no fields take true or
  // false; integers travel as text, as protobuf's JSON allows; a value
  // starting with { or [ is JSON. The error says what VALUE should be.
  static absl::StatusOr<google::protobuf::Value> ValueFor(const google::protobuf::FieldDescriptor& field,
                                                          const std::string& value) {
    using google::protobuf::FieldDescriptor;
    const auto is = [&field](FieldDescriptor::CppType t) { return field.cpp_type() == t; };
    google::protobuf::Value v;
    double number;
    if (is(FieldDescriptor::CPPTYPE_STRING)) {  // text and bytes
      v.set_string_value(value);
    } else if (absl::StartsWith(value, "{") || absl::StartsWith(value, "[")) {
      if (!google::protobuf::util::JsonStringToMessage(value, &v).ok()) {
        return absl::InvalidArgumentError("is not valid JSON");
      }
    } else if (value == "true" || value == "false") {
      v.set_bool_value(value == "true");
    } else if (is(FieldDescriptor::CPPTYPE_BOOL)) {
      return absl::InvalidArgumentError("takes true or false");
    } else if (is(FieldDescriptor::CPPTYPE_ENUM)) {
      int n;
      if (absl::SimpleAtoi(value, &n)) {
        v.set_number_value(n);  // by number
      } else {
        const auto* found = FindEnumValue(*field.enum_type(), value);
        if (found == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("takes one of ", absl::StrJoin(ShortEnumNames(*field.enum_type()), ", ")));
        }
        v.set_string_value(found->name());
      }
    } else if ((is(FieldDescriptor::CPPTYPE_DOUBLE) || is(FieldDescriptor::CPPTYPE_FLOAT)) &&
               absl::SimpleAtod(value, &number)) {
      v.set_number_value(number);
    } else {
      v.set_string_value(value);  // integers, timestamps, durations, names
    }
    return v;
  }

  // The cases of a procedure, of one state or all, a page at a time; or
  // those a FIELD=VALUE filter of the list request picks (v_number=...,
  // imei=...).
  int List(const std::vector<std::string>& all_args) {
    std::vector<std::string> args, fields;
    for (const auto& a : all_args) (args.empty() || !absl::StrContains(a, '=') ? args : fields).push_back(a);
    const Procedure* p = args.empty() ? nullptr : ProcedureNamed(args[0]);
    if (p == nullptr || args.size() > 2) {
      return Usage("list trade-in|unlock|otp|claim|enrollment [STATE] [FIELD=VALUE]");
    }
    const std::string method = absl::StrCat(p->service, "/", p->list);
    // Enrollments are listed without a state, and have no assignee.
    const auto* state_field = FindMethod(method)->input_type()->FindFieldByName("state");
    std::string filter;
    if (!flags_.assignee.empty()) {
      if (state_field == nullptr) return Usage(absl::StrCat(p->name, " cases have no assignee"));
      if (args.size() == 2) return Usage("one filter at a time: a STATE or --assignee");
      filter = absl::StrCat(",\"assignee\":", Quote(flags_.assignee));
    }
    if (args.size() == 2) {
      if (state_field == nullptr) return Usage(absl::StrCat(p->name, " cases are listed without a state"));
      const std::string which = absl::AsciiStrToUpper(args[1]);
      // Not a state: the cases whose SLA clock is past its warning or breach.
      if (which == "AT_RISK" || which == "BREACHED") {
        filter = absl::StrCat(",\"sla_attention\":", Quote("SLA_ATTENTION_" + which));
      } else {
        const auto& states = *state_field->enum_type();
        const auto* state = FindEnumValue(states, which);
        if (state == nullptr) {
          return Usage(absl::StrCat(args[1], " is not a state of ", p->name, " cases; one of ",
                                    absl::AsciiStrToLower(absl::StrJoin(ShortEnumNames(states), ", ")),
                                    ", or at_risk or breached"));
        }
        filter = absl::StrCat(",\"state\":", Quote(state->name()));
      }
    }
    if (!fields.empty()) {
      google::protobuf::Struct more;
      if (auto s = FillRequest(*FindMethod(method), fields, nullptr, &more); !s.ok()) {
        return Usage(std::string(s.message()));
      }
      for (const char* paging : {"page_size", "page_token"}) {
        if (more.fields().count(paging)) return Usage(absl::StrCat(paging, ": list pages with --count and --cursor"));
      }
      const std::string json = CompactJson(more);  // {"v_number":"V1234567"}
      absl::StrAppend(&filter, ",", json.substr(1, json.size() - 2));
    }
    std::vector<std::string> columns = {"name", p->key, "state", "updateTime"};
    if (state_field != nullptr) columns.push_back("assignee");
    return ListTable(method, p->collection, columns, filter,
                     flags_.count > 0 ? flags_.count : 50, flags_.cursor);
  }

  // Saves a case's document to `file`: a trade-in's proof of purchase, or
  // the claim document `document_id` names.
  int Document(const std::vector<std::string>& args) {
    const bool trade_in = args.size() == 2 && absl::StartsWith(args[0], "tradeIns/");
    const bool claim = args.size() == 3 && absl::StartsWith(args[0], "claims/");
    if (!trade_in && !claim) return Usage("document tradeIns/ID FILE | document claims/ID DOCUMENT_ID FILE");
    std::string request = absl::StrCat("{\"name\":", Quote(args[0]));
    if (claim) absl::StrAppend(&request, ",\"document_id\":", Quote(args[1]));
    request += "}";
    std::unique_ptr<Message> out;
    grpc::Status s = Invoke(trade_in ? "TradeInService/GetProofOfPurchase" : "ProtectionClaimService/GetClaimDocument",
                            request, &out, client::Retry::kSafe);
    if (!s.ok()) return Fail(s);
    const std::string content =
        out->GetReflection()->GetString(*out, out->GetDescriptor()->FindFieldByName("content"));
    const std::string& file = args.back();
    std::ofstream saved(file, std::ios::binary | std::ios::trunc);
    if (!saved.write(content.data(), static_cast<std::streamsize>(content.size())) || !saved.flush()) {
      std::fprintf(stderr, "casectl: cannot write %s\n", file.c_str());
      return kFailed;
    }
    std::printf("%s: %zu bytes\n", file.c_str(), content.size());
    return kOk;
  }

  // Calls `method` with the request `json` and prints the answer as JSON.
  int Call(const std::string& method, const std::string& json, client::Retry retry = client::Retry::kNever) {
    std::unique_ptr<Message> out;
    grpc::Status s = Invoke(method, json, &out, retry);
    if (!s.ok()) return Fail(s);
    std::printf("%s", ToJson(*out).c_str());
    return kOk;
  }

  int Import(const std::string& what, const std::string& file) {
    if (what != "accounts" && what != "profiles") return Usage("import accounts|profiles FILE");
    std::ifstream in(file);
    if (!in) return Usage("cannot read " + file);
    // Counted first for the progress line, then read a batch at a time: a
    // directory of millions of rows is never held whole.
    size_t total = 0;
    std::string line;
    while (std::getline(in, line)) ++total;
    in.clear();
    in.seekg(0);
    const std::string method = what == "accounts" ? "AdminService/ImportAccounts" : "AdminService/ImportProfiles";
    const bool tty = isatty(STDERR_FILENO);
    int imported = 0, failed = 0;
    std::vector<std::string> report;
    for (size_t start = 0, end = 0; start < total; start = end) {
      std::string chunk;
      for (; end < total && end - start < static_cast<size_t>(flags_.batch) && std::getline(in, line); ++end) {
        absl::StrAppend(&chunk, line, "\n");
      }
      if (end == start) return Usage("cannot read " + file);  // cut short while importing
      v1::ImportAccountsRequest req;  // both imports take json_lines
      req.set_json_lines(chunk);
      std::unique_ptr<Message> out;
      // A batch may be sent twice: each row replaces its account or profile.
      grpc::Status s = Invoke(method, CompactJson(req), &out, client::Retry::kSafe);
      if (!s.ok()) return Fail(s);
      v1::ImportAccountsResponse result;  // same shape for profiles
      result.ParseFromString(out->SerializeAsString());
      imported += result.imported();
      failed += result.failed();
      for (const auto& e : result.errors()) {
        // A line that is not JSON at all names no field.
        report.push_back(absl::StrCat("line ", start + e.line(), ": ", e.field(), e.field().empty() ? "" : ": ",
                                      e.description()));
      }
      const int bar = static_cast<int>(30.0 * end / total);
      std::fprintf(stderr, "%s[%s%s] %zu/%zu rows, %d imported, %d rejected%s", tty ? "\r" : "",
                   std::string(bar, '#').c_str(), std::string(30 - bar, '.').c_str(), end, total,
                   imported, failed, tty ? "" : "\n");
    }
    if (tty) std::fprintf(stderr, "\n");
    if (flags_.json) {
      std::printf("{\"imported\": %d, \"rejected\": %d, \"errors\": [", imported, failed);
      for (size_t i = 0; i < report.size(); ++i) std::printf("%s%s", i ? ", " : "", Quote(report[i]).c_str());
      std::printf("]}\n");
    } else {
      for (const auto& r : report) std::printf("%s\n", r.c_str());
      std::printf("%d imported, %d rejected\n", imported, failed);
    }
    return failed > 0 ? kInvalid : kOk;
  }

  int Templates(const std::vector<std::string>& a) {
    if (a.empty()) return Usage("templates list|get|render|create|update|reset");
    if (a[0] == "list") return ListTable("AdminService/ListTemplates", "templates", {"name", "procedure", "channel", "etag"});
    if (a.size() < 2) return Usage("templates " + a[0] + " ID");
    const std::string name = absl::StartsWith(a[1], "templates/") ? a[1] : "templates/" + a[1];
    if (a[0] == "get") return Call("AdminService/GetTemplate", absl::StrCat("{\"name\":", Quote(name), "}"));
    if (a[0] == "render") {
      std::string json = absl::StrCat("{\"name\":", Quote(name), ",\"values\":{");
      std::string lang;
      bool first = true;
      for (size_t i = 2; i < a.size(); ++i) {
        const size_t eq = a[i].find('=');
        if (eq == std::string::npos) {
          lang = a[i];
          continue;
        }
        absl::StrAppend(&json, first ? "" : ",", Quote(a[i].substr(0, eq)), ":", Quote(a[i].substr(eq + 1)));
        first = false;
      }
      absl::StrAppend(&json, "},\"languageCode\":", Quote(lang), "}");
      return Call("AdminService/RenderTemplate", json);
    }
    if (a[0] == "create" && a.size() == 3) {
      auto body = ReadObject(a[2]);
      if (!body.ok()) return Usage(std::string(body.status().message()));
      return Call("AdminService/CreateTemplate", absl::StrCat("{\"templateId\":", Quote(name.substr(10)),
                                                             ",\"template\":", CompactJson(*body), "}"));
    }
    if (a[0] == "update" && a.size() == 3) return Save("AdminService/UpdateTemplate", "template", name, a[2], false);
    if (a[0] == "reset" && a.size() == 2) {
      return Call("AdminService/ResetTemplate", absl::StrCat("{\"name\":", Quote(name), "}"));
    }
    if (a[0] == "delete" && a.size() == 2) return Delete("AdminService/DeleteTemplate", name);
    return Usage(
        "templates list|get ID|render ID [LANG] [FIELD=VALUE...]|create ID FILE|update ID FILE|reset ID|delete ID");
  }

  // Deletes the resource `name` with `method`, which answers Empty.
  int Delete(const std::string& method, const std::string& name) {
    std::unique_ptr<Message> out;
    grpc::Status s = Invoke(method, absl::StrCat("{\"name\":", Quote(name), "}"), &out);
    if (!s.ok()) return Fail(s);
    std::printf("deleted %s\n", name.c_str());
    return kOk;
  }

  // Records admins keep with etags: read, listed, and saved from the JSON
  // that `get` prints.
  struct RecordKind {
    const char* command;     // "calendars"
    const char* collection;  // "calendars", as in calendars/{id}
    const char* service;
    const char* get;
    const char* list;  // also the list answer's field, after "List"
    const char* create;
    const char* update;
    const char* field;  // of the update request
    std::vector<std::string> columns;
    const char* remove = nullptr;  // the Delete method, if there is one
  };

  int Records(const RecordKind& k, const std::vector<std::string>& a) {
    const std::string usage =
        absl::StrCat(k.command, " list|get ID|create ID FILE|update ID FILE", k.remove ? "|delete ID" : "");
    if (a.size() == 1 && a[0] == "list") {
      std::string field = std::string(k.list).substr(4);
      field[0] = absl::ascii_tolower(field[0]);
      return ListTable(absl::StrCat(k.service, "/", k.list), field, k.columns);
    }
    if (a.size() < 2) return Usage(usage);
    const std::string prefix = absl::StrCat(k.collection, "/");
    const std::string name = absl::StartsWith(a[1], prefix) ? a[1] : prefix + a[1];
    if (a[0] == "get" && a.size() == 2) {
      return Call(absl::StrCat(k.service, "/", k.get), absl::StrCat("{\"name\":", Quote(name), "}"));
    }
    if ((a[0] == "create" || a[0] == "update") && a.size() == 3) {
      const bool create = a[0] == "create";
      return Save(absl::StrCat(k.service, "/", create ? k.create : k.update), k.field, name, a[2], create);
    }
    if (a[0] == "delete" && a.size() == 2 && k.remove != nullptr) {
      return Delete(absl::StrCat(k.service, "/", k.remove), name);
    }
    return Usage(usage);
  }

  int Calendars(const std::vector<std::string>& a) {
    static const RecordKind kCalendars{"calendars",   "calendars",     "AdminService",
                                       "GetCalendar", "ListCalendars", "CreateCalendar",
                                       "UpdateCalendar", "calendar", {"name", "timeZone", "etag"},
                                       "DeleteCalendar"};
    return Records(kCalendars, a);
  }

  int Plans(const std::vector<std::string>& a) {
    static const RecordKind kPlans{"plans",
                                   "protectionPlans",
                                   "ProtectionClaimService",
                                   "GetProtectionPlan",
                                   "ListProtectionPlans",
                                   "CreateProtectionPlan",
                                   "UpdateProtectionPlan",
                                   "protectionPlan",
                                   {"name", "displayName", "reviewBusinessDays", "retired", "etag"}};
    return Records(kPlans, a);
  }

  // Sends FILE's JSON object, named `name`, as the `field` of a Create or
  // Update call. On update the object's etag (as `get` printed it) guards
  // against a change made since; a create drops it, and fails with
  // ALREADY_EXISTS when the name is taken.
  int Save(const std::string& method, const std::string& field, const std::string& name,
           const std::string& file, bool create) {
    auto body = ReadObject(file);
    if (!body.ok()) return Usage(std::string(body.status().message()));
    (*body->mutable_fields())["name"].set_string_value(name);
    if (create) body->mutable_fields()->erase("etag");
    return Call(method, absl::StrCat("{", Quote(field), ":", CompactJson(*body), "}"));
  }

  int Watch(const std::vector<std::string>& procedures) {
    v1::WatchBoardsRequest req;
    for (const auto& p : procedures) req.add_procedures(absl::StrReplaceAll(p, {{"-", "_"}}));
    req.set_cursor(flags_.cursor);
    return ReadBoards(req, [this](const v1::BoardUpdate& u) {
      if (flags_.json) {
        std::printf("%s\n", CompactJson(u).c_str());
      } else if (u.has_snapshot()) {
        for (const auto& b : u.snapshot().boards()) {
          std::string cols;
          for (const auto& c : b.columns()) absl::StrAppend(&cols, " ", c.state(), "=", c.count());
          for (const auto& a : b.slas()) {
            absl::StrAppend(&cols, "; SLA ", a.sla(), ": ", a.at_risk(), " at risk, ", a.breached(), " breached");
          }
          std::printf("board %s:%s\n", b.procedure().c_str(), cols.c_str());
        }
      } else {
        const auto& c = u.change();
        std::string slas;
        for (const auto& a : c.sla_changes()) {
          absl::StrAppend(&slas, absl::StrFormat(", SLA %s: at risk %+d, breached %+d", a.sla(),
                                                 a.at_risk(), a.breached()));
        }
        std::printf("%s %s %s -> %s, %s%s (etag %s, cursor %s)\n", c.procedure().c_str(), c.name().c_str(),
                    c.previous_state().empty() ? "new" : c.previous_state().c_str(), c.state().c_str(),
                    c.assignee().empty() ? "unassigned" : ("assigned to " + c.assignee()).c_str(),
                    slas.c_str(), c.etag().c_str(), u.cursor().c_str());
      }
      std::fflush(stdout);
    });
  }

  // Streams WatchBoards, handing each update to `on_update`, until the
  // stream ends or --count changes have come.
  int ReadBoards(const v1::WatchBoardsRequest& req,
                 const std::function<void(const v1::BoardUpdate&)>& on_update) {
    auto stub = v1::BoardService::NewStub(client_.channel());
    auto ctx = client_.Context();
    // A stream runs until stopped, unless --timeout was given.
    if (!flags_.timeout_given) ctx->set_deadline(std::chrono::system_clock::time_point::max());
    auto stream = stub->WatchBoards(ctx.get(), req);
    v1::BoardUpdate u;
    int64_t changes = 0;
    while (stream->Read(&u)) {
      on_update(u);
      if (u.has_change() && flags_.count > 0 && ++changes >= flags_.count) {
        ctx->TryCancel();
        while (stream->Read(&u)) {
        }
        stream->Finish();
        return kOk;
      }
    }
    grpc::Status s = stream->Finish();
    return s.ok() ? kOk : Fail(s);
  }

  int DeadLetters(const std::vector<std::string>& a) {
    if (!a.empty() && a[0] == "list") {
      return ListTable("AdminService/ListDeadLetters", "deadLetters", {"name", "templateId", "channel", "attempts", "lastError"});
    }
    if (a.size() == 2 && a[0] == "retry") {
      return Call("AdminService/RetryDeadLetter", absl::StrCat("{\"name\":", Quote(a[1]), "}"));
    }
    return Usage("dead-letters list|retry NAME");
  }

  // A privacy request: EraseCustomerData from FIELD=VALUE pairs
  // (email=, phone_number=, reason=, validate_only=true).
  int Erase(const std::vector<std::string>& fields) {
    const std::string method = "AdminService/EraseCustomerData";
    google::protobuf::Struct request;
    if (fields.empty()) return Usage("erase email=ADDRESS|phone_number=NUMBER reason=WHY [validate_only=true]");
    if (auto s = FillRequest(*FindMethod(method), fields, nullptr, &request); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    return Call(method, CompactJson(request));
  }

  // The audit log, newest first, 50 records at a time.
  int Audit() {
    return ListTable("AdminService/ListAuditRecords", "auditRecords",
                     {"createTime", "actor", "action", "reason", "counts"}, "", flags_.count > 0 ? flags_.count : 50,
                     flags_.cursor);
  }

  int Backups(const std::vector<std::string>& a) {
    if (a.size() == 1 && a[0] == "list") {
      return ListTable("AdminService/ListBackups", "backups", {"name", "createTime", "sizeBytes", "fileCount", "damaged"});
    }
    if (a.size() == 1 && a[0] == "create") {
      // Retried safely: a retry of a backup already taken answers with it.
      v1::CreateBackupRequest req;
      req.set_request_id(NewRequestId());
      return Call("AdminService/CreateBackup", CompactJson(req), client::Retry::kSafe);
    }
    return Usage("backups list|create");
  }

 private:
  // A field of `type` by its name in the .proto or in JSON.
  static const google::protobuf::FieldDescriptor* FieldOf(const google::protobuf::Descriptor& type,
                                                          const std::string& name) {
    const auto* field = type.FindFieldByName(name);
    return field != nullptr ? field : type.FindFieldByCamelcaseName(name);
  }

  // Marked OUTPUT_ONLY in the .proto: the server sets it.
  static bool OutputOnly(const google::protobuf::FieldDescriptor& field) {
    const auto& behaviors = field.options().GetRepeatedExtension(google::api::field_behavior);
    return std::find(behaviors.begin(), behaviors.end(), google::api::OUTPUT_ONLY) != behaviors.end();
  }

  static std::string Quote(const std::string& s) {
    google::protobuf::Value v;
    v.set_string_value(s);
    return CompactJson(v);
  }

  // A JSON value as a table shows it: yes/no, numbers as written, and an
  // object as its KEY=VALUE pairs.
  static std::string Cell(const google::protobuf::Value& v) {
    if (v.has_string_value()) return v.string_value();
    if (v.has_bool_value()) return v.bool_value() ? "yes" : "no";
    if (v.has_struct_value()) {
      std::vector<std::string> pairs;
      for (const auto& [key, value] : v.struct_value().fields()) pairs.push_back(key + "=" + Cell(value));
      std::sort(pairs.begin(), pairs.end());
      return absl::StrJoin(pairs, " ");
    }
    return absl::StrCat(v.number_value());
  }

  // Lists `field` of every page of `method` as a table of `columns` (JSON
  // names). `filter` adds to the request (e.g. `,"state":"..."`); with a
  // `limit`, stops after that many rows and prints the cursor to go on from,
  // starting from `token`.
  int ListTable(const std::string& method, const std::string& field, const std::vector<std::string>& columns,
                const std::string& filter = "", int64_t limit = 0, std::string token = "") {
    std::vector<std::vector<std::string>> rows;
    google::protobuf::ListValue all;
    do {
      std::unique_ptr<Message> page;
      const int64_t size = limit > 0 ? std::min<int64_t>(500, limit - all.values_size()) : 500;
      const std::string request =
          absl::StrCat("{\"pageSize\":", size, ",\"pageToken\":", Quote(token), filter, "}");
      grpc::Status s = Invoke(method, request, &page, client::Retry::kSafe);
      if (!s.ok()) return Fail(s);
      google::protobuf::Struct st;
      (void)google::protobuf::util::JsonStringToMessage(CompactJson(*page), &st);
      auto items = st.fields().find(field);
      if (items != st.fields().end()) {
        for (const auto& v : items->second.list_value().values()) {
          *all.add_values() = v;
          std::vector<std::string> row;
          for (const auto& c : columns) {
            auto f = v.struct_value().fields().find(c);
            std::string cell;
            if (f != v.struct_value().fields().end()) cell = Cell(f->second);
            // States as the boards show them: PROBLEM_ORDER, not TRADE_IN_STATE_PROBLEM_ORDER.
            if (const size_t at = cell.find("_STATE_"); c == "state" && at != std::string::npos) {
              cell = cell.substr(at + 7);
            }
            // Times to the second, as the timeline shows them.
            if (absl::EndsWith(c, "Time") && cell.size() > 20) cell = cell.substr(0, 19) + "Z";
            row.push_back(cell.size() > 60 ? cell.substr(0, 57) + "..." : cell);
          }
          rows.push_back(std::move(row));
        }
      }
      auto next = st.fields().find("nextPageToken");
      token = next == st.fields().end() ? "" : next->second.string_value();
    } while (!token.empty() && (limit == 0 || all.values_size() < limit));
    if (flags_.json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions o;
      o.add_whitespace = true;
      (void)google::protobuf::util::MessageToJsonString(all, &out, o);
      std::printf("%s", out.c_str());
    } else {
      std::vector<std::string> header;
      for (const auto& c : columns) {
        std::string words;  // updateTime -> UPDATE TIME
        for (char ch : c) absl::StrAppend(&words, absl::ascii_isupper(ch) ? " " : "", std::string(1, ch));
        header.push_back(absl::AsciiStrToUpper(words));
      }
      PrintTable(header, rows);
    }
    if (!token.empty()) std::fprintf(stderr, "more: go on with --cursor=%s\n", token.c_str());
    return kOk;
  }

  Flags flags_;
  client::Client client_;
};

int Workflows(const Flags& flags) {
  const auto all = AllWorkflows();
  if (flags.dot) {
    for (const auto& wf : all) {
      const auto& spec = wf->spec();
      std::printf("digraph %s {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", spec.kind.c_str());
      std::printf("  start [shape=point];\n");
      for (const auto& s : spec.final_states) std::printf("  \"%s\" [peripheries=2];\n", s.c_str());
      for (const auto& t : spec.transitions) {
        const std::string label = absl::StrCat(t.action, t.roles.empty() ? "" : "\\n[" + absl::StrJoin(t.roles, ", ") + "]");
        const std::vector<std::string> from = t.from.empty() ? std::vector<std::string>{"start"} : t.from;
        for (const auto& f : from) {
          const std::string to = t.to.empty() ? f : t.to;
          std::printf("  \"%s\" -> \"%s\" [label=\"%s\"%s];\n", f.c_str(), to.c_str(), label.c_str(),
                      t.to.empty() ? ", style=dashed" : "");
        }
      }
      std::printf("}\n");
    }
    return kOk;
  }
  // Actions open to every state or every role say so, so that the table
  // stays readable in a terminal.
  auto covers = [](const std::vector<std::string>& given, std::vector<std::string> all) {
    return given.size() == all.size() && std::is_permutation(given.begin(), given.end(), all.begin());
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& wf : all) {
    const auto& spec = wf->spec();
    std::vector<std::string> open;
    for (const auto& s : spec.states) {
      if (!spec.IsFinal(s)) open.push_back(s);
    }
    for (const auto& t : spec.transitions) {
      const std::string from = t.from.empty()              ? "(new)"
                               : covers(t.from, spec.states) ? "(any)"
                               : covers(t.from, open)        ? "(open)"
                                                             : absl::StrJoin(t.from, ",");
      const std::string roles = covers(t.roles, workflow::AllRoles()) ? "(anyone)" : absl::StrJoin(t.roles, ",");
      rows.push_back({spec.kind, t.action, from, t.to.empty() ? "(same)" : t.to, roles});
    }
  }
  PrintTable({"PROCEDURE", "ACTION", "FROM", "TO", "ROLES"}, rows);
  return kOk;
}

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

int Main(int argc, char** argv) {
  Flags flags;
  auto& o = flags.options;
  o.target = Env("CASEWORK_SERVER", "127.0.0.1:7400");
  o.token = Env("CASEWORK_TOKEN");
  o.role = Env("CASEWORK_ROLE");
  o.principal = Env("CASEWORK_PRINCIPAL");
  o.ca_file = Env("CASEWORK_CA");
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name, std::string* out) {
      const std::string prefix = absl::StrCat("--", name, "=");
      if (!absl::StartsWith(a, prefix)) return false;
      *out = a.substr(prefix.size());
      return true;
    };
    std::string timeout, count, batch;
    if (value("cursor", &flags.cursor) || value("assignee", &flags.assignee)) continue;
    if (value("count", &count)) {
      if (!absl::SimpleAtoi(count, &flags.count) || flags.count < 0) return Usage("--count takes a number");
      continue;
    }
    if (value("batch", &batch)) {
      if (!absl::SimpleAtoi(batch, &flags.batch) || flags.batch < 1) return Usage("--batch takes a number of rows");
      continue;
    }
    if (value("server", &o.target) || value("token", &o.token) || value("role", &o.role) ||
        value("principal", &o.principal) || value("ca", &o.ca_file) || value("cert", &o.client_cert_file) ||
        value("key", &o.client_key_file)) {
      continue;
    }
    if (value("timeout", &timeout)) {
      int seconds = 0;
      if (!absl::SimpleAtoi(timeout, &seconds) || seconds <= 0) return Usage("--timeout takes seconds");
      o.deadline = std::chrono::seconds(seconds);
      flags.timeout_given = true;
    } else if (a == "--json") {
      flags.json = true;
    } else if (a == "--dot") {
      flags.dot = true;
    } else if (a == "--watch") {
      flags.watch = true;
    } else if (a == "--tls") {
      o.tls = true;
    } else if (a == "--help" || a == "-h") {
      args.insert(args.begin(), "help");
    } else if (a == "--version") {
      std::printf("casectl %s\n", Version());
      return kOk;
    } else if (absl::StartsWith(a, "--")) {
      return Usage("unknown flag " + a);
    } else {
      args.push_back(a);
    }
  }
  if (args.empty() || args[0] == "help") {
    std::fputs(kHelp, stdout);
    return args.empty() ? kUsage : kOk;
  }
  const std::string cmd = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "workflows") return Workflows(flags);
  // A backup copies what changed since the one before, which for a large
  // store can outlast the usual per-call timeout: unless --timeout is
  // given, it is waited for as long as it takes.
  if (cmd == "backups" && !flags.timeout_given) o.deadline = std::chrono::hours(24);
  Cli cli(flags);
  if (cmd == "boards") return cli.Boards({});
  if (cmd == "board" && rest.size() == 1) return cli.Boards(rest);
  if (cmd == "show" && rest.size() == 1) return cli.Show(rest[0]);
  if (cmd == "act" && rest.size() >= 2) return cli.Act(rest[0], rest[1], {rest.begin() + 2, rest.end()});
  if (cmd == "act" && rest.size() == 1) return cli.Act(rest[0], "", {});
  if (cmd == "create") return cli.Create(rest);
  if (cmd == "list") return cli.List(rest);
  if (cmd == "document") return cli.Document(rest);
  if (cmd == "call" && (rest.size() == 1 || rest.size() == 2)) return cli.Call(rest[0], rest.size() == 2 ? rest[1] : "{}");
  if (cmd == "import" && rest.size() == 2) return cli.Import(rest[0], rest[1]);
  if (cmd == "templates") return cli.Templates(rest);
  if (cmd == "calendars") return cli.Calendars(rest);
  if (cmd == "plans") return cli.Plans(rest);
  if (cmd == "dead-letters") return cli.DeadLetters(rest);
  if (cmd == "backups") return cli.Backups(rest);
  if (cmd == "erase") return cli.Erase(rest);
  if (cmd == "audit" && rest.empty()) return cli.Audit();
  if (cmd == "watch") return cli.Watch(rest);
  return Usage("unknown command or wrong arguments: " + cmd);
}

}  // namespace
}  // namespace casework::casectl

int main(int argc, char** argv) { return casework::casectl::Main(argc, argv); }
