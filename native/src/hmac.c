/*
 * HMAC-SHA256 of short texts for the masker's `hash` action, through the SHA-256 of the
 * OpenSSL that Node.js itself links (its symbols are exported to addons; SHA-NI where the CPU
 * has it). No cryptography here: RFC 2104 around OpenSSL's SHA256_Init/Update/Final, with the
 * key's inner and outer pad blocks compressed once (hmacKey), so each text costs the
 * compressions of its own bytes plus one. node:crypto's createHmac builds a JS object and a
 * native context per call (1-5 µs); this is one call per text (~0.2 µs).
 *
 *   hmacKey(key: Uint8Array): ArrayBuffer        the two prepared SHA-256 states
 *   hmacTag(state: ArrayBuffer, text: string, length: number)
 *                        "hmac:" and the first 8 bytes of HMAC-SHA256(key, UTF-8 of text) as 16
 *                        lowercase hex digits (length: text.length, to size the copy)
 *
 * The UTF-8 is V8's (lone surrogates become U+FFFD), as Buffer.from(text) and TextEncoder.
 * Errors are thrown as JS TypeErrors; nothing here can crash on bad arguments.
 */
#include "airlock_native.h"
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  SHA256_CTX inner;
  SHA256_CTX outer;
} HmacState;

#define STACK_TEXT 1024

static napi_value fail(napi_env env, const char* message) {
  napi_throw_type_error(env, "AIRLOCK_NATIVE", message);
  return NULL;
}

static napi_value hmac_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "hmacKey(key): key is required");
  bool is_typed = false;
  if (napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) return fail(env, "hmacKey(key): key must be a Uint8Array");
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    return fail(env, "hmacKey(key): key must be a Uint8Array");
  }
  unsigned char k[SHA256_CBLOCK];
  memset(k, 0, sizeof k);
  if (length > SHA256_CBLOCK) SHA256((const unsigned char*)data, length, k);
  else if (length > 0) memcpy(k, data, length);
  unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
  for (int i = 0; i < SHA256_CBLOCK; i++) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  void* out;
  napi_value result;
  if (napi_create_arraybuffer(env, sizeof(HmacState), &out, &result) != napi_ok) return fail(env, "hmacKey: out of memory");
  HmacState* s = (HmacState*)out;
  SHA256_Init(&s->inner);
  SHA256_Update(&s->inner, ipad, sizeof ipad);
  SHA256_Init(&s->outer);
  SHA256_Update(&s->outer, opad, sizeof opad);
  memset(k, 0, sizeof k);
  memset(ipad, 0, sizeof ipad);
  memset(opad, 0, sizeof opad);
  return result;
}

static const char HEX[] = "0123456789abcdef";

/* hmacTag(state, text, units): "hmac:" + 16 hex digits; units is text.length (saves a call). */
static napi_value hmac_tag(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return fail(env, "hmacTag(state, text, length): three arguments are required");
  void* state;
  size_t state_length;
  if (napi_get_arraybuffer_info(env, argv[0], &state, &state_length) != napi_ok || state_length != sizeof(HmacState)) {
    return fail(env, "hmacTag: state must be what hmacKey returned");
  }
  /* UTF-8 takes at most 3 bytes per UTF-16 unit: short texts go through a stack buffer whole,
     longer ones get their exact UTF-8 length first (napi would silently truncate them). The
     length the caller gives only picks the buffer: a wrong one costs a copy, never a truncation. */
  double given;
  if (napi_get_value_double(env, argv[2], &given) != napi_ok) return fail(env, "hmacTag: length must be a number");
  char stack[STACK_TEXT];
  char* text = stack;
  size_t capacity = sizeof stack;
  size_t length;
  if (!(given >= 0 && given * 3 < (double)sizeof stack)) {
    if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok) return fail(env, "hmacTag: text must be a string");
    capacity = length + 1;
    text = malloc(capacity);
    if (text == NULL) return fail(env, "hmacTag: out of memory");
  }
  if (napi_get_value_string_utf8(env, argv[1], text, capacity, &length) != napi_ok) {
    if (text != stack) free(text);
    return fail(env, "hmacTag: text must be a string");
  }
  if (text == stack && length >= capacity - 1 - 3) {
    /* the length given was wrong (the text is longer): hash the whole text, measured */
    if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok) return fail(env, "hmacTag: text must be a string");
    if (length >= capacity - 4) {
      capacity = length + 1;
      text = malloc(capacity);
      if (text == NULL) return fail(env, "hmacTag: out of memory");
      napi_get_value_string_utf8(env, argv[1], text, capacity, &length);
    }
  }
  const HmacState* s = (const HmacState*)state;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c = s->inner;
  SHA256_Update(&c, text, length);
  SHA256_Final(digest, &c);
  c = s->outer;
  SHA256_Update(&c, digest, sizeof digest);
  SHA256_Final(digest, &c);
  if (text != stack) free(text);
  char tag[5 + 16] = {'h', 'm', 'a', 'c', ':'};
  for (int i = 0; i < 8; i++) {
    tag[5 + 2 * i] = HEX[digest[i] >> 4];
    tag[5 + 2 * i + 1] = HEX[digest[i] & 15];
  }
  napi_value result;
  if (napi_create_string_latin1(env, tag, sizeof tag, &result) != napi_ok) return fail(env, "hmacTag: out of memory");
  return result;
}

napi_value hmac_init(napi_env env, napi_value exports) {
  static const AirlockFunction functions[] = {{"hmacKey", hmac_key}, {"hmacTag", hmac_tag}};
  return airlock_export(env, exports, functions, sizeof functions / sizeof functions[0]);
}
