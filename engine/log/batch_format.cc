#include "engine/log/batch_format.h"

#include <cstring>
#include <limits>

#include <corobtree/error.h>

namespace corobtree {

void append_op(std::string& rep, OpKind kind, std::string_view key, std::string_view value) {
  if (key.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw Error(ErrorCode::kInvalidArgument,
                "a key of " + std::to_string(key.size()) + " bytes is too long to log");
  }
  const std::size_t at = rep.size();
  rep.resize(at + OpLayout::kSize + key.size() + value.size());
  auto* p = reinterpret_cast<std::byte*>(rep.data() + at);
  OpLayout::Kind::set(p, static_cast<std::uint8_t>(kind));
  OpLayout::KeyLength::set(p, static_cast<std::uint32_t>(key.size()));
  OpLayout::ValueLength::set(p, value.size());
  if (!key.empty()) std::memcpy(p + OpLayout::kSize, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + OpLayout::kSize + key.size(), value.data(), value.size());
}

void BatchReader::damaged(const char* what) const {
  throw Error(ErrorCode::kCorruption,
              std::string(source_) + " holds a damaged operation at byte " + std::to_string(at_) +
                  " of " + std::to_string(bytes_.size()) + ": " + what,
              0, std::string(path_));
}

bool BatchReader::next(BatchOp& op) {
  if (at_ == bytes_.size()) return false;
  const std::size_t left = bytes_.size() - at_;
  if (left < OpLayout::kSize) damaged("the operation's header is cut short");
  const std::byte* p = bytes_.data() + at_;
  const auto kind = OpLayout::Kind::get(p);
  const std::uint64_t key_len = OpLayout::KeyLength::get(p);
  const std::uint64_t value_len = OpLayout::ValueLength::get(p);
  if (kind != static_cast<std::uint8_t>(OpKind::kPut) &&
      kind != static_cast<std::uint8_t>(OpKind::kErase)) {
    damaged("unknown operation kind");
  }
  // Each length is compared with what remains, so no sum can overflow.
  const std::size_t body = left - OpLayout::kSize;
  if (key_len > body) damaged("the key runs past the end");
  if (value_len > body - key_len) damaged("the value runs past the end");
  if (kind == static_cast<std::uint8_t>(OpKind::kErase) && value_len != 0) {
    damaged("an erase carries a value");
  }
  const auto* chars = reinterpret_cast<const char*>(p + OpLayout::kSize);
  op.kind = static_cast<OpKind>(kind);
  op.key = std::string_view(chars, static_cast<std::size_t>(key_len));
  op.value = std::string_view(chars + key_len, static_cast<std::size_t>(value_len));
  at_ += OpLayout::kSize + static_cast<std::size_t>(key_len) + static_cast<std::size_t>(value_len);
  return true;
}

std::size_t count_ops(std::span<const std::byte> bytes, std::string_view source,
                      std::string_view path) {
  BatchReader reader(bytes, source, path);
  BatchOp op;
  std::size_t n = 0;
  while (reader.next(op)) ++n;
  return n;
}

}  // namespace corobtree
