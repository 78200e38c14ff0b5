{
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": ["src/native/kiln_native.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/native/kiln_native.cc"], "sources": ["src/native/stub.cc"] }]
      ]
    }
  ]
}
