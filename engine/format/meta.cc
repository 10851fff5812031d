#include "engine/format/meta.h"

#include <cstring>

#include "engine/format/page_format.h"

namespace corobtree {

using page::load;
using page::store;

void encode_meta(const Meta& m, BlockId id, std::span<std::byte> p) {
  std::memset(p.data(), 0, p.size());
  std::byte* d = p.data();
  store<std::uint8_t>(d, 4, static_cast<std::uint8_t>(PageType::kMeta));
  store<std::uint64_t>(d, 8, kMagic);
  store<std::uint32_t>(d, 16, kFormatVersion);
  store<std::uint32_t>(d, 20, m.page_size);
  store<std::uint64_t>(d, 24, m.sequence);
  store<std::uint64_t>(d, 32, m.root);
  store<std::uint32_t>(d, 40, m.height);
  store<std::uint32_t>(d, 44, m.minimum_degree);
  store<std::uint64_t>(d, 48, m.key_count);
  store<std::uint64_t>(d, 56, m.free_head);
  store<std::uint64_t>(d, 64, m.free_pages);
  store<std::uint64_t>(d, 72, m.page_count);
  store<std::uint64_t>(d, 80, m.checkpoint_lsn);
  store<std::uint64_t>(d, 88, m.database_id);
  page::stamp_checksum(id, p);
}

DecodedMeta decode_meta(BlockId id, std::span<const std::byte> p) {
  DecodedMeta out{MetaStatus::kValid, {}, 0};
  const std::byte* d = p.data();
  if (load<std::uint64_t>(d, 8) != kMagic) {
    out.status = MetaStatus::kBadMagic;
    return out;
  }
  if (load<std::uint32_t>(d, 0) != page::checksum(id, p)) {
    out.status = MetaStatus::kBadChecksum;
    return out;
  }
  out.version = load<std::uint32_t>(d, 16);
  if (out.version != kFormatVersion) {
    out.status = MetaStatus::kBadVersion;
    return out;
  }
  Meta& m = out.meta;
  m.page_size = load<std::uint32_t>(d, 20);
  m.sequence = load<std::uint64_t>(d, 24);
  m.root = load<std::uint64_t>(d, 32);
  m.height = load<std::uint32_t>(d, 40);
  m.minimum_degree = load<std::uint32_t>(d, 44);
  m.key_count = load<std::uint64_t>(d, 48);
  m.free_head = load<std::uint64_t>(d, 56);
  m.free_pages = load<std::uint64_t>(d, 64);
  m.page_count = load<std::uint64_t>(d, 72);
  m.checkpoint_lsn = load<std::uint64_t>(d, 80);
  m.database_id = load<std::uint64_t>(d, 88);
  if (m.page_size != p.size() || m.root < 2 || m.root >= m.page_count || m.height == 0 ||
      m.height > 64 || (m.free_head != kInvalidBlockId && m.free_head >= m.page_count)) {
    out.status = MetaStatus::kBadFields;
  }
  return out;
}

}  // namespace corobtree
