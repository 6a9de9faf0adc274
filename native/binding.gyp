{
  "targets": [
    {
      "target_name": "airlock_native",
      "sources": ["src/hmac.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-deprecated-declarations"]
    }
  ]
}
