// Must compile in the log layer (the control case for the two above).
#include "engine/pager/buffer_pool.h"
