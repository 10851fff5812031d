// WriteBatch: a group of puts and erases that Database::write applies as one
// atomic transaction (last write to a key wins).
//
// Thread-safety: a plain value; not synchronized.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace corobtree {

class WriteBatch {
 public:
  struct Op {
    bool erase;
    std::string key;
    std::string value;
  };
  void put(std::string_view key, std::string_view value) {
    ops_.push_back(Op{false, std::string(key), std::string(value)});
  }
  void erase(std::string_view key) { ops_.push_back(Op{true, std::string(key), {}}); }
  void clear() noexcept { ops_.clear(); }
  std::size_t size() const noexcept { return ops_.size(); }
  bool empty() const noexcept { return ops_.empty(); }
  const std::vector<Op>& ops() const noexcept { return ops_; }

 private:
  std::vector<Op> ops_;
};

}  // namespace corobtree
