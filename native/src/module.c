/* @airlock/native: the addon's entry point (see src/index.ts for what it is for). */
#include "airlock_native.h"

NAPI_MODULE_INIT() {
  if (hmac_init(env, exports) == NULL) return NULL;
  if (recording_init(env, exports) == NULL) return NULL;
  return exports;
}
