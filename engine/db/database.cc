// The public Database and Cursor: handles that forward to the DatabaseHost,
// which runs each call on the engine thread (or, for cached reads, on the
// calling thread without a lock) and resumes the caller on its own thread.
#include <corobtree/database.h>

#include "engine/btree/tree_cursor.h"
#include "engine/db/database_host.h"
#include "engine/db/database_impl.h"
#include "engine/pager/view_pins.h"

namespace corobtree {

Database::Database(std::unique_ptr<DatabaseHost> host) noexcept : host_(std::move(host)) {}
Database::~Database() = default;

Task<std::unique_ptr<Database>> Database::open(std::string path, Options options) {
  std::unique_ptr<DatabaseHost> host =
      co_await DatabaseHost::open(std::move(path), std::move(options));
  co_return std::unique_ptr<Database>(new Database(std::move(host)));
}

Task<std::optional<std::string>> Database::get(std::string_view key) { return host_->get(key); }
bool Database::try_get_cached(std::string_view key, std::string& value, bool& found) {
  return host_->try_get_cached(key, value, found);
}
bool Database::try_get_pinned(std::string_view key, PinnedValue& value, bool& found) {
  return host_->try_get_pinned(key, value, found);
}
Task<bool> Database::get_pinned(std::string_view key, PinnedValue& value) {
  bool found = false;
  if (host_->try_get_pinned(key, value, found)) co_return found;
  Task<std::optional<std::string>> on_engine = host_->get(key);
  std::optional<std::string> v = co_await std::move(on_engine);
  if (!v) {
    value.reset();
    co_return false;
  }
  detail::PinAccess::set_copy(value, std::move(*v));
  co_return true;
}
bool Database::enter_get_cached(detail::InFlight& call, std::string_view key, std::string& value,
                                bool& found) {
  return host_->enter_get_cached(call, key, value, found);
}
Task<bool> Database::get_from_engine(detail::InFlight call, std::string_view key,
                                     std::string& value) {
  return host_->get_from_engine(std::move(call), key, value);
}
Task<void> Database::put(std::string_view key, std::string_view value) {
  return host_->run_commit(&host_->impl(), &DatabaseImpl::put, key, value);
}
Task<bool> Database::erase(std::string_view key) {
  return host_->run_commit(&host_->impl(), &DatabaseImpl::erase, key);
}
Task<void> Database::write(const WriteBatch& batch) {
  return host_->run_commit(&host_->impl(), &DatabaseImpl::write, std::cref(batch));
}
Task<void> Database::bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted) {
  return host_->run(&host_->impl(), &DatabaseImpl::bulk_load, std::cref(sorted));
}
Cursor Database::cursor(ScanOptions options) {
  return Cursor(host_->impl().cursor(std::move(options)), host_.get());
}
Task<std::vector<std::pair<std::string, std::string>>> Database::scan(ScanOptions options,
                                                                      std::size_t limit) {
  return host_->scan(std::move(options), limit);
}
bool Database::try_scan_cached(const ScanOptions& options, std::size_t limit,
                               std::vector<std::pair<std::string, std::string>>& out) {
  return host_->try_scan_cached(options, limit, out);
}
Task<ValidationReport> Database::validate() {
  return host_->run(&host_->impl(), &DatabaseImpl::validate);
}
Task<void> Database::checkpoint() { return host_->run(&host_->impl(), &DatabaseImpl::checkpoint); }
Task<void> Database::compact() { return host_->run(&host_->impl(), &DatabaseImpl::compact); }
Task<void> Database::close() { return host_->run(&host_->impl(), &DatabaseImpl::close); }
Task<void> Database::backup(std::string dest) {
  return host_->run(&host_->impl(), &DatabaseImpl::backup, std::move(dest));
}
DatabaseStats Database::stats() const { return host_->stats(); }
std::uint64_t Database::count() const noexcept { return host_->count(); }
std::uint32_t Database::max_key_size() const noexcept { return host_->max_key_size(); }
const std::string& Database::path() const noexcept { return host_->path(); }

Cursor::Cursor(std::unique_ptr<TreeCursor> impl, DatabaseHost* host) noexcept
    : impl_(std::move(impl)), window_(&impl_->window()), host_(host) {}
Cursor::Cursor(Cursor&&) noexcept = default;
Cursor& Cursor::operator=(Cursor&&) noexcept = default;
Cursor::~Cursor() = default;

namespace {
DatabaseImpl::CursorStep engine_step(int step) noexcept {
  return static_cast<DatabaseImpl::CursorStep>(step);
}
}  // namespace
static_assert(static_cast<int>(DatabaseImpl::CursorStep::kFirst) == 0 &&
              static_cast<int>(DatabaseImpl::CursorStep::kSeek) == 1 &&
              static_cast<int>(DatabaseImpl::CursorStep::kNext) == 2 &&
              static_cast<int>(DatabaseImpl::CursorStep::kPrev) == 3);
detail::InFlight Cursor::enter() { return detail::InFlight(*host_); }
bool Cursor::try_cached(const detail::InFlight& call, Step step, std::string_view key,
                        bool& moved) {
  return host_->try_cursor_step(call, impl_.get(), engine_step(static_cast<int>(step)), key, moved);
}
Task<bool> Cursor::on_engine(detail::InFlight call, Step step, std::string_view key) {
  return host_->cursor_step_on_engine(std::move(call), impl_.get(),
                                      engine_step(static_cast<int>(step)), key);
}

}  // namespace corobtree
