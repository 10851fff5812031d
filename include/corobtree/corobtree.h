// Everything a program needs from corobtree in one include.
#pragma once

#include <corobtree/blocking_database.h>
#include <corobtree/codec.h>
#include <corobtree/cursor.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/options.h>
#include <corobtree/pinned_value.h>
#include <corobtree/runtime.h>
#include <corobtree/salvage.h>
#include <corobtree/stats.h>
#include <corobtree/sync_wait.h>
#include <corobtree/table.h>
#include <corobtree/task.h>
#include <corobtree/version.h>
#include <corobtree/when_all.h>
#include <corobtree/write_batch.h>
#include <corobtree/yield.h>
