{
  # LIBBPF_PREFIX=/some/prefix (laid out as .ci/libbpf-src.sh builds it:
  # include/bpf/*.h, lib/libbpf.a): compile against that libbpf and link its
  # archive into the addon, which then needs no libbpf.so.1 at run time.
  # Unset or empty: the system libbpf, found by pkg-config.
  "variables": {
    "libbpf_prefix%": "<!(node -p \"process.env.LIBBPF_PREFIX ? require('path').resolve(process.env.LIBBPF_PREFIX) : ''\")",
    "libbpf_archive%": "<!(node -p \"const p = process.env.LIBBPF_PREFIX, fs = require('fs'), path = require('path'); if (!p) ''; else { const a = ['lib', 'lib64'].map((d) => path.resolve(p, d, 'libbpf.a')).find((f) => fs.existsSync(f)); if (!a) throw new Error('LIBBPF_PREFIX: no lib/libbpf.a under ' + path.resolve(p)); a }\")"
  },
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
        "native/ring_mmap.cc",
        "native/ring_thread.cc",
        "native/perf_buffer.cc",
        "native/features.cc",
        "native/info.cc",
        "native/print.cc",
        "native/trace_pipe.cc",
        "native/user_ring_buffer.cc",
        "native/struct_ops.cc",
        "native/netfilter.cc",
        "native/tc_query.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "conditions": [
        ["libbpf_prefix==''", {
          "cflags": ["<!@(pkg-config --cflags libbpf)"],
          "libraries": ["<!@(pkg-config --libs libbpf)"]
        }, {
          # -I before the system's include dirs, so <bpf/*.h> (and
          # LIBBPF_MAJOR/MINOR_VERSION) are the prefix's; the archive's
          # symbols stay local to the addon.
          "include_dirs": ["<(libbpf_prefix)/include"],
          "libraries": ["<(libbpf_archive)", "-lelf", "-lz"],
          "ldflags": ["-Wl,--exclude-libs,libbpf.a"]
        }]
      ],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a call that fails while its
      # worker thread is being terminated cannot throw into JavaScript any
      # more; without it node-addon-api rethrows in C++ and the process
      # aborts (seen: worker.terminate() during a testRun).
      "defines": [
        "NAPI_VERSION=9",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ]
    }
  ]
}
