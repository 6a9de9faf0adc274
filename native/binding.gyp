{
  "targets": [
    {
      "target_name": "airlock_native",
      "sources": ["src/module.c", "src/hmac.c", "src/recording.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-deprecated-declarations"]
    }
  ]
}
