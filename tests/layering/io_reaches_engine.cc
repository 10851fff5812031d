// Must NOT compile in the io layer: io/ never includes engine/.
#include "engine/pager/buffer_pool.h"
