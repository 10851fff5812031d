// The public Database and Cursor: handles that forward to DatabaseImpl and
// TreeCursor. Calls hand back the engine's own tasks (no extra coroutine frame).
#include <corobtree/database.h>

#include "engine/btree/tree_cursor.h"
#include "engine/db/database_impl.h"

namespace corobtree {

Database::Database(std::unique_ptr<DatabaseImpl> impl) noexcept : impl_(std::move(impl)) {}
Database::~Database() = default;

Task<std::unique_ptr<Database>> Database::open(std::string path, Options options) {
  std::unique_ptr<DatabaseImpl> impl =
      co_await DatabaseImpl::open(std::move(path), std::move(options));
  co_return std::unique_ptr<Database>(new Database(std::move(impl)));
}

Task<std::optional<std::string>> Database::get(std::string_view key) { return impl_->get(key); }
Task<void> Database::put(std::string_view key, std::string_view value) {
  return impl_->put(key, value);
}
Task<bool> Database::erase(std::string_view key) { return impl_->erase(key); }
Task<void> Database::write(const WriteBatch& batch) { return impl_->write(batch); }
Task<void> Database::bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted) {
  return impl_->bulk_load(sorted);
}
Cursor Database::cursor(ScanOptions options) { return Cursor(impl_->cursor(std::move(options))); }
Task<std::vector<std::pair<std::string, std::string>>> Database::scan(ScanOptions options,
                                                                      std::size_t limit) {
  return impl_->scan(std::move(options), limit);
}
Task<ValidationReport> Database::validate() { return impl_->validate(); }
Task<void> Database::checkpoint() { return impl_->checkpoint(); }
Task<void> Database::compact() { return impl_->compact(); }
Task<void> Database::close() { return impl_->close(); }
Task<void> Database::backup(std::string dest) { return impl_->backup(std::move(dest)); }
DatabaseStats Database::stats() const { return impl_->stats(); }
std::uint64_t Database::count() const noexcept { return impl_->count(); }
std::uint32_t Database::max_key_size() const noexcept { return impl_->max_key_size(); }
const std::string& Database::path() const noexcept { return impl_->path(); }

Cursor::Cursor(std::unique_ptr<TreeCursor> impl) noexcept : impl_(std::move(impl)) {}
Cursor::Cursor(Cursor&&) noexcept = default;
Cursor& Cursor::operator=(Cursor&&) noexcept = default;
Cursor::~Cursor() = default;
Task<bool> Cursor::first() { return impl_->first(); }
Task<bool> Cursor::seek(std::string_view key) { return impl_->seek(key); }
Task<bool> Cursor::next() { return impl_->next(); }
Task<bool> Cursor::prev() { return impl_->prev(); }
bool Cursor::valid() const noexcept { return impl_->valid(); }
std::string_view Cursor::key() const noexcept { return impl_->key(); }
std::string_view Cursor::value() const noexcept { return impl_->value(); }

}  // namespace corobtree
