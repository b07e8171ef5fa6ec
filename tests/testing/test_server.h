// A real caseworkd for end-to-end tests: in-process, gRPC on 127.0.0.1
// port 0, RocksDB and the spool notifier in a temporary folder, a simulated
// clock, and background loops off (Pump() runs them).
#ifndef CASEWORK_TESTS_TESTING_TEST_SERVER_H_
#define CASEWORK_TESTS_TESTING_TEST_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "casework/internal/records.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace casework::testing {

class TestServer {
 public:
  explicit TestServer(absl::Time start);
  ~TestServer();

  // `configure` may change the configuration before Finalize().
  void Start(std::function<void(internal::ServerConfig*)> configure = nullptr);
  void Restart(std::function<void(internal::ServerConfig*)> configure = nullptr);
  void Shutdown();

  // Fires due timers and delivers the outbox, as the background loops would.
  void Pump();

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  Server& server() { return *server_; }
  SimulatedClock& clock() { return clock_; }
  const std::string& data_dir() const { return data_dir_; }

  // A context carrying the caller's metadata and a 10 s deadline.
  static std::unique_ptr<grpc::ClientContext> As(const std::string& role);

  // Messages the spool notifier received, oldest first; or those of one
  // template.
  std::vector<internal::OutboxMessage> Spool() const;
  std::vector<internal::OutboxMessage> SpoolFor(const std::string& template_id) const;

  // The value of one series of the server's metrics, e.g.
  // `casework_notifications_total{channel="email",result="delivered"}`
  // (labels in the order they are exported); 0 when absent.
  double Metric(const std::string& series);

  // The trade-in board as ops sees it: cases in each state, by state name.
  std::map<std::string, int64_t> TradeInBoard();

 private:
  TempDir dir_;
  std::string data_dir_;
  SimulatedClock clock_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::function<void(internal::ServerConfig*)> configure_;
};

// A plaintext channel to a caseworkd started as a child process, once its
// health check answers SERVING (at most `timeout`); null otherwise. The
// channel has its own connections, so a restarted server is not mistaken
// for the one before it.
// Gives up early once `alive` (when given) returns false.
std::shared_ptr<grpc::Channel> ConnectToChild(int port, absl::Duration timeout = absl::Seconds(30),
                                              std::function<bool()> alive = nullptr);

// Calls any unary RPC ("/casework.v1.TradeInService/GetTradeIn") with a
// serialized request, through the generic stub.
grpc::Status CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& request, grpc::ClientContext* ctx);

// The fields named by the google.rpc.BadRequest in the status.
std::vector<std::string> ViolatedFields(const grpc::Status& status);

// True if the status carries a google.rpc.BadRequest naming `field`.
bool NamesField(const grpc::Status& status, const std::string& field);

// The reason of the google.rpc.ErrorInfo in the status; empty when none.
std::string ErrorReason(const grpc::Status& status);

// The google.rpc.PreconditionFailure violation types in the status.
std::vector<std::string> PreconditionTypes(const grpc::Status& status);

// Gives every field the .proto marks OUTPUT_ONLY, in `m` and in the
// messages already set in it, a value no server would choose.
void FillOutputOnly(google::protobuf::Message* m);

// The OUTPUT_ONLY fields (dotted paths) of `request` whose value `answer`
// repeats: after FillOutputOnly, those a server took from the request.
std::vector<std::string> OutputOnlyTaken(const google::protobuf::Message& request,
                                         const google::protobuf::Message& answer);

}  // namespace casework::testing

#endif  // CASEWORK_TESTS_TESTING_TEST_SERVER_H_
