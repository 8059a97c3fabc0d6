# node-gyp build of the same sources as CMakeLists.txt (which is what `npm install` uses, through cmake-js).
# Kept working for tools that expect node-gyp (`npx node-gyp rebuild`); libtorch is found by
# scripts/torch-paths.mjs in CMakeLists.txt's order (LIBTORCH or Torch_DIR, the Python torch on PATH, the system). It links the
# CPU libraries only: a CUDA build goes through cmake-js, whose TorchConfig.cmake knows the CUDA libraries.
{
  "targets": [
    {
      "target_name": "tensornormal",
      "sources": [
        "native/addon.cc",
        "native/tensor.cc",
        "native/ops.cc",
        "native/nn.cc",
        "native/hooks.cc",
        "native/distributed.cc",
        "native/jit.cc",
        "native/blas_check.cc",
        "<!@(ls native/optim/*.cc)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<!@(node scripts/torch-paths.mjs include)"
      ],
      "libraries": ["<!@(node scripts/torch-paths.mjs libs)"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "<!@(node scripts/torch-paths.mjs defines)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"]
    }
  ]
}
