/* @airlock/native: the addon's entry point (see src/index.ts for what it is for). */
#include "airlock_native.h"

napi_value airlock_export(napi_env env, napi_value exports, const AirlockFunction* functions, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].callback, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok) {
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) napi_throw_error(env, "AIRLOCK_NATIVE", "the addon could not export its functions");
      return NULL;
    }
  }
  return exports;
}

NAPI_MODULE_INIT() {
  if (hmac_init(env, exports) == NULL) return NULL;
  if (recording_init(env, exports) == NULL) return NULL;
  return exports;
}
