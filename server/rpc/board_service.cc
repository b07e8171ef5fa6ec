#include "server/rpc/board_service.h"

#include <deque>
#include <mutex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/errors.h"
#include "server/common/happens_before.h"
#include "server/common/proto_time.h"
#include "server/rpc/case_queries.h"

namespace casework::rpc {
namespace {

constexpr char kService[] = "casework.v1.BoardService";
// Updates waiting for a slow reader before it is sent a snapshot instead.
constexpr size_t kMaxPending = 10000;

class WatchReactor : public grpc::ServerWriteReactor<v1::BoardUpdate> {
 public:
  WatchReactor(engine::Engine* engine, engine::ChangeFeed* feed, const RpcEnv& env,
               grpc::CallbackServerContext* ctx, const v1::WatchBoardsRequest& req)
      : engine_(engine), feed_(feed), env_(env) {
    env_.metrics->RpcStarted(kService, "WatchBoards");
    absl::Status s = Accept(ctx, req);
    if (!s.ok()) {
      env_.metrics->RpcHandled(kService, "WatchBoards", CodeName(s.code()), absl::ZeroDuration());
      std::lock_guard<std::mutex> lock(mu_);
      FinishOnce(ToGrpcStatus(s));
      return;
    }
    subscription_ = feed_->Subscribe([this] { Pump(); });
    HappensBefore(this);
    Pump();
  }

  // gRPC runs the callbacks on its own threads; HappensAfter pairs with the
  // HappensBefore ahead of every call into it (see happens_before.h).
  void OnWriteDone(bool ok) override {
    HappensAfter(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok || finish_after_write_) {
        FinishOnce(ok ? grpc::Status::CANCELLED : grpc::Status::OK);
        return;
      }
      pending_.pop_front();
    }
    Pump();
  }

  void OnCancel() override {
    HappensAfter(this);
    std::lock_guard<std::mutex> lock(mu_);
    FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    HappensAfter(this);
    if (subscription_ != 0) feed_->Unsubscribe(subscription_);
    // The server frees the feed once gRPC reports every call done, which
    // is after this returns (see Server::Shutdown).
    HappensBefore(feed_);
    delete this;
  }

 private:
  absl::Status Accept(grpc::CallbackServerContext* ctx, const v1::WatchBoardsRequest& req) {
    if (auto caller = rpc::Admit(env_, *ctx, kService, "WatchBoards"); !caller.ok()) {
      return caller.status();
    }
    std::set<std::string> known;
    for (const auto* wf : engine_->workflows()) known.insert(wf->spec().kind);
    for (int i = 0; i < req.procedures_size(); ++i) {
      if (!known.count(req.procedures(i))) {
        return InvalidField(absl::StrCat("procedures[", i, "]"),
                            "must be one of trade_in, unlock, otp, enrollment, claim");
      }
      kinds_.insert(req.procedures(i));
    }
    if (kinds_.empty()) kinds_ = known;
    // A cursor of this run that the feed still holds resumes the stream;
    // anything else starts with a snapshot.
    std::vector<std::string> parts = absl::StrSplit(req.cursor(), ':');
    uint64_t seq = 0;
    if (!req.cursor().empty() &&
        (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &seq))) {
      return InvalidField("cursor", "is not a cursor this server issued");
    }
    if (parts.size() == 2 && parts[0] == feed_->epoch() && feed_->Since(seq).has_value()) {
      next_ = seq;
    } else {
      need_snapshot_ = true;
    }
    return absl::OkStatus();
  }

  std::string Cursor(uint64_t seq) const { return absl::StrCat(feed_->epoch(), ":", seq); }

  // Queues what is new and starts the next write if none is running.
  void Pump() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    for (;;) {
      if (need_snapshot_) {
        need_snapshot_ = false;
        QueueSnapshot();
      }
      auto changes = feed_->Since(next_);
      if (!changes.has_value() || pending_.size() > kMaxPending) {
        // Fell behind: drop what waits (not the write in flight) and start
        // over from a snapshot.
        while (pending_.size() > (writing_ ? 1 : 0)) pending_.pop_back();
        need_snapshot_ = true;
        continue;
      }
      for (const auto& c : *changes) QueueChange(c);
      break;
    }
    if (!writing_ && !pending_.empty()) {
      writing_ = true;
      HappensBefore(this);
      StartWrite(&pending_.front());
    }
  }

  void QueueSnapshot() {
    // The boards as of the feed's last change; the changes after it are
    // streamed next.
    v1::BoardUpdate u;
    for (const auto& board : feed_->Boards(kinds_, &next_)) {
      auto* b = u.mutable_snapshot()->add_boards();
      b->set_procedure(board.kind);
      FillBoard(board, b->mutable_columns(), b->mutable_slas());
    }
    u.set_cursor(Cursor(next_));
    pending_.push_back(std::move(u));
  }

  void QueueChange(const engine::CaseChange& c) {
    next_ = c.sequence;
    if (!kinds_.count(c.kind)) return;
    v1::BoardUpdate u;
    auto* change = u.mutable_change();
    change->set_procedure(c.kind);
    change->set_name(engine_->ResourceName(c.kind, c.case_id));
    change->set_previous_state(c.previous_state);
    change->set_state(c.state);
    change->set_etag(absl::StrCat(c.version));
    *change->mutable_change_time() = ToProto(c.time);
    change->set_assignee(c.assignee);
    for (const auto& a : c.sla_changes) {
      auto* sla = change->add_sla_changes();
      sla->set_sla(a.sla);
      sla->set_at_risk(static_cast<int32_t>(a.at_risk));
      sla->set_breached(static_cast<int32_t>(a.breached));
    }
    u.set_cursor(Cursor(c.sequence));
    pending_.push_back(std::move(u));
  }

  // REQUIRES: mu_ held. Finishes now, or after the write in flight.
  void FinishOnce(const grpc::Status& s) {
    if (finished_) return;
    if (writing_) {
      finish_after_write_ = true;
      return;
    }
    finished_ = true;
    HappensBefore(this);
    Finish(s);
  }

  engine::Engine* engine_;
  engine::ChangeFeed* feed_;
  RpcEnv env_;
  int subscription_ = 0;
  std::set<std::string> kinds_;
  std::mutex mu_;
  std::deque<v1::BoardUpdate> pending_;  // front is being written
  uint64_t next_ = 0;                    // last sequence queued
  bool need_snapshot_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_after_write_ = false;
};

class BoardService final : public v1::BoardService::CallbackService {
 public:
  BoardService(engine::Engine* engine, engine::ChangeFeed* feed, RpcEnv env)
      : engine_(engine), feed_(feed), env_(env) {}

  grpc::ServerWriteReactor<v1::BoardUpdate>* WatchBoards(grpc::CallbackServerContext* ctx,
                                                        const v1::WatchBoardsRequest* req) override {
    return new WatchReactor(engine_, feed_, env_, ctx, *req);
  }

 private:
  engine::Engine* engine_;
  engine::ChangeFeed* feed_;
  RpcEnv env_;
};

}  // namespace

std::unique_ptr<v1::BoardService::CallbackService> NewBoardService(engine::Engine* engine,
                                                                   engine::ChangeFeed* feed,
                                                                   const RpcEnv& env) {
  return std::make_unique<BoardService>(engine, feed, env);
}

}  // namespace casework::rpc
