/* The parts of the @airlock/native addon; each adds its functions to the exports. */
#ifndef AIRLOCK_NATIVE_H
#define AIRLOCK_NATIVE_H
#include <node_api.h>

napi_value hmac_init(napi_env env, napi_value exports);
napi_value recording_init(napi_env env, napi_value exports);

#endif
