// Must NOT compile in the log layer: the log knows pages, not the tree.
#include "engine/btree/btree.h"
