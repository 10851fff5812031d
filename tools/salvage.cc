// salvage DAMAGED OUT: copies every intact pair of a damaged database into a
// new one (include/corobtree/salvage.h) and prints what it found.
#include <corobtree/salvage.h>
#include "tools/cli.h"

namespace corobtree::cli {

int run_salvage(const Invocation& inv) {
  if (inv.args.size() != 1) throw UsageError("usage: corobtree salvage DAMAGED OUT");
  SalvageOptions o;
  o.backend = inv.options.backend;
  o.page_size = inv.options.page_size;
  const SalvageReport r = salvage_blocking(inv.db_path, inv.args[0], o);
  std::string text = r.summary();
  text += r.complete()
              ? "OK: every pair was recovered into '" + inv.args[0] + "'\n"
              : "INCOMPLETE: " + std::to_string(r.keys_recovered) + " pairs recovered into '" +
                    inv.args[0] + "'; some could not be read\n";
  write_out(stdout, text);
  flush_out(stdout);
  return r.complete() ? kExitOk : kExitCorrupt;
}

}  // namespace corobtree::cli
