// caseworkd assembled: storage, engine, workflows, notifier, timer loop,
// metrics and the gRPC services. main.cc and the in-process tests use it.
#ifndef CASEWORK_SERVER_SERVER_H_
#define CASEWORK_SERVER_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "casework/internal/config.pb.h"
#include "server/common/clock.h"
#include "server/engine/engine.h"
#include "server/notify/dispatcher.h"
#include "server/timers/timer_loop.h"

namespace casework {

struct ServerOptions {
  // Already finalized (see config.h).
  internal::ServerConfig config;
  // Null: the real clock. Tests pass a SimulatedClock.
  const Clock* clock = nullptr;
  // Run the timer loop and the outbox dispatcher on background threads.
  // Tests turn this off and call timers().RunOnce() / dispatcher().RunOnce().
  bool background = true;
  // The benchmark loader's store mode (see storage::RocksDbOptions): writes
  // are not logged or synced until the server shuts down. Never for serving.
  bool bulk_load = false;
};

class Server {
 public:
  // Opens the store and starts serving. FAILED_PRECONDITION if the data
  // folder is in use; UNAVAILABLE if a port cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();  // Shutdown() if still running

  int port() const;          // the gRPC port actually bound
  int metrics_port() const;  // 0 when metrics are off

  engine::Engine& engine();
  timers::TimerLoop& timers();
  notify::Dispatcher& dispatcher();
  metrics::Metrics& metrics();
  // The store itself, for tools that work below the engine (caseload).
  storage::Repository& repository();

  // Stops accepting calls, lets in-flight calls finish (at most `grace`),
  // stops the loops and closes the store. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));

  struct State;

 private:
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace casework

#endif  // CASEWORK_SERVER_SERVER_H_
