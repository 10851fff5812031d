// The public WriteBatch, over the log's encoding of operations
// (engine/log/batch_format.h), and WriteBatchInternal.
#include <corobtree/write_batch.h>

#include "engine/log/batch_format.h"
#include "engine/log/write_batch_internal.h"

namespace corobtree {

void WriteBatch::put(std::string_view key, std::string_view value) {
  append_op(rep_, OpKind::kPut, key, value);
  ++count_;
}

void WriteBatch::erase(std::string_view key) {
  append_op(rep_, OpKind::kErase, key, std::string_view());
  ++count_;
}

std::vector<WriteBatch::Op> WriteBatch::ops() const {
  std::vector<Op> out;
  out.reserve(count_);
  BatchReader reader = WriteBatchInternal::reader(*this);
  BatchOp op;
  while (reader.next(op)) {
    out.push_back(Op{op.kind == OpKind::kErase, std::string(op.key), std::string(op.value)});
  }
  return out;
}

WriteBatch WriteBatchInternal::from_contents(std::string rep, std::string_view source,
                                             std::string_view path) {
  WriteBatch batch;
  batch.count_ = count_ops(as_bytes(rep), source, path);
  batch.rep_ = std::move(rep);
  return batch;
}

}  // namespace corobtree
