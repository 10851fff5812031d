#include "engine/format/meta.h"

#include <cstring>
#include <random>

#include "engine/format/page_format.h"

namespace corobtree {

using L = MetaLayout;

std::uint64_t new_database_id() {
  std::random_device rd;
  const std::uint64_t id = (std::uint64_t{rd()} << 32) ^ rd();
  return id == 0 ? 1 : id;
}

void encode_meta(const Meta& m, BlockId id, std::span<std::byte> p) {
  std::memset(p.data(), 0, p.size());
  std::byte* d = p.data();
  const TreeState& t = m.state.tree;
  L::Type::set(d, static_cast<std::uint8_t>(PageType::kMeta));
  L::Magic::set(d, kMagic);
  L::Version::set(d, kFormatVersion);
  L::PageSize::set(d, m.page_size);
  L::Sequence::set(d, m.sequence);
  L::Root::set(d, t.root);
  L::Height::set(d, t.height);
  L::MinimumDegree::set(d, t.minimum_degree);
  L::KeyCount::set(d, t.key_count);
  L::FreeHead::set(d, t.free_head);
  L::FreePages::set(d, t.free_pages);
  L::PageCount::set(d, m.state.page_count);
  L::CheckpointLsn::set(d, m.checkpoint_lsn);
  L::DatabaseId::set(d, m.database_id);
  page::stamp_checksum(id, p);
}

DecodedMeta decode_meta(BlockId id, std::span<const std::byte> p) {
  DecodedMeta out{MetaStatus::kValid, {}, 0};
  const std::byte* d = p.data();
  if (L::Magic::get(d) != kMagic) {
    out.status = MetaStatus::kBadMagic;
    return out;
  }
  if (L::Crc::get(d) != page::checksum(id, p)) {
    out.status = MetaStatus::kBadChecksum;
    return out;
  }
  out.version = L::Version::get(d);
  if (out.version != kFormatVersion) {
    out.status = MetaStatus::kBadVersion;
    return out;
  }
  Meta& m = out.meta;
  TreeState& t = m.state.tree;
  m.page_size = L::PageSize::get(d);
  m.sequence = L::Sequence::get(d);
  t.root = L::Root::get(d);
  t.height = L::Height::get(d);
  t.minimum_degree = L::MinimumDegree::get(d);
  t.key_count = L::KeyCount::get(d);
  t.free_head = L::FreeHead::get(d);
  t.free_pages = L::FreePages::get(d);
  m.state.page_count = L::PageCount::get(d);
  m.checkpoint_lsn = L::CheckpointLsn::get(d);
  m.database_id = L::DatabaseId::get(d);
  if (m.page_size != p.size() || !plausible(m.state)) {
    out.status = MetaStatus::kBadFields;
  }
  return out;
}

std::string_view meta_status_name(MetaStatus s) noexcept {
  switch (s) {
    case MetaStatus::kValid: return "valid";
    case MetaStatus::kBadChecksum: return "checksum mismatch";
    case MetaStatus::kBadMagic: return "bad magic number";
    case MetaStatus::kBadVersion: return "unknown format version";
    case MetaStatus::kBadFields: return "impossible field values";
  }
  return "unknown";
}

}  // namespace corobtree
