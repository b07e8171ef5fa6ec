// Reads the trade-in board through the installed client library.
#include <cstdio>

#include "casework/client.h"
#include "casework/v1/trade_in.grpc.pb.h"

int main(int argc, char** argv) {
  casework::client::Options options;
  options.target = argc > 1 ? argv[1] : "127.0.0.1:7400";
  options.principal = "consumer";
  options.role = "cs_agent";
  casework::client::Client client(options);
  auto stub = casework::v1::TradeInService::NewStub(client.channel());
  casework::v1::TradeInBoard board;
  grpc::Status s = client.Call(
      [&](grpc::ClientContext* ctx) { return stub->GetTradeInBoard(ctx, {}, &board); },
      casework::client::Retry::kSafe);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.error_message().c_str());
    return 1;
  }
  std::printf("%d columns\n", board.columns_size());
  return 0;
}
