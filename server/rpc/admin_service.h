#ifndef CASEWORK_SERVER_RPC_ADMIN_SERVICE_H_
#define CASEWORK_SERVER_RPC_ADMIN_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "casework/v1/admin.grpc.pb.h"
#include "server/common/clock.h"
#include "server/directory/account_directory.h"
#include "server/directory/profile_directory.h"
#include "server/engine/engine.h"
#include "server/notify/templates.h"
#include "server/sla/calendar_store.h"
#include "server/rpc/rpc_util.h"

namespace casework::rpc {

// Where CreateBackup copies the store, and how many backups stay.
struct BackupPolicy {
  std::string folder;
  int keep = 7;
};

// Sets the backup figures from the backup folder's backups (oldest first):
// the newest good backup's time and how many are damaged. Returns the
// damaged ones' names.
std::vector<std::string> ObserveBackups(const std::vector<storage::BackupInfo>& backups,
                                        metrics::Metrics* metrics);

// `spool_dir`: the spool notifier's folder, whose copies an erase removes.
std::unique_ptr<v1::AdminService::CallbackService> NewAdminService(
    notify::TemplateStore* templates, sla::CalendarStore* calendars, engine::Engine* engine,
    directory::StoredAccountDirectory* accounts, directory::StoredProfileDirectory* profiles,
    storage::Repository* repo, const Clock* clock, std::string spool_dir, BackupPolicy backups,
    RpcEnv env);

}  // namespace casework::rpc

#endif  // CASEWORK_SERVER_RPC_ADMIN_SERVICE_H_
