// casectl against a real server: every command group once, tables and
// --json output, documents read from files, field violations shown
// plainly, and the exit codes.
#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "casework/v1/trade_in.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/common/version.h"
#include "tests/testing/process.h"
#include "tests/testing/test_server.h"

namespace casework {
namespace {

using testing::TestServer;

const absl::Time kStart = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone());

using Result = testing::CommandResult;  // out: stdout and stderr

class CasectlTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.Start(); }

  Result Casectl(const std::string& role, const std::string& args) {
    const std::string cmd = absl::StrCat(CASECTL_PATH, " --server=127.0.0.1:", server_.server().port(),
                                         " --principal=jdoe --role=", role, " ", args, " 2>&1");
    return testing::RunCommand(cmd);
  }

  static google::protobuf::Struct Json(const std::string& text) {
    google::protobuf::Struct s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &s).ok()) << text;
    return s;
  }

  testing::TempDir dir_;
  TestServer server_{kStart};
};

TEST_F(CasectlTest, EveryCommandGroupAgainstARealServer) {
  // watch: a live stream, stopped after the first change.
  Result watched;
  std::atomic<bool> watching{true};
  std::thread watcher([&] {
    watched = Casectl("cs_agent", "watch trade-in --count=1 --timeout=60");
    watching = false;
  });

  // call: create a case from JSON; --json output parses.
  Result created = Casectl("ops", R"(--json call TradeInService/CreateTradeIn '{"tradeIn":{"vNumber":"V4000001",)"
                               R"("sNumber":"S4000001","productName":"Galaxy S22","problem":"TRADE_IN_PROBLEM_DEVICE_LOCKED",)"
                               R"("customer":{"displayName":"Jan","email":"jan@example.nl"}}}')");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const std::string name = Json(created.out).fields().at("name").string_value();
  ASSERT_EQ(name.rfind("tradeIns/", 0), 0u);
  // The watcher may subscribe after that create: more changes until it
  // has seen one.
  for (int i = 0; i < 100 && watching; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Casectl("ops", "act " + name + " AddTradeInComment text=ping");
  }
  watcher.join();
  EXPECT_EQ(watched.exit_code, 0) << watched.out;
  EXPECT_NE(watched.out.find("board trade_in: PROBLEM_ORDER="), std::string::npos) << watched.out;
  EXPECT_NE(watched.out.find("; SLA response: 0 at risk, 0 breached\n"), std::string::npos) << watched.out;
  EXPECT_NE(watched.out.find("trade_in " + name + " "), std::string::npos) << watched.out;
  EXPECT_NE(watched.out.find("PROBLEM_ORDER, unassigned (etag "), std::string::npos) << watched.out;

  // boards: a table, and JSON with every column.
  Result boards = Casectl("cs_agent", "boards");
  ASSERT_EQ(boards.exit_code, 0) << boards.out;
  EXPECT_NE(boards.out.find("trade-in   PROBLEM_ORDER"), std::string::npos) << boards.out;
  EXPECT_NE(boards.out.find("unlock"), std::string::npos);
  // Then each SLA's open clocks past their warning or breach.
  EXPECT_NE(boards.out.find("\nPROCEDURE  SLA         AT RISK  BREACHED\n"
                            "trade-in   response    0        0\n"
                            "unlock     unlock      0        0\n"
                            "otp        resolution  0        0\n"
                            "otp        team_lead   0        0\n"
                            "claim      review      0        0\n"),
            std::string::npos)
      << boards.out;
  Result board = Casectl("cs_agent", "--json board trade-in");
  ASSERT_EQ(board.exit_code, 0);
  const auto columns = Json(board.out).fields().at("columns").list_value();
  ASSERT_GT(columns.values_size(), 0);
  EXPECT_EQ(columns.values(0).struct_value().fields().at("state").string_value(), "PROBLEM_ORDER");
  EXPECT_EQ(columns.values(0).struct_value().fields().at("count").string_value(), "1");

  // act + show.
  Result act = Casectl("cs_agent", "act " + name + " ContactCustomer");
  ASSERT_EQ(act.exit_code, 0) << act.out;
  Result again = Casectl("cs_agent", "act " + name + " ContactCustomer");
  EXPECT_EQ(again.exit_code, 6) << again.out;  // wrong state
  EXPECT_NE(again.out.find("FAILED_PRECONDITION: cannot contact_customer: the trade_in case is in state "
                           "WAITING_FOR_RESPONSE"),
            std::string::npos)
      << again.out;
  Result comment = Casectl("cs_agent", "act " + name + " AddTradeInComment 'text=Called the customer'");
  EXPECT_EQ(comment.exit_code, 0) << comment.out;
  Result show = Casectl("cs_agent", "show " + name);
  ASSERT_EQ(show.exit_code, 0) << show.out;
  EXPECT_NE(show.out.find("WAITING_FOR_RESPONSE"), std::string::npos);
  EXPECT_NE(show.out.find("jdoe (cs_agent)"), std::string::npos) << show.out;
  Result show_json = Casectl("cs_agent", "--json show " + name);
  ASSERT_EQ(show_json.exit_code, 0);
  EXPECT_GE(Json(show_json.out).fields().at("events").struct_value().fields().at("events").list_value().values_size(), 3);

  // list: the cases of one state.
  Result waiting = Casectl("cs_agent", "list trade-in waiting_for_response");
  ASSERT_EQ(waiting.exit_code, 0) << waiting.out;
  EXPECT_NE(waiting.out.find(name + "  V4000001  WAITING_FOR_RESPONSE"), std::string::npos) << waiting.out;
  EXPECT_EQ(Casectl("cs_agent", "list trade-in problem_order").out.find(name), std::string::npos);
  EXPECT_EQ(Casectl("cs_agent", "list enrollment active").exit_code, 2);  // enrollments have no state filter
  Result typo = Casectl("cs_agent", "list trade-in waiting");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.out.find("waiting is not a state of trade-in cases; one of problem_order, waiting_for_response, "),
            std::string::npos)
      << typo.out;
  // list by a field of the list request: the number the customer gives.
  Result by_number = Casectl("cs_agent", "list trade-in v_number=V4000001");
  ASSERT_EQ(by_number.exit_code, 0) << by_number.out;
  EXPECT_NE(by_number.out.find(name + "  V4000001  WAITING_FOR_RESPONSE"), std::string::npos) << by_number.out;
  Result other_number = Casectl("cs_agent", "list trade-in v_number=V4000002");
  EXPECT_EQ(other_number.exit_code, 0) << other_number.out;
  EXPECT_EQ(other_number.out.find(name), std::string::npos) << other_number.out;
  Result no_field = Casectl("cs_agent", "list trade-in vnumber=V4000001");
  EXPECT_EQ(no_field.exit_code, 2);
  EXPECT_NE(no_field.out.find("ListTradeIns has no field vnumber; it takes "), std::string::npos) << no_field.out;
  EXPECT_EQ(Casectl("cs_agent", "list trade-in page_size=5").exit_code, 2);  // --count pages
  Result two_filters = Casectl("cs_agent", "list trade-in waiting_for_response v_number=V4000001");
  EXPECT_EQ(two_filters.exit_code, 4);  // the server takes one filter at a time, and says so
  EXPECT_NE(two_filters.out.find("set at most one of state, v_number"), std::string::npos) << two_filters.out;
  Result at_risk = Casectl("team_lead", "list trade-in at_risk");  // no clock past a warning yet
  EXPECT_EQ(at_risk.exit_code, 0) << at_risk.out;
  EXPECT_EQ(at_risk.out.find(name), std::string::npos) << at_risk.out;

  // Digits given for a text field stay text (an unlock code, an IMEI).
  Result code = Casectl("cs_agent", "act " + name + " RecordUnlockCode unlock_code=1234");
  EXPECT_EQ(code.exit_code, 0) << code.out;
  EXPECT_NE(code.out.find("TRADE_IN_STATE_TESTING"), std::string::npos) << code.out;

  // Errors: fields shown plainly; exit codes.
  Result bad = Casectl("ops", R"(call TradeInService/CreateTradeIn '{"tradeIn":{"vNumber":"X1"}}')");
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_NE(bad.out.find("  trade_in.v_number: must be 'V'"), std::string::npos) << bad.out;
  // Each said once, on its own line, under a count.
  EXPECT_NE(bad.out.find("error: INVALID_ARGUMENT: 6 bad fields\n"), std::string::npos) << bad.out;
  // One bad field: said once, in the error line.
  Result one = Casectl("cs_agent", "act " + name + " AddTradeInComment");
  EXPECT_EQ(one.exit_code, 4);
  EXPECT_NE(one.out.find("error: INVALID_ARGUMENT: text: "), std::string::npos) << one.out;
  EXPECT_EQ(one.out.find("\n  text: "), std::string::npos) << one.out;
  EXPECT_EQ(Casectl("cs_agent", "show tradeIns/NOSUCHCASE").exit_code, 3);
  // A field the request lacks is named with the fields it has, before
  // anything is sent; an action left out lists the actions the case's
  // state allows the caller's role.
  Result unknown_field = Casectl("cs_agent", "act " + name + " AddTradeInComment txt=hello");
  EXPECT_EQ(unknown_field.exit_code, 2);
  EXPECT_NE(unknown_field.out.find("AddTradeInComment has no field txt; it takes name, etag, text"), std::string::npos)
      << unknown_field.out;
  Result agent_may = Casectl("cs_agent", "act " + name);
  EXPECT_EQ(agent_may.exit_code, 0) << agent_may.out;
  EXPECT_NE(agent_may.out.find("Open in TESTING, to cs_agent:\n"
                               "ACTION             FIELDS\n"
                               "CancelTradeIn      reason\n"
                               "AddTradeInComment  text\n"
                               "AssignTradeIn      assignee\n"),
            std::string::npos)
      << agent_may.out;
  Result ops_may = Casectl("ops", "--json act " + name);
  EXPECT_EQ(ops_may.exit_code, 0) << ops_may.out;
  std::vector<std::string> ops_actions;
  const google::protobuf::Struct ops_json = Json(ops_may.out);
  EXPECT_EQ(ops_json.fields().at("state").string_value(), "TESTING");
  for (const auto& a : ops_json.fields().at("actions").list_value().values()) {
    ops_actions.push_back(a.struct_value().fields().at("action").string_value());
    if (ops_actions.back() == "FlagProblem") {
      std::vector<std::string> fields;
      for (const auto& f : a.struct_value().fields().at("fields").list_value().values()) {
        fields.push_back(f.string_value());
      }
      EXPECT_EQ(fields, (std::vector<std::string>{"problem", "note"}));
    }
  }
  EXPECT_EQ(ops_actions, (std::vector<std::string>{"RevealUnlockCode", "FlagProblem", "CloseTradeIn", "CancelTradeIn",
                                                   "AddTradeInComment", "AssignTradeIn"}))
      << ops_may.out;
  EXPECT_EQ(Casectl("ops", "act tradeIns/NOSUCHCASE").exit_code, 3);
  Result misspelt = Casectl("ops", "act " + name + " CloseTradein");
  EXPECT_NE(misspelt.out.find("no action CloseTradein on " + name + "; one of: ContactCustomer, "), std::string::npos)
      << misspelt.out;
  EXPECT_EQ(Casectl("cs_agent", "templates create x.y /no/such/file").exit_code, 2);
  EXPECT_EQ(Casectl("cs_agent", "frobnicate").exit_code, 2);
  Result unknown_role = Casectl("cs_agent", "--role=wizard boards");
  EXPECT_EQ(unknown_role.exit_code, 5);
  EXPECT_NE(unknown_role.out.find("--principal and --role (CASEWORK_PRINCIPAL, CASEWORK_ROLE)"),
            std::string::npos)
      << unknown_role.out;

  // No server there: exit 7, and where to look.
  Result nowhere = Casectl("cs_agent", "--server=127.0.0.1:1 boards");
  EXPECT_EQ(nowhere.exit_code, 7) << nowhere.out;
  EXPECT_NE(nowhere.out.find("a server with TLS\n  needs --ca (CASEWORK_CA) or --tls"), std::string::npos)
      << nowhere.out;

  // import: progress, a per-row report, exit 4 when rows were rejected.
  const std::string accounts = testing::WriteFile(
      dir_.path() + "/accounts.jsonl",
      "{\"accountNumber\":\"100200300\",\"fullName\":\"Jan de Vries\"}\n"
      "{\"accountNumber\":\"100200301\",\"devices\":[{\"imei\":\"123\"}]}\n"
      "{\"accountNumber\":\"100200302\",\"idNumber\":\"800101\"}\n");
  Result import = Casectl("admin", "--json import accounts " + accounts);
  EXPECT_EQ(import.exit_code, 4) << import.out;
  EXPECT_NE(import.out.find("3/3 rows"), std::string::npos) << import.out;
  EXPECT_NE(import.out.find("line 2"), std::string::npos) << import.out;
  EXPECT_NE(import.out.find("line 3: not a valid entry in JSON: idNumber"), std::string::npos) << import.out;

  // templates and calendars.
  Result templates = Casectl("cs_agent", "templates list");
  EXPECT_EQ(templates.exit_code, 0);
  EXPECT_NE(templates.out.find("templates/trade_in.reminder"), std::string::npos);
  Result render = Casectl("cs_agent", "--json templates render trade_in.reminder nl v_number=V1 customer_name=Jan "
                                   "product_name=X reminders_sent=1 s_number=S1 case_id=c problem=p problem_note=n "
                                   "rejection_reason=r");
  ASSERT_EQ(render.exit_code, 0) << render.out;
  EXPECT_EQ(Json(render.out).fields().at("languageCode").string_value(), "nl");
  Result calendars = Casectl("cs_agent", "calendars get default");
  EXPECT_EQ(calendars.exit_code, 0);
  EXPECT_NE(calendars.out.find("Europe/Amsterdam"), std::string::npos);
  // An admin edits what `get` printed and saves it; the file's etag keeps
  // a second save of the same file from overwriting the first.
  const std::string read = testing::WriteFile(dir_.path() + "/default.json", calendars.out);
  Result saved = Casectl("admin", "--json calendars update default " + read);
  ASSERT_EQ(saved.exit_code, 0) << saved.out;
  EXPECT_EQ(Json(saved.out).fields().at("etag").string_value(), "2");
  Result stale = Casectl("admin", "calendars update default " + read);
  EXPECT_EQ(stale.exit_code, 6) << stale.out;
  EXPECT_NE(stale.out.find("calendars/default has changed since it was read"), std::string::npos) << stale.out;
  // The same file makes a region's calendar, once.
  Result region = Casectl("admin", "--json calendars create us-west " + read);
  ASSERT_EQ(region.exit_code, 0) << region.out;
  EXPECT_EQ(Json(region.out).fields().at("name").string_value(), "calendars/us-west");
  EXPECT_NE(Casectl("admin", "calendars list").out.find("calendars/us-west"), std::string::npos);
  Result taken_calendar = Casectl("admin", "calendars create us-west " + read);
  EXPECT_EQ(taken_calendar.exit_code, 6);
  EXPECT_NE(taken_calendar.out.find("calendars/us-west already exists"), std::string::npos) << taken_calendar.out;
  EXPECT_EQ(Casectl("cs_agent", "calendars update default " + read).exit_code, 5);
  Result dropped = Casectl("admin", "calendars delete us-west");
  EXPECT_EQ(dropped.exit_code, 0) << dropped.out;
  EXPECT_EQ(dropped.out, "deleted calendars/us-west\n");
  EXPECT_EQ(Casectl("admin", "calendars get us-west").exit_code, 3);
  EXPECT_EQ(Casectl("admin", "calendars delete default").exit_code, 6);
  // Protection plans the same way.
  const std::string plan = testing::WriteFile(
      dir_.path() + "/plan.json",
      R"({"displayName": "Basic cover", "coveredPerils": ["ACCIDENTAL_DAMAGE"], "eligibleCategories": ["PHONE"],)"
      R"( "monthlyPrice": {"currencyCode": "EUR", "minorUnits": "599"}, "reviewBusinessDays": 5})");
  Result made = Casectl("admin", "--json plans create basic " + plan);
  ASSERT_EQ(made.exit_code, 0) << made.out;
  EXPECT_EQ(Json(made.out).fields().at("name").string_value(), "protectionPlans/basic");
  Result taken = Casectl("admin", "plans create basic " + plan);
  EXPECT_EQ(taken.exit_code, 6);
  EXPECT_NE(taken.out.find("protectionPlans/basic already exists"), std::string::npos) << taken.out;
  const std::string plan_read = testing::WriteFile(dir_.path() + "/basic.json", made.out);
  EXPECT_EQ(Casectl("admin", "plans update basic " + plan_read).exit_code, 0);
  EXPECT_EQ(Casectl("admin", "plans update basic " + plan_read).exit_code, 6);
  EXPECT_EQ(Casectl("admin", "plans delete basic").exit_code, 2);  // plans are retired, not deleted
  Result plans = Casectl("cs_agent", "plans list");
  EXPECT_NE(plans.out.find("protectionPlans/basic  Basic cover   5"), std::string::npos) << plans.out;
  // Templates the same way.
  Result tmpl = Casectl("admin", "templates get trade_in.reminder");
  ASSERT_EQ(tmpl.exit_code, 0) << tmpl.out;
  const std::string tmpl_file = testing::WriteFile(dir_.path() + "/reminder.json", tmpl.out);
  EXPECT_EQ(Casectl("admin", "templates update trade_in.reminder " + tmpl_file).exit_code, 0);
  EXPECT_EQ(Casectl("admin", "templates update trade_in.reminder " + tmpl_file).exit_code, 6);
  Result reset = Casectl("admin", "--json templates reset trade_in.reminder");
  ASSERT_EQ(reset.exit_code, 0) << reset.out;
  EXPECT_EQ(Json(reset.out).fields().at("etag").string_value(), "3");
  EXPECT_EQ(Casectl("admin", "templates reset trade_in.no_such").exit_code, 3);
  const std::string macro = testing::WriteFile(
      dir_.path() + "/macro.json",
      R"json({"channel": "CHANNEL_EMAIL", "variants": [{"languageCode": "nl", "subject": "Later ({{v_number}})",)json"
      R"json( "body": "De koerier komt later."}]})json");
  ASSERT_EQ(Casectl("admin", "templates create trade_in.courier_late " + macro).exit_code, 0);
  Result removed = Casectl("admin", "templates delete trade_in.courier_late");
  EXPECT_EQ(removed.exit_code, 0) << removed.out;
  EXPECT_EQ(removed.out, "deleted templates/trade_in.courier_late\n");
  EXPECT_EQ(Casectl("admin", "templates get trade_in.courier_late").exit_code, 3);
  EXPECT_EQ(Casectl("admin", "templates delete trade_in.reminder").exit_code, 6);
  EXPECT_EQ(Casectl("team_lead", "dead-letters list").exit_code, 0);
  EXPECT_EQ(Casectl("cs_agent", "dead-letters list").exit_code, 5);
  // Backups: taken while serving, then listed.
  Result backup = Casectl("admin", "--json backups create");
  ASSERT_EQ(backup.exit_code, 0) << backup.out;
  EXPECT_EQ(Json(backup.out).fields().at("name").string_value(), "backups/1");
  Result backups = Casectl("admin", "backups list");
  EXPECT_NE(backups.out.find("backups/1"), std::string::npos) << backups.out;
  EXPECT_EQ(Casectl("ops", "backups create").exit_code, 5);

  // workflows as Graphviz; help.
  Result dot = Casectl("cs_agent", "workflows --dot");
  EXPECT_EQ(dot.exit_code, 0);
  EXPECT_NE(dot.out.find("digraph trade_in {"), std::string::npos);
  EXPECT_NE(dot.out.find("\"PROBLEM_ORDER\" -> \"WAITING_FOR_RESPONSE\" [label=\"contact_customer"),
            std::string::npos);
  // The table: an action open to every state or role says so.
  Result table = Casectl("cs_agent", "workflows");
  EXPECT_EQ(table.exit_code, 0);
  auto row = [&](const std::string& kind, const std::string& action) {
    for (const auto& line : absl::StrSplit(table.out, '\n')) {
      const std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (cells.size() >= 2 && cells[0] == kind && cells[1] == action) return cells;
    }
    return std::vector<std::string>{};
  };
  EXPECT_EQ(row("otp", "comment"), (std::vector<std::string>{"otp", "comment", "(any)", "(same)", "(anyone)"}));
  EXPECT_EQ(row("claim", "assign"),
            (std::vector<std::string>{"claim", "assign", "(open)", "(same)",
                                      "cs_agent,ops,approver,team_lead,admin"}));
  EXPECT_EQ(row("otp", "decide_escalation"),
            (std::vector<std::string>{"otp", "decide_escalation", "WITH_TEAM_LEAD", "(same)", "team_lead"}));
  Result help = Casectl("cs_agent", "help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
}

// board --watch: the tables of `board`, printed again as a change moves a
// count. Cases are created until the watcher has seen one, so whenever it
// subscribed, its second table counts one more than its first.
TEST_F(CasectlTest, BothProgramsPrintTheVersionTheServerExports) {
  const std::string version = Version();
  ASSERT_FALSE(version.empty());
  Result casectl = testing::RunCommand(absl::StrCat(CASECTL_PATH, " --version 2>&1"));
  EXPECT_EQ(casectl.exit_code, 0);
  EXPECT_EQ(casectl.out, "casectl " + version + "\n");
  Result caseworkd = testing::RunCommand(absl::StrCat(CASEWORKD_PATH, " --version 2>&1"));
  EXPECT_EQ(caseworkd.exit_code, 0);
  EXPECT_EQ(caseworkd.out, "caseworkd " + version + "\n");
  EXPECT_EQ(server_.Metric("casework_build_info{version=\"" + version + "\"}"), 1);
}

// An import call refused for a moment (here by the rate limit, five calls
// a second) is sent again after a pause: a batch may go twice, each row
// replacing its account.
TEST_F(CasectlTest, ImportSendsABatchAgainAfterAMomentaryRefusal) {
  server_.Restart([](internal::ServerConfig* c) {
    c->mutable_rate_limit()->set_requests_per_second(5);
    c->mutable_rate_limit()->set_burst(1);
  });
  std::string rows;
  for (int i = 0; i < 60; ++i) {  // three calls of 20 rows
    absl::StrAppend(&rows, "{\"accountNumber\":\"", 300000000 + i,
                    "\",\"fullName\":\"Jan\",\"billingAddress\":\"1 Main St\",\"standing\":\"GOOD\"}\n");
  }
  const std::string accounts = testing::WriteFile(dir_.path() + "/accounts.jsonl", rows);
  Result import = Casectl("admin", "import --batch=20 accounts " + accounts);
  EXPECT_EQ(import.exit_code, 0) << import.out;
  EXPECT_NE(import.out.find("60/60 rows"), std::string::npos) << import.out;
  EXPECT_NE(import.out.find("60 imported, 0 rejected"), std::string::npos) << import.out;
}

TEST_F(CasectlTest, BoardWatchPrintsTheTablesAgainAsCountsMove) {
  Result watched;
  std::atomic<bool> watching{true};
  std::thread watcher([&] {
    watched = Casectl("team_lead", "board trade-in --watch --count=1 --timeout=60");
    watching = false;
  });
  for (int i = 0; i < 100 && watching; ++i) {
    const Result created = Casectl("ops", absl::StrCat("create trade-in v_number=V", 6000000 + i, " s_number=S",
                                                       6000000 + i, " problem=DEVICE_LOCKED product_name=Pixel",
                                                       " customer.display_name=Jan customer.email=jan@example.nl"));
    ASSERT_EQ(created.exit_code, 0) << created.out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  watcher.join();
  ASSERT_EQ(watched.exit_code, 0) << watched.out;
  // Two tables, each with its SLA table; the problem orders they count.
  std::vector<int> problem_orders;
  for (absl::string_view line : absl::StrSplit(watched.out, '\n')) {
    int n = 0;
    if (absl::ConsumePrefix(&line, "trade-in   PROBLEM_ORDER ")) {
      ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n)) << line;
      problem_orders.push_back(n);
    }
  }
  ASSERT_EQ(problem_orders.size(), 2u) << watched.out;
  EXPECT_EQ(problem_orders[1], problem_orders[0] + 1) << watched.out;
  EXPECT_NE(watched.out.find("trade-in   response  0        0\n"), std::string::npos) << watched.out;
}

TEST_F(CasectlTest, ErasePrivacyRequestsAndReadTheAuditLog) {
  Result created = Casectl("ops", "--json create trade-in v_number=V4100001 s_number=S4100001 problem=DEVICE_LOCKED "
                                  "product_name=Pixel customer.display_name=Jan customer.email=jan@example.nl");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const std::string name = Json(created.out).fields().at("name").string_value();

  EXPECT_EQ(Casectl("admin", "erase").exit_code, 2);
  EXPECT_EQ(Casectl("admin", "erase mail=jan@example.nl").exit_code, 2);
  Result open = Casectl("admin", "erase email=jan@example.nl reason=PR-114");
  EXPECT_EQ(open.exit_code, 6) << open.out;  // the case is still open
  EXPECT_NE(open.out.find("CASE_OPEN " + name), std::string::npos) << open.out;
  ASSERT_EQ(Casectl("ops", "act " + name + " CancelTradeIn reason=withdrawn").exit_code, 0);

  Result dry = Casectl("admin", "--json erase email=jan@example.nl reason=PR-114 validate_only=true");
  ASSERT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_EQ(Json(dry.out).fields().at("cases").list_value().values(0).string_value(), name);
  EXPECT_NE(Casectl("ops", "show " + name).out.find("jan@example.nl"), std::string::npos);
  EXPECT_EQ(Casectl("ops", "erase email=jan@example.nl reason=PR-114").exit_code, 5);

  Result erased = Casectl("admin", "--json erase email=jan@example.nl reason=PR-114");
  ASSERT_EQ(erased.exit_code, 0) << erased.out;
  EXPECT_EQ(Json(erased.out).fields().at("cases").list_value().values(0).string_value(), name);
  EXPECT_EQ(Casectl("ops", "show " + name).out.find("jan@example.nl"), std::string::npos);

  // One record, for the erasure that was made; never the address.
  Result audit = Casectl("admin", "audit");
  ASSERT_EQ(audit.exit_code, 0) << audit.out;
  EXPECT_NE(audit.out.find("  principal=jdoe role=admin  EraseCustomerData  PR-114  cases=1 "), std::string::npos)
      << audit.out;
  EXPECT_EQ(audit.out.find("jan@"), std::string::npos) << audit.out;
  EXPECT_EQ(std::count(audit.out.begin(), audit.out.end(), '\n'), 2) << audit.out;  // the header and the record
  EXPECT_EQ(Casectl("team_lead", "audit").exit_code, 5);
}

TEST_F(CasectlTest, CreateOpensACaseOfEachProcedureFromFields) {
  // The case's own fields need no prefix; nested ones take a dot.
  const std::string trade_in =
      "create trade-in v_number=V4100001 s_number=S4100001 problem=DEVICE_LOCKED 'product_name=Galaxy S22' "
      "customer.display_name=Jan customer.email=jan@example.nl";
  Result made = Casectl("ops", "--json " + trade_in);
  ASSERT_EQ(made.exit_code, 0) << made.out;
  const auto fields = Json(made.out).fields();
  EXPECT_EQ(fields.at("vNumber").string_value(), "V4100001");
  EXPECT_EQ(fields.at("state").string_value(), "TRADE_IN_STATE_PROBLEM_ORDER");
  EXPECT_EQ(fields.at("customer").struct_value().fields().at("email").string_value(), "jan@example.nl");
  // Each create is a new case, unless it repeats a request_id.
  Result other = Casectl("ops", "--json " + trade_in);
  ASSERT_EQ(other.exit_code, 0) << other.out;
  EXPECT_NE(Json(other.out).fields().at("name").string_value(), fields.at("name").string_value());
  Result first = Casectl("ops", "--json " + trade_in + " request_id=intake-7");
  Result retry = Casectl("ops", "--json " + trade_in + " request_id=intake-7");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  ASSERT_EQ(retry.exit_code, 0) << retry.out;
  EXPECT_EQ(Json(retry.out).fields().at("name").string_value(), Json(first.out).fields().at("name").string_value());
  const std::string listed = Casectl("cs_agent", "list trade-in problem_order").out;
  const std::vector<std::string> around = absl::StrSplit(listed, "V4100001");
  EXPECT_EQ(around.size(), 4u) << listed;  // three cases

  // A field neither the request nor the case has is named, with both's,
  // leaving out what only the server sets.
  Result typo = Casectl("ops", "create trade-in v_numbr=V4100001");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.out.find("CreateTradeIn has no field v_numbr; it takes v_number, s_number, problem, problem_note, "
                          "product_name, customer, assignee, trade_in_id, request_id"),
            std::string::npos)
      << typo.out;
  // A field the server sets is refused before anything is sent.
  Result output = Casectl("ops", "create trade-in state=CLOSED v_number=V4100001");
  EXPECT_EQ(output.exit_code, 2);
  EXPECT_NE(output.out.find("state is set by the server; CreateTradeIn takes v_number, "), std::string::npos)
      << output.out;
  Result nested = Casectl("ops", "create enrollment devices.add_time=2026-01-01T00:00:00Z");
  EXPECT_EQ(nested.exit_code, 2);
  EXPECT_NE(nested.out.find("add_time is set by the server; devices takes imei, serial_number, category, model, "
                            "purchase_date (see"),
            std::string::npos)
      << nested.out;
  // The server's checks, field by field; nothing is written.
  Result bad = Casectl("ops", "create trade-in v_number=X1");
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_NE(bad.out.find("  trade_in.v_number: must be 'V'"), std::string::npos) << bad.out;
  EXPECT_EQ(Casectl("cs_agent", "create trade-in v_number=V4100002").exit_code, 5);  // ops open trade-ins
  Result which = Casectl("ops", "create");
  EXPECT_EQ(which.exit_code, 2);
  EXPECT_NE(which.out.find("PROCEDURE one of: trade-in, unlock, otp, claim, enrollment"), std::string::npos)
      << which.out;

  // The other procedures' requests are flat.
  Result unlock = Casectl("cs_agent", "create unlock phone_number=+12125550199");
  EXPECT_EQ(unlock.exit_code, 3) << unlock.out;
  EXPECT_NE(unlock.out.find("no account with that phone number"), std::string::npos) << unlock.out;
  const std::string plan = testing::WriteFile(
      dir_.path() + "/plan.json",
      R"({"displayName": "Basic cover", "coveredPerils": ["THEFT"], "eligibleCategories": ["PHONE"],)"
      R"( "monthlyPrice": {"currencyCode": "EUR", "minorUnits": "599"}, "reviewBusinessDays": 5})");
  ASSERT_EQ(Casectl("admin", "plans create basic " + plan).exit_code, 0);
  Result enrolled = Casectl(
      "cs_agent",
      "--json create enrollment plan_id=basic 'contact.full_name=Jan Jansen' contact.email=jan@example.nl "
      "contact.phone_number=+31612345678 payment_method_ref=tok_123 "
      R"('devices={"imei": "490154203237518", "category": "PHONE", "purchaseDate": "2026-01-10"}')");
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out;
  const std::string plan_number = Json(enrolled.out).fields().at("planNumber").string_value();
  Result claim = Casectl("cs_agent", "--json create claim plan_number=" + plan_number +
                                         " channel=PHONE peril=THEFT incident_date=2026-03-02 "
                                         "'description=Taken from a bag' device=490154203237518");
  ASSERT_EQ(claim.exit_code, 0) << claim.out;
  EXPECT_EQ(Json(claim.out).fields().at("state").string_value(), "CLAIM_STATE_REPORTED");
}

TEST_F(CasectlTest, DocumentsGoInFromFilesAndComeBackOut) {
  // A trade-in's proof of purchase: content from a file, with the type and
  // file name it brings.
  const std::string order = R"({"tradeIn":{"vNumber":"V4000002","sNumber":"S4000002","productName":"Galaxy S22",)"
                            R"("problem":"TRADE_IN_PROBLEM_PROOF_OF_PURCHASE",)"
                            R"("customer":{"displayName":"Jan","email":"jan@example.nl"}}})";
  Result created = Casectl("ops", "--json call TradeInService/CreateTradeIn '" + order + "'");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const std::string trade_in = Json(created.out).fields().at("name").string_value();
  const std::string pdf = "%PDF-1.4\n% a receipt\n";
  const std::string receipt = testing::WriteFile(dir_.path() + "/receipt.pdf", pdf);
  Result unreadable =
      Casectl("cs_agent", "act " + trade_in + " AttachProofOfPurchase content=@" + dir_.path() + "/none.pdf");
  EXPECT_EQ(unreadable.exit_code, 2) << unreadable.out;
  Result attached = Casectl("cs_agent", "act " + trade_in + " AttachProofOfPurchase content=@" + receipt);
  ASSERT_EQ(attached.exit_code, 0) << attached.out;
  const auto proof = Json(attached.out).fields().at("proofOfPurchase").struct_value().fields();
  EXPECT_EQ(proof.at("contentType").string_value(), "application/pdf");
  EXPECT_EQ(proof.at("fileName").string_value(), "receipt.pdf");
  EXPECT_EQ(proof.at("sizeBytes").string_value(), absl::StrCat(pdf.size()));
  Result saved = Casectl("approver", "document " + trade_in + " " + dir_.path() + "/proof.pdf");
  ASSERT_EQ(saved.exit_code, 0) << saved.out;
  EXPECT_EQ(testing::ReadFile(dir_.path() + "/proof.pdf"), pdf);

  // A claim's photo: in through act, out by its document id.
  const std::string plan = R"({"allowMissing":true,"protectionPlan":{"planId":"basic",)"
                           R"("displayName":"Basic protection","coveredPerils":["PERIL_ACCIDENTAL_DAMAGE"],)"
                           R"("eligibleCategories":["DEVICE_CATEGORY_PHONE"],"reviewBusinessDays":5,)"
                           R"("monthlyPrice":{"currencyCode":"USD","minorUnits":"999"}}})";
  ASSERT_EQ(Casectl("admin", "call ProtectionClaimService/UpdateProtectionPlan '" + plan + "'").exit_code, 0);
  const std::string enrollment = R"({"enrollment":{"planId":"basic","paymentMethodRef":"pm_1Nq8ZxLkdIwHu7ix",)"
                                 R"("contact":{"fullName":"Lena Park","email":"lena@example.com",)"
                                 R"("phoneNumber":"+14155550123"},"devices":[{"imei":"353911100000018",)"
                                 R"("category":"DEVICE_CATEGORY_PHONE","model":"Pixel 8",)"
                                 R"("purchaseDate":"2026-01-15"}]}})";
  Result enrolled = Casectl("cs_agent", "--json call ProtectionClaimService/CreateEnrollment '" + enrollment + "'");
  ASSERT_EQ(enrolled.exit_code, 0) << enrolled.out;
  server_.clock().Advance(absl::Hours(72));
  const std::string report = absl::StrCat(
      R"({"planNumber":")", Json(enrolled.out).fields().at("planNumber").string_value(),
      R"(","channel":"app","peril":"ACCIDENTAL_DAMAGE","incidentDate":"2026-03-04",)",  // short names do
      R"("description":"Screen cracked","device":"353911100000018"})");
  Result reported = Casectl("cs_agent", "--json call ProtectionClaimService/ReportClaim '" + report + "'");
  ASSERT_EQ(reported.exit_code, 0) << reported.out;
  const std::string claim = Json(reported.out).fields().at("name").string_value();
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "pixels";
  const std::string photo = testing::WriteFile(dir_.path() + "/photo.png", png);
  Result photo_attached =
      Casectl("cs_agent", "act " + claim + " AttachClaimDocument kind=photo content=@" + photo);
  ASSERT_EQ(photo_attached.exit_code, 0) << photo_attached.out;
  const auto documents = Json(photo_attached.out).fields().at("documents").list_value();
  ASSERT_EQ(documents.values_size(), 1);
  const auto& document = documents.values(0).struct_value().fields();
  EXPECT_EQ(document.at("contentType").string_value(), "image/png");
  const std::string id = document.at("documentId").string_value();
  Result photo_saved = Casectl("approver", "document " + claim + " " + id + " " + dir_.path() + "/back.png");
  ASSERT_EQ(photo_saved.exit_code, 0) << photo_saved.out;
  EXPECT_EQ(testing::ReadFile(dir_.path() + "/back.png"), png);
  EXPECT_EQ(Casectl("approver", "document " + claim + " doc-9 " + dir_.path() + "/none.png").exit_code, 3);
  EXPECT_EQ(Casectl("approver", "document " + claim + " " + dir_.path() + "/x.png").exit_code, 2);

  // The decision: a message field given field by field, its 64-bit amount
  // as digits; a yes/no field takes true or false only.
  ASSERT_EQ(Casectl("cs_agent", "act " + claim + " StartClaimReview").exit_code, 0);
  Result half = Casectl("approver", "act " + claim + " ResolveClaim resolution=RESOLUTION_REIMBURSEMENT" +
                                        " reimbursement.currency_code=USD");
  EXPECT_EQ(half.exit_code, 4) << half.out;
  EXPECT_NE(half.out.find("reimbursement.minor_units"), std::string::npos) << half.out;
  EXPECT_EQ(Casectl("approver", "act " + claim + " ResolveClaim resolution.x=1").exit_code, 2);
  // An enum value by its full name, or by the short one the server's
  // errors use; a value it does not have lists those it has.
  Result refund = Casectl("approver", "act " + claim + " ResolveClaim resolution=REFUND");
  EXPECT_EQ(refund.exit_code, 2) << refund.out;
  EXPECT_NE(refund.out.find("resolution takes one of REPAIR, REPLACEMENT, REIMBURSEMENT"), std::string::npos)
      << refund.out;
  Result resolved = Casectl("approver", "act " + claim + " ResolveClaim resolution=REIMBURSEMENT" +
                                            " reimbursement.currency_code=USD reimbursement.minor_units=45000");
  ASSERT_EQ(resolved.exit_code, 0) << resolved.out;
  const auto decided = Json(resolved.out).fields();
  EXPECT_EQ(decided.at("state").string_value(), "CLAIM_STATE_RESOLVED");
  EXPECT_EQ(decided.at("reimbursement").struct_value().fields().at("minorUnits").string_value(), "45000");
  // An action that does not exist: the ones that do, for that kind of case.
  Result unknown = Casectl("approver", "act " + claim + " Resolve");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.out;
  EXPECT_NE(unknown.out.find("one of: RequestClaimDocuments, AttachClaimDocument,"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("ResolveClaim, DenyClaim"), std::string::npos) << unknown.out;
  EXPECT_EQ(unknown.out.find("ChangePlan"), std::string::npos) << unknown.out;
  Result yes_no = Casectl("cs_agent", "act otpTickets/01ABC RecordFirstLevel tried_sms=yes");
  EXPECT_EQ(yes_no.exit_code, 2) << yes_no.out;
  EXPECT_NE(yes_no.out.find("tried_sms takes true or false"), std::string::npos) << yes_no.out;
}

TEST_F(CasectlTest, ListGoesOnFromItsCursor) {
  std::vector<std::string> names;
  for (int i = 1; i <= 3; ++i) {
    const std::string order = absl::StrCat(R"({"tradeIn":{"vNumber":"V500000)", i, R"(","sNumber":"S500000)", i,
                                           R"(","productName":"Pixel 8","problem":"TRADE_IN_PROBLEM_DEVICE_LOCKED",)",
                                           R"("customer":{"displayName":"Jan","email":"jan@example.nl"}}})");
    Result created = Casectl("ops", "--json call TradeInService/CreateTradeIn '" + order + "'");
    ASSERT_EQ(created.exit_code, 0) << created.out;
    names.push_back(Json(created.out).fields().at("name").string_value());
  }
  Result first = Casectl("cs_agent", "--count=2 list trade-in");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const std::string go_on = "more: go on with --cursor=";
  const size_t at = first.out.find(go_on);
  ASSERT_NE(at, std::string::npos) << first.out;
  const std::string cursor = first.out.substr(at + go_on.size(), first.out.find('\n', at) - at - go_on.size());
  // Headers in words, times to the second: the server's clock is at 10:00.
  EXPECT_NE(first.out.find("V NUMBER"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("UPDATE TIME"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("  2026-03-02T10:00:00Z\n"), std::string::npos) << first.out;
  // Given to someone: listed under their name, with it in the table.
  ASSERT_EQ(Casectl("team_lead", "act " + names[1] + " AssignTradeIn assignee=agent:anna").exit_code, 0);
  Result mine = Casectl("cs_agent", "list trade-in --assignee=agent:anna");
  ASSERT_EQ(mine.exit_code, 0) << mine.out;
  EXPECT_NE(mine.out.find(names[1]), std::string::npos) << mine.out;
  EXPECT_NE(mine.out.find("agent:anna"), std::string::npos) << mine.out;
  EXPECT_EQ(mine.out.find(names[0]), std::string::npos) << mine.out;
  EXPECT_EQ(Casectl("cs_agent", "list trade-in closed --assignee=agent:anna").exit_code, 2);
  Result rest = Casectl("cs_agent", "--count=2 --cursor=" + cursor + " list trade-in");
  ASSERT_EQ(rest.exit_code, 0) << rest.out;
  EXPECT_EQ(rest.out.find(go_on), std::string::npos) << rest.out;
  // Every case once, over the two pages.
  for (const auto& n : names) {
    const bool on_first = first.out.find(n) != std::string::npos;
    const bool on_rest = rest.out.find(n) != std::string::npos;
    EXPECT_NE(on_first, on_rest) << n << "\n" << first.out << rest.out;
  }
}

// What goes wrong names what it is about: the open case that stops an
// erasure, the template of a message that could not be delivered.
TEST_F(CasectlTest, RefusalsNameTheirCaseAndDeadLettersTheirTemplate) {
  // A spool "folder" that is a file: every delivery fails, and one attempt
  // is all a message gets.
  const std::string blocked = dir_.path() + "/blocked";
  testing::WriteFile(blocked, "not a folder");
  server_.Restart([&](internal::ServerConfig* c) {
    c->mutable_notifier()->set_spool_dir(blocked);
    c->mutable_notifier()->set_max_attempts(1);
  });
  Result created = Casectl("ops", R"(--json call TradeInService/CreateTradeIn '{"tradeIn":{"vNumber":"V6000001",)"
                                  R"("sNumber":"S6000001","productName":"Pixel 8","problem":"TRADE_IN_PROBLEM_DEVICE_LOCKED",)"
                                  R"("customer":{"displayName":"Jan","email":"jan@example.nl"}}}')");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const std::string name = Json(created.out).fields().at("name").string_value();

  Result erase = Casectl("admin", R"(call AdminService/EraseCustomerData '{"email":"jan@example.nl","reason":"PR-1"}')");
  EXPECT_EQ(erase.exit_code, 6) << erase.out;
  EXPECT_NE(erase.out.find("the customer has an open case; close or cancel it first"), std::string::npos)
      << erase.out;
  EXPECT_NE(erase.out.find("  CASE_OPEN " + name + ": in state PROBLEM_ORDER"), std::string::npos) << erase.out;

  ASSERT_EQ(Casectl("cs_agent", "act " + name + " ContactCustomer").exit_code, 0);
  server_.Pump();
  Result dead = Casectl("team_lead", "dead-letters list");
  ASSERT_EQ(dead.exit_code, 0) << dead.out;
  EXPECT_NE(dead.out.find("TEMPLATE ID"), std::string::npos) << dead.out;
  EXPECT_NE(dead.out.find("  trade_in.contact.device_locked  CHANNEL_EMAIL"), std::string::npos) << dead.out;
}

}  // namespace
}  // namespace casework
