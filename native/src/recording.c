/*
 * Append-only recording files written through a shared memory mapping, so that handing a
 * record to the operating system costs a copy into the page cache instead of a write(2) (on
 * this project's 2-core benchmark machine a write(2) per statement costs as much CPU as the
 * rest of the proxying). Pages of a MAP_SHARED mapping are the file's page cache: once a record
 * is copied there it survives the process (a crash, a kill -9) exactly like written data, and
 * the kernel writes it back; as with write(2), only fsync (at close) survives a kernel crash.
 *
 * Space is reserved with fallocate before it is mapped (64 KiB, doubling up to 8 MiB steps),
 * so a full disk is an error returned by recAppend (fail closed), never a SIGBUS while copying.
 * Whole pages already written are dropped from the process every 256 KiB (MADV_DONTNEED: for
 * a shared file mapping the data stays in the page cache and is written back as usual), so a
 * long session's recording does not stay resident in the sidecar's memory.
 * A file that was not closed (the process died) ends with the zero bytes of its reservation;
 * readers ignore trailing NUL bytes. recClose truncates the file to its content and fsyncs it.
 *
 *   recOpen(path: string): External            creates the file (O_EXCL, mode 0600)
 *   recAppend(file: External, text: string)    appends the UTF-8 of text
 *   recClose(file: External)                   truncates to the content, fsyncs, closes
 *   recSize(file: External): number            bytes of content
 *   recAppendRecord(file, seq: number, time: string | undefined, body: string, prev: string): string
 *       appends one hash-chained record line (see sidecar/src/record/chain.ts, which does the
 *       same in JavaScript): `{"seq":<seq>,"time":"<time>",<body's fields>,"prev":"<prev>"}` is
 *       assembled in the mapping from `body` (a JSON object text), hashed as
 *       sha256(prev + "\n" + that JSON), and its closing brace becomes
 *       `,"hash":"sha256:<hex>"}` and a newline. Returns "sha256:<hex>". One call, no JS strings
 *       but the result: sealing a record costs a third of doing it in JavaScript.
 *
 * Errors are thrown as JS Errors with the errno text (code AIRLOCK_RECORDING).
 */
#define _GNU_SOURCE
#include "airlock_native.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/sha.h>

#define FIRST_RESERVE ((size_t)64 * 1024)
#define MAX_STEP ((size_t)8 * 1024 * 1024)
/* written pages are dropped from the process (not from the page cache) in steps of this much */
#define RELEASE_STEP ((size_t)256 * 1024)

typedef struct {
  int fd;           /* -1 once closed */
  char* map;        /* MAP_FAILED when nothing is mapped */
  size_t mapped;    /* bytes mapped == bytes reserved == file size while open */
  size_t used;      /* bytes of content */
  size_t released;  /* [0, released) is no longer mapped into the process's memory */
} RecordingFile;

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char message[4700];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, "AIRLOCK_RECORDING", message);
  return NULL;
}

static napi_value throw_type(napi_env env, const char* message) {
  napi_throw_type_error(env, "AIRLOCK_NATIVE", message);
  return NULL;
}

static void release(RecordingFile* f) {
  if (f->map != MAP_FAILED) munmap(f->map, f->mapped);
  f->map = MAP_FAILED;
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
}

static void finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  RecordingFile* f = data;
  /* a file the JS side never closed: leave its content (and reservation) as a crash would */
  release(f);
  free(f);
}

/* Reserves and maps at least `need` bytes in all; 0 or an errno. */
static int reserve(RecordingFile* f, size_t need) {
  if (need <= f->mapped) return 0;
  size_t size = f->mapped == 0 ? FIRST_RESERVE : f->mapped;
  while (size < need) size += size < MAX_STEP ? size : MAX_STEP;
  int err = posix_fallocate(f->fd, (off_t)f->mapped, (off_t)(size - f->mapped));
  if (err != 0) return err;
  char* map;
  if (f->map == MAP_FAILED) map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
  else map = mremap(f->map, f->mapped, size, MREMAP_MAYMOVE);
  if (map == MAP_FAILED) return errno;
  f->map = map;
  f->mapped = size;
  return 0;
}

/* Drops the whole pages written so far from the process's memory, once there is a step of them. */
static void release_written(RecordingFile* f) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t done = f->used & ~(page - 1);
  if (done - f->released < RELEASE_STEP) return;
  /* only an advice: on failure the pages just stay resident */
  if (madvise(f->map + f->released, done - f->released, MADV_DONTNEED) == 0) f->released = done;
}

static RecordingFile* unwrap(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return NULL;
  void* data;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

/* The `count` arguments of a call on a file (argv[0]), all required: the file, or NULL with a
   TypeError thrown (usage: the call's signature), or an EBADF error when it must be open. */
static RecordingFile* file_call(napi_env env, napi_callback_info info, size_t count, napi_value* argv, const char* name, const char* usage, bool must_be_open) {
  char message[256];
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < count) {
    snprintf(message, sizeof message, "%s(%s): %zu argument%s required", name, usage, count, count == 1 ? " is" : "s are");
    throw_type(env, message);
    return NULL;
  }
  RecordingFile* f = unwrap(env, argv[0]);
  if (f == NULL) {
    snprintf(message, sizeof message, "%s: file must be what recOpen returned", name);
    throw_type(env, message);
    return NULL;
  }
  if (must_be_open && f->fd < 0) {
    snprintf(message, sizeof message, "%s: the recording is closed", name);
    throw_errno(env, message, EBADF);
    return NULL;
  }
  return f;
}

static napi_value rec_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return throw_type(env, "recOpen(path): path is required");
  size_t length;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok) return throw_type(env, "recOpen(path): path must be a string");
  char* path = malloc(length + 1);
  if (path == NULL) return throw_errno(env, "recOpen", ENOMEM);
  napi_get_value_string_utf8(env, argv[0], path, length + 1, &length);
  if (strlen(path) != length) {
    free(path);
    return throw_type(env, "recOpen(path): path contains a NUL character");
  }
  RecordingFile* f = calloc(1, sizeof *f);
  if (f == NULL) {
    free(path);
    return throw_errno(env, "recOpen", ENOMEM);
  }
  f->map = MAP_FAILED;
  f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  int err = f->fd < 0 ? errno : reserve(f, 1);
  if (err != 0) {
    char what[4200];
    snprintf(what, sizeof what, "cannot create recording %s", path);
    if (f->fd >= 0) unlink(path);
    release(f);
    free(f);
    free(path);
    return throw_errno(env, what, err);
  }
  free(path);
  napi_value result;
  if (napi_create_external(env, f, finalize, NULL, &result) != napi_ok) {
    release(f);
    free(f);
    return throw_errno(env, "recOpen", ENOMEM);
  }
  return result;
}

static napi_value rec_append(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  RecordingFile* f = file_call(env, info, 2, argv, "recAppend", "file, text", true);
  if (f == NULL) return NULL;
  size_t units;
  if (napi_get_value_string_utf16(env, argv[1], NULL, 0, &units) != napi_ok) return throw_type(env, "recAppend: text must be a string");
  /* UTF-8 takes at most 3 bytes per UTF-16 unit, and napi writes a NUL after the text (into
     reserved zeros, overwritten by the next append) */
  if (units > (SIZE_MAX - f->used - 1) / 3) return throw_errno(env, "recAppend", EFBIG);
  size_t need = f->used + units * 3 + 1;
  int err = reserve(f, need);
  if (err != 0) return throw_errno(env, "cannot extend recording", err);
  size_t written;
  if (napi_get_value_string_utf8(env, argv[1], f->map + f->used, f->mapped - f->used, &written) != napi_ok) {
    return throw_type(env, "recAppend: text must be a string");
  }
  f->used += written;
  release_written(f);
  return NULL;
}

static const char HEXDIGITS[] = "0123456789abcdef";

/* Writes n in decimal at p (printf's %.0f of a double is ~40x slower); returns the end. */
static char* put_decimal(char* p, uint64_t n) {
  char digits[20];
  int k = 0;
  do {
    digits[k++] = (char)('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (k > 0) *p++ = digits[--k];
  return p;
}

/* Copies the UTF-8 of a JS string to dst (room for `room` bytes and a NUL); its length or -1. */
static ssize_t put_string(napi_env env, napi_value value, char* dst, size_t room) {
  size_t written;
  if (napi_get_value_string_utf8(env, value, dst, room + 1, &written) != napi_ok) return -1;
  return (ssize_t)written;
}

static napi_value rec_append_record(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  RecordingFile* f = file_call(env, info, 5, argv, "recAppendRecord", "file, seq, time, body, prev", true);
  if (f == NULL) return NULL;
  double seq;
  if (napi_get_value_double(env, argv[1], &seq) != napi_ok || !(seq >= 0 && seq <= 9007199254740991.0) || seq != (double)(int64_t)seq) {
    return throw_type(env, "recAppendRecord: seq must be a non-negative integer");
  }
  napi_valuetype time_type;
  if (napi_typeof(env, argv[2], &time_type) != napi_ok || (time_type != napi_string && time_type != napi_undefined)) {
    return throw_type(env, "recAppendRecord: time must be a string or undefined");
  }
  size_t body_units, time_units = 0, prev_units;
  if (napi_get_value_string_utf16(env, argv[3], NULL, 0, &body_units) != napi_ok) return throw_type(env, "recAppendRecord: body must be a string");
  if (napi_get_value_string_utf16(env, argv[4], NULL, 0, &prev_units) != napi_ok) return throw_type(env, "recAppendRecord: prev must be a string");
  if (time_type == napi_string) napi_get_value_string_utf16(env, argv[2], NULL, 0, &time_units);
  /* the prev and time fields are Airlock's own (a hash, an ISO time): printable ASCII, never escaped */
  if (prev_units > 128 || time_units > 64) return throw_type(env, "recAppendRecord: prev or time is too long");
  char prev[3 * 128 + 1];
  ssize_t prev_len = put_string(env, argv[4], prev, sizeof prev - 1);
  if (prev_len < 0) return throw_type(env, "recAppendRecord: prev must be a string");
  for (ssize_t i = 0; i < prev_len; i++) {
    if (prev[i] < 0x20 || prev[i] == '"' || prev[i] == '\\' || (unsigned char)prev[i] > 0x7e) return throw_type(env, "recAppendRecord: prev must be plain ASCII");
  }
  if (body_units > (SIZE_MAX - f->used - 512) / 3) return throw_errno(env, "recAppendRecord", EFBIG);
  /* {"seq":<20>,"time":"<64*3>", body, ,"prev":"<prev>"} ,"hash":"sha256:<64>"}\n */
  size_t most = 32 + 16 + 3 * 64 + 3 * body_units + 16 + (size_t)prev_len + 96;
  int err = reserve(f, f->used + most + 1);
  if (err != 0) return throw_errno(env, "cannot extend recording", err);
  char* start = f->map + f->used;
  char* p = start;
  memcpy(p, "{\"seq\":", 7);
  p += 7;
  p = put_decimal(p, (uint64_t)seq);
  *p++ = ',';
  if (time_type == napi_string) {
    memcpy(p, "\"time\":\"", 8);
    p += 8;
    ssize_t n = put_string(env, argv[2], p, 3 * 64);
    bool plain = n >= 0;
    for (ssize_t i = 0; plain && i < n; i++) plain = p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && (unsigned char)p[i] <= 0x7e;
    if (!plain) {
      memset(start, 0, most + 1); /* nothing half-written stays in the file */
      return throw_type(env, "recAppendRecord: time must be a plain ASCII string");
    }
    p += n;
    memcpy(p, "\",", 2);
    p += 2;
  }
  /* the body's fields: its JSON without the braces (written in place, then moved one back) */
  ssize_t body_len = put_string(env, argv[3], p, 3 * body_units);
  if (body_len < 2 || p[0] != '{' || p[body_len - 1] != '}') {
    memset(start, 0, most + 1);
    return throw_type(env, "recAppendRecord: body must be the JSON text of an object");
  }
  memmove(p, p + 1, (size_t)body_len - 2);
  p += body_len - 2;
  if (body_len > 2) *p++ = ',';
  memcpy(p, "\"prev\":\"", 8);
  p += 8;
  memcpy(p, prev, (size_t)prev_len);
  p += prev_len;
  memcpy(p, "\"}", 2);
  p += 2;
  /* hash = sha256(prev + "\n" + json) */
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, prev, (size_t)prev_len);
  SHA256_Update(&c, "\n", 1);
  SHA256_Update(&c, start, (size_t)(p - start));
  SHA256_Final(digest, &c);
  char hash[7 + 64];
  memcpy(hash, "sha256:", 7);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    hash[7 + 2 * i] = HEXDIGITS[digest[i] >> 4];
    hash[7 + 2 * i + 1] = HEXDIGITS[digest[i] & 15];
  }
  p -= 1; /* the closing brace */
  memcpy(p, ",\"hash\":\"", 9);
  p += 9;
  memcpy(p, hash, sizeof hash);
  p += sizeof hash;
  memcpy(p, "\"}\n", 3);
  p += 3;
  f->used += (size_t)(p - start);
  release_written(f);
  napi_value result;
  if (napi_create_string_latin1(env, hash, sizeof hash, &result) != napi_ok) return throw_errno(env, "recAppendRecord", ENOMEM);
  return result;
}

static napi_value rec_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  RecordingFile* f = file_call(env, info, 1, argv, "recClose", "file", false);
  if (f == NULL) return NULL;
  if (f->fd < 0) return NULL;
  int err = 0;
  if (f->map != MAP_FAILED && munmap(f->map, f->mapped) != 0) err = errno;
  f->map = MAP_FAILED;
  if (err == 0 && ftruncate(f->fd, (off_t)f->used) != 0) err = errno;
  if (err == 0 && fsync(f->fd) != 0) err = errno;
  if (close(f->fd) != 0 && err == 0) err = errno;
  f->fd = -1;
  if (err != 0) return throw_errno(env, "cannot close recording", err);
  return NULL;
}

static napi_value rec_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  RecordingFile* f = file_call(env, info, 1, argv, "recSize", "file", false);
  if (f == NULL) return NULL;
  napi_value result;
  napi_create_double(env, (double)f->used, &result);
  return result;
}

napi_value recording_init(napi_env env, napi_value exports) {
  static const AirlockFunction functions[] = {
      {"recOpen", rec_open}, {"recAppend", rec_append}, {"recAppendRecord", rec_append_record}, {"recClose", rec_close}, {"recSize", rec_size},
  };
  return airlock_export(env, exports, functions, sizeof functions / sizeof functions[0]);
}
