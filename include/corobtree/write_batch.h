// WriteBatch: a group of puts and erases that Database::write applies as one
// atomic transaction (last write to a key wins).
//
// A batch keeps its operations already encoded as the write-ahead log stores
// them (docs/file-format.md, "The write-ahead log"), so a commit logs it as it
// is; Database::put and Database::erase are one-operation batches.
//
// Thread-safety: a plain value; not synchronized.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/export.h>

namespace corobtree {

class WriteBatchInternal;

class COROBTREE_EXPORT WriteBatch {
 public:
  // One operation, decoded (see ops()).
  struct Op {
    bool erase;
    std::string key;
    std::string value;
  };

  WriteBatch() = default;
  WriteBatch(const WriteBatch&) = default;
  WriteBatch& operator=(const WriteBatch&) = default;
  // The moved-from batch is empty.
  WriteBatch(WriteBatch&& o) noexcept
      : rep_(std::move(o.rep_)), count_(std::exchange(o.count_, 0)) {
    o.rep_.clear();
  }
  WriteBatch& operator=(WriteBatch&& o) noexcept {
    if (this != &o) {
      rep_ = std::move(o.rep_);
      count_ = std::exchange(o.count_, 0);
      o.rep_.clear();
    }
    return *this;
  }
  ~WriteBatch() = default;

  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  void clear() noexcept {
    rep_.clear();
    count_ = 0;
  }
  // How many operations the batch holds.
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // A decoded copy of the operations, in order (for tests and tools).
  std::vector<Op> ops() const;

 private:
  friend class WriteBatchInternal;
  std::string rep_;  // the encoded operations
  std::size_t count_ = 0;
};

}  // namespace corobtree
