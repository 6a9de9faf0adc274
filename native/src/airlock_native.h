/* The parts of the @airlock/native addon; each adds its functions to the exports. */
#ifndef AIRLOCK_NATIVE_H
#define AIRLOCK_NATIVE_H
#include <node_api.h>

/* One function of the addon, for airlock_export. */
typedef struct {
  const char* name;
  napi_callback callback;
} AirlockFunction;

/* Adds the functions to exports; NULL (with a pending exception) on failure. */
napi_value airlock_export(napi_env env, napi_value exports, const AirlockFunction* functions, size_t count);

napi_value hmac_init(napi_env env, napi_value exports);
napi_value recording_init(napi_env env, napi_value exports);

#endif
