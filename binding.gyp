{
  "targets": [
    {
      "target_name": "bpf_glue",
      "sources": [
        "native/libbpf-glue.cc",
        "native/errors.cc",
        "native/object.cc",
        "native/map.cc",
        "native/program.cc",
        "native/link.cc",
        "native/attach.cc",
        "native/perf_event.cc",
        "native/socket.cc",
        "native/poller.cc",
        "native/ring_buffer.cc",
        "native/perf_buffer.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["<!@(pkg-config --cflags libbpf)", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "libraries": ["<!@(pkg-config --libs libbpf)"],
      "defines": [
        "NAPI_VERSION=9",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ]
    }
  ]
}
